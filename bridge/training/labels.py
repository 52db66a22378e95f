"""Which drum class a one-shot is, from the names it comes with; and the labelled sets `train-classifier` reads.

The rule (``label``) reads an instrument or file name as words — "HiHatClosed", "hh_closed", "c#3 - bass drum 1",
"Standard Acoustic Snare v60", "jsnare_01" — and answers one of ``CLASSES`` or None when it cannot tell (no drum word, or
words of two classes). A Hydrogen kit (a folder with drumkit.xml) labels each sample by its instrument's name,
and by the file's name only when the instrument's says nothing (rumpf's "Sample: beats_08-37.flac"); Audiophob's
"Kick" plays a file named "tom-0105.wav", so the instrument wins. Any other folder: files in a sub-folder take
the sub-folder's name as their label (a user's own classes), files directly in it are labelled by the rule.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import yaml

from bridge import files
from bridge.errors import BridgeError
from bridge.training.data import audio_under

CLASSES = ("kick", "snare", "hat", "tom", "cymbal", "clap", "perc")  # the built-in classifier's, in its order
# Words (lower case, and two neighbours joined: "bass drum" -> "bassdrum", "hi hat" -> "hihat") per class.
WORDS = {
    "kick": {"kick", "kik", "kck", "bd", "bassdrum", "kickdrum"},
    "snare": {"snare", "snr", "sd", "sn", "rimshot"},
    "hat": {"hat", "hihat", "hh", "chh", "ohh", "phh"},
    "tom": {"tom", "toms", "floortom", "tm"},
    "cymbal": {"cymbal", "cym", "crash", "ride", "china", "chinese", "splash"},
    "clap": {"clap", "claps", "handclap", "clp"},
    "perc": {"cowbell", "conga", "bongo", "tambourine", "tamb", "shaker", "maraca", "maracas", "clave", "claves",
             "woodblock", "agogo", "cajon", "djembe", "triangle", "guiro", "cabasa", "timbale", "castanet",
             "castanets", "cuica", "vibraslap", "sangban", "dununba", "kenkeni", "timbales"},
}
KIT_FILE = "drumkit.xml"
MAX_KIT_XML_BYTES = 4 << 20


def words(name: str) -> list[str]:
    """Lower-case words of a name: camelCase, digits and punctuation split ("HiHatClosed-0" -> hi hat closed)."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    spaced = re.sub(r"([A-Za-z])(\d)|(\d)([A-Za-z])", r"\1\3 \2\4", spaced)
    return [word for word in re.split(r"[^a-z]+", spaced.lower()) if word]


def label(name: str) -> str | None:
    """The class a name says, or None when it names none or two (a "Snare Tom" is left out, not guessed)."""
    found = words(name)
    candidates = set(found) | {a + b for a, b in zip(found, found[1:])}
    classes = {kind for kind, vocabulary in WORDS.items()
               if any(_says(word, candidate) for word in vocabulary for candidate in candidates)}
    return classes.pop() if len(classes) == 1 else None


def _says(word: str, candidate: str) -> bool:
    """A word of the vocabulary in a name's word: itself, or run together with another in a file name ("jsnare",
    "closehihat", "hhclosed" no: two letters are too short to find inside a word; and "custom" is no tom: a
    three-letter word only at the start)."""
    return candidate == word or (len(word) >= 3 and candidate.startswith(word)) or \
        (len(word) >= 4 and candidate.endswith(word))


@dataclass(frozen=True)
class Labelled:
    path: Path
    label: str
    kit: str  # the kit (or top folder) it comes from: whole kits are held out together
    source: Path  # that kit's folder


def hydrogen_kit(folder: Path) -> list[Labelled]:
    """Every sample of a Hydrogen kit its drumkit.xml names, labelled by instrument (else file) name."""
    root, ns = _kit_xml(folder)
    found: dict[Path, Labelled] = {}
    for instrument in root.iter(ns + "instrument"):
        by_instrument = label(instrument.findtext(ns + "name") or "")
        for element in instrument.iter(ns + "filename"):
            path = folder / (element.text or "").strip()
            kind = by_instrument or label(path.stem)
            if kind and path.is_file() and path not in found:
                found[path] = Labelled(path, kind, folder.name, folder)
    return sorted(found.values(), key=lambda item: str(item.path))


def _kit_xml(folder: Path) -> tuple[ET.Element, str]:
    """drumkit.xml's root and its namespace prefix ("{http://www.hydrogen-music.org/drumkit}" or "")."""
    try:
        root = ET.fromstring(files.read_regular(folder / KIT_FILE, MAX_KIT_XML_BYTES))
    except (OSError, ET.ParseError) as error:
        raise BridgeError(f"{folder / KIT_FILE}: cannot read the kit ({error})") from None
    namespace = re.match(r"\{.*\}", root.tag)
    return root, namespace.group(0) if namespace else ""


def labelled_folder(folder: Path) -> list[Labelled]:
    """A kit, a folder of kits, or a folder whose sub-folders are classes (files directly in it: by the rule)."""
    if (folder / KIT_FILE).is_file():
        return hydrogen_kit(folder)
    kits = sorted(child for child in folder.iterdir() if (child / KIT_FILE).is_file())
    if kits:
        return [item for kit in kits for item in hydrogen_kit(kit)]
    found = []
    for path in audio_under(folder):
        relative = path.relative_to(folder)
        kind = relative.parts[0].lower() if len(relative.parts) > 1 else label(path.stem)
        if kind:
            found.append(Labelled(path, kind, folder.name, folder))
    return found


def labelled(folders) -> list[Labelled]:
    """The labelled one-shots under ``folders`` (see the module's docstring), in a stable order."""
    found = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise BridgeError(f"{folder}: not a folder (give kits, or folders whose sub-folders are classes)")
        found.extend(labelled_folder(folder))
    return found


def kit_source(folder: Path) -> dict:
    """Who made a kit and under which licence, as its folder says: drumkit.xml's author and license, or the
    `training_data` entry `dd-bridge make-drums` writes into LICENCE.md; {} when it says nothing."""
    if (folder / KIT_FILE).is_file():
        try:
            root, ns = _kit_xml(folder)
        except BridgeError:
            return {}
        said = {"author": (root.findtext(ns + "author") or "").strip(),
                "licence": (root.findtext(ns + "license") or "").strip() or "not stated in drumkit.xml"}
        return {key: value for key, value in said.items() if value}
    try:
        text = files.read_regular(folder / "LICENCE.md", 1 << 20).decode("utf-8")
        entry = yaml.safe_load(text.split("```yaml", 1)[1].split("```", 1)[0])[0]
    except (OSError, IndexError, KeyError, TypeError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return {key: entry[key] for key in ("kit", "author", "licence", "source") if key in entry}
