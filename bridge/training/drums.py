"""Drum one-shots from a General MIDI soundfont, rendered with FluidSynth, for training data whose licence is known.

Every drum kit of the font (bank 128; numbered variants such as "Standard 3" and the non-drum sets are left out
unless asked for) plays every GM percussion key (35-81) at a few velocities, one MIDI file per kit, rendered by
the `fluidsynth` program offline, dry (no reverb or chorus), at 48 kHz in float. Each hit is then cut from the
render: from its onset (the rule training uses) until it falls below HIT_END_DB of its peak, at most MAX_HIT_SECONDS,
faded out at the end, brought to a peak of PEAK_DB (as sample packs are, and as the other training kits are:
FluidSynth's own level is 20 dB lower, and 16 bits would quantise the tails) and written as 16-bit WAV, mono when
both sides are the same. Silent keys are skipped. The
folder gets a LICENCE.md: the font, its Debian package and version, the licence (for the packages whose copyright
files were read: PACKAGE_LICENCES, with a model card entry; a copyleft or share-alike font is flagged as not for
weights that ship) and that package's copyright file verbatim.
The same font and options give the same files.

About 400 lines in one module on purpose: one tool, from the font to the licence file, used by `make-drums`;
`libraries` (its sample-library path) reuses the cut (trim), the level (to_clip) and the licence file.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
import soundfile
import yaml

from bridge import files
from bridge.constants import DEFAULT_SAMPLE_RATE
from bridge.engine.audio import Clip, write_audio
from bridge.engine.finish import NEW_SOUND_PEAK_DB
from bridge.errors import BridgeError
from bridge.training import data

log = logging.getLogger(__name__)

SAMPLE_RATE = DEFAULT_SAMPLE_RATE  # rendered at the rate models train at: nothing to resample
# Two velocities: a font's soft and hard layers differ in timbre, levels between them are what training's gain
# augmentation makes anyway.
VELOCITIES = (60, 120)
KEYS = range(35, 82)  # the General MIDI percussion map
MAX_HIT_SECONDS = 0.75  # a hit rings at most this long (training windows are 0.68 s): cymbals are cut with a fade
SPACING = 2.0  # seconds between hits in a render, at least max_seconds + 0.5; every voice stops max_seconds in
HOLD = 0.1  # note length: drum presets ignore note-off, the few that do not get a short hit
HIT_END_DB = -50.0  # a hit ends where it stays below this, relative to its peak (inaudible under it)
QUIET = 10 ** (-80 / 20)  # a hit whose peak is below this is silent: no sample on that key
FADE = 480  # 10 ms fade at the cut end
GAIN = 0.5  # FluidSynth's master gain; the render is float, so nothing clips, and every hit is brought to PEAK_DB
# Each written hit peaks where a sample pack's (and generate's new one-shots) do: velocities differ in timbre,
# training's gain augmentation does level.
PEAK_DB = NEW_SOUND_PEAK_DB
NOT_DRUMS = ("sfx", "metronome")  # bank-128 presets that are not drum kits
LICENCE_FILE = "LICENCE.md"

GM_DRUMS = {
    35: "Acoustic Bass Drum", 36: "Bass Drum 1", 37: "Side Stick", 38: "Acoustic Snare", 39: "Hand Clap",
    40: "Electric Snare", 41: "Low Floor Tom", 42: "Closed Hi-Hat", 43: "High Floor Tom", 44: "Pedal Hi-Hat",
    45: "Low Tom", 46: "Open Hi-Hat", 47: "Low-Mid Tom", 48: "Hi-Mid Tom", 49: "Crash Cymbal 1", 50: "High Tom",
    51: "Ride Cymbal 1", 52: "Chinese Cymbal", 53: "Ride Bell", 54: "Tambourine", 55: "Splash Cymbal",
    56: "Cowbell", 57: "Crash Cymbal 2", 58: "Vibraslap", 59: "Ride Cymbal 2", 60: "Hi Bongo", 61: "Low Bongo",
    62: "Mute Hi Conga", 63: "Open Hi Conga", 64: "Low Conga", 65: "High Timbale", 66: "Low Timbale",
    67: "High Agogo", 68: "Low Agogo", 69: "Cabasa", 70: "Maracas", 71: "Short Whistle", 72: "Long Whistle",
    73: "Short Guiro", 74: "Long Guiro", 75: "Claves", 76: "Hi Wood Block", 77: "Low Wood Block",
    78: "Mute Cuica", 79: "Open Cuica", 80: "Mute Triangle", 81: "Open Triangle",
}
assert set(GM_DRUMS) == set(KEYS)


@dataclass(frozen=True)
class Licence:
    licence: str
    holders: str
    ships: bool  # may weights trained on it ship with DD Bridge: no copyleft, no share-alike


# Soundfont packages whose Debian copyright files were read (Debian 12; the table in docs/training-data.md).
_MUSESCORE = Licence("MIT (its drumline samples CC0, its piano public domain)",
                     "S. Christian Collins; Michael Cowgill; Michael Schorsch; Ethan Winer; Frank Wen; Sam Gossner",
                     True)
PACKAGE_LICENCES = {
    "fluid-soundfont-gm": Licence("MIT", "Frank Wen (2000-2002, 2008); Toby Smithe (2008)", True),
    "musescore-general-soundfont-small": _MUSESCORE,
    "musescore-general-soundfont": _MUSESCORE,
    "musescore-general-soundfont-lossless": _MUSESCORE,
    "fluidr3mono-gm-soundfont": Licence("MIT", "Michael Cowgill; Ethan Winer; Michael Schorsch; Frank Wen", True),
    "csound-soundfont": Licence("public domain", "none (Public Domain in the file's licence field)", True),
    "timgm6mb-soundfont": Licence("GPL-2", "Tim Brechbill; David Bolton", False),
    "avldrums.lv2-soundfont": Licence("CC-BY-SA-3.0", "Glen MacArthur", False),
    "opl3-soundfont": Licence("CC-BY-SA-4.0", "Zandro Reveille", False),
}


@dataclass(frozen=True)
class Kit:
    """A drum preset of the font: bank 128, program number, name."""

    program: int
    name: str

    @property
    def label(self) -> str:
        """The name as it can stand in a file name."""
        return re.sub(r"[^\w\- ]+", "-", self.name).strip(" -") or f"Kit {self.program}"


def kits(font: Path, *, variants: bool = False) -> list[Kit]:
    """The font's drum kits in program order, read from its preset headers (SF2, or SF3 which shares them)."""
    found = [Kit(program, name) for bank, program, name in presets(font) if bank == 128]
    found = [k for k in found if not any(word in k.name.lower() for word in NOT_DRUMS)]
    if not variants:  # "Standard 3" is "Standard" with a few keys swapped: keep the set small and varied
        names = {k.name for k in found}
        found = [k for k in found if not (re.fullmatch(r"(.+) \d+", k.name) and
                                          re.fullmatch(r"(.+) \d+", k.name).group(1) in names)]
    return sorted(set(found), key=lambda k: k.program)


def choose(found: list[Kit], wanted) -> list[Kit]:
    """The kits named (case-insensitively) or numbered in wanted; an unknown one is an error naming the choices."""
    chosen = []
    for word in wanted:
        match = [k for k in found if k.name.lower() == str(word).lower().strip() or str(k.program) == str(word)]
        if not match:
            raise BridgeError(f"no drum kit {word!r} in this soundfont; it has: "
                              + ", ".join(f"{k.program} {k.name}" for k in found))
        chosen += [k for k in match if k not in chosen]
    return sorted(chosen, key=lambda k: k.program)


def presets(font: Path) -> list[tuple[int, int, str]]:
    """(bank, program, name) of every preset: the 'phdr' chunk inside the RIFF 'sfbk' file's 'pdta' list."""
    try:
        with open(font, "rb") as f:
            riff, _, form = struct.unpack("<4sI4s", f.read(12))
            if riff != b"RIFF" or form != b"sfbk":
                raise BridgeError(f"{font}: not a SoundFont (SF2/SF3) file")
            while header := f.read(8):
                if len(header) < 8:
                    break
                chunk, size = struct.unpack("<4sI", header)
                if chunk == b"LIST" and f.read(4) == b"pdta":
                    return _phdr(f, size - 4)
                f.seek(size - (4 if chunk == b"LIST" else 0), 1)
                if size & 1 and f.read(1) not in (b"\0", b""):  # RIFF pads odd chunks; some SF3 writers do not
                    f.seek(-1, 1)
    except OSError as error:
        raise BridgeError(f"{font}: cannot read it ({files.reason(error)})") from None
    except struct.error:
        pass
    raise BridgeError(f"{font}: a SoundFont without preset headers (cut short?)")


def _phdr(f, size: int) -> list[tuple[int, int, str]]:
    end = f.tell() + size
    while f.tell() + 8 <= end:
        chunk, length = struct.unpack("<4sI", f.read(8))
        if chunk != b"phdr":
            f.seek(length + (length & 1), 1)
            continue
        body = f.read(length)
        records = [struct.unpack_from("<20sHH", body, i) for i in range(0, len(body) - 37, 38)]
        # the last record is the terminal "EOP"
        return [(bank, program, name.split(b"\0")[0].decode("latin-1").strip())
                for name, program, bank in records[:-1]]
    return []


def fluidsynth() -> str:
    path = shutil.which("fluidsynth")
    if not path:
        raise BridgeError("fluidsynth is not installed: install it with `sudo apt-get install fluidsynth` "
                          "(macOS: `brew install fluid-synth`)")
    return path


def spacing(max_seconds: float) -> float:
    return max(SPACING, max_seconds + 0.5)


def midi_for(kit: Kit, velocities, max_seconds: float = MAX_HIT_SECONDS) -> mido.MidiFile:
    """Every GM key at every velocity on channel 10, spacing() seconds apart, each voice stopped after max_seconds."""
    ticks = 480  # per beat; at the default 120 bpm a second is 960 ticks
    second = 2 * ticks
    events = [(0, mido.Message("program_change", channel=9, program=kit.program))]
    for i, (key, velocity) in enumerate((k, v) for k in KEYS for v in velocities):
        start = round((i + 0.5) * spacing(max_seconds) * second)  # half a gap first: the synth is settled
        events += [(start, mido.Message("note_on", channel=9, note=key, velocity=velocity)),
                   (start + round(HOLD * second), mido.Message("note_off", channel=9, note=key)),
                   (start + round(max_seconds * second), mido.Message("control_change", channel=9, control=120))]
    track = mido.MidiTrack()
    now = 0
    for time, message in sorted(events, key=lambda e: e[0]):  # stable: a hit's events keep their order
        track.append(message.copy(time=time - now))
        now = time
    return mido.MidiFile(ticks_per_beat=ticks, tracks=[track])


def render(font: Path, kit: Kit, velocities, workdir: Path, max_seconds: float = MAX_HIT_SECONDS) -> np.ndarray:
    """The kit's whole MIDI file rendered by FluidSynth: float32 [2, frames] at SAMPLE_RATE."""
    midi, wav = workdir / f"kit{kit.program}.mid", workdir / f"kit{kit.program}.wav"
    midi_for(kit, velocities, max_seconds).save(midi)
    command = [fluidsynth(), "-n", "-i", "-q", "-F", str(wav), "-T", "wav", "-O", "float", "-r", str(SAMPLE_RATE),
               "-g", str(GAIN), "-R", "0", "-C", "0", "-o", "synth.cpu-cores=1", str(font), str(midi)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not wav.exists():
        reason = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise BridgeError(f"fluidsynth could not render kit {kit.name!r}: {reason}")
    samples, _ = soundfile.read(wav, dtype="float32", always_2d=True)
    wav.unlink()  # 70 MB a kit in float: one at a time in the temporary folder
    return samples.T


def cut(samples: np.ndarray, index: int, max_seconds: float = MAX_HIT_SECONDS) -> np.ndarray | None:
    """Hit number index of a render, [2, frames]: onset to its end, faded out; None when silent."""
    start = round((index + 0.5) * spacing(max_seconds) * SAMPLE_RATE)
    return trim(samples[:, start:start + round(max_seconds * SAMPLE_RATE)])


def trim(hit: np.ndarray, max_frames: int | None = None) -> np.ndarray | None:
    """A one-shot [2, frames] from its onset to its end (HIT_END_DB under its peak; at most max_frames), faded
    out; None when silent."""
    level = np.abs(hit).max(axis=0) if hit.size else np.zeros(0)
    if not level.size or level.max() < QUIET:
        return None
    hit = hit[:, data.onset(hit):][:, :max_frames]
    level = np.abs(hit).max(axis=0)
    loud = np.flatnonzero(level >= level.max() * 10 ** (HIT_END_DB / 20))
    hit = hit[:, :max(int(loud[-1]) + 1, FADE)].copy()
    fade = min(FADE, hit.shape[1])
    hit[:, -fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return hit


def same_but_level(a: np.ndarray, b: np.ndarray) -> bool:
    """True when a is b at another level (a font without velocity layers): training's gain covers that."""
    if a.shape != b.shape:
        return False
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return norm > 0 and float(np.sum(a * b)) / norm > 0.9999


def to_clip(hit: np.ndarray) -> Clip:
    """The hit at a peak of PEAK_DB, mono when both sides are the same to the last bit (half the size, the same
    sound)."""
    hit = hit * (10 ** (PEAK_DB / 20) / np.abs(hit).max())
    if np.abs(hit[0] - hit[1]).max() < 0.5 / 32768:
        return Clip(np.ascontiguousarray(hit[:1].T), SAMPLE_RATE)
    return Clip(np.ascontiguousarray(hit.T), SAMPLE_RATE)


@dataclass
class Made:
    written: list[Path]
    existing: list[Path]
    silent: int  # keys with no sound in a kit
    duplicates: int  # hits another kit already made (kits share most keys), or another velocity only louder
    failed: list[str]


def make(font, out, *, velocities=VELOCITIES, max_seconds: float = MAX_HIT_SECONDS, variants: bool = False,
         only=None, progress=None) -> Made:
    """Render the font's drum kits into out (created if needed); files already there are kept, not rewritten."""
    font, out = Path(font), Path(out)
    if not font.is_file():
        raise BridgeError(f"{font}: no such soundfont")
    velocities = sorted(set(int(v) for v in velocities))
    if not velocities or not all(1 <= v <= 127 for v in velocities):
        raise BridgeError(f"velocities must be in 1..127, got {velocities}")
    if not 0.05 <= max_seconds <= 10:
        raise BridgeError(f"the longest hit must be 0.05 to 10 seconds, got {max_seconds}")
    found = kits(font, variants=variants or bool(only))
    if not found:
        raise BridgeError(f"{font}: no drum kits (bank 128) in this soundfont")
    if only:
        found = choose(found, only)
    fluidsynth()
    folder(out)
    write_licence(out, licence_text(font, found, velocities, max_seconds))
    if warning := shipping_warning(font):
        log.warning("%s", warning)
    made = Made([], [], 0, 0, [])
    seen = set()
    pairs = [(k, v) for k in KEYS for v in velocities]
    with tempfile.TemporaryDirectory(prefix="dd-bridge-drums-") as workdir:
        for number, kit in enumerate(found, 1):
            if progress:
                progress(number, len(found), kit)
            try:
                samples = render(font, kit, velocities, Path(workdir), max_seconds)
            except BridgeError as error:
                made.failed.append(str(error))
                log.warning("%s", error)
                continue
            hits = [cut(samples, i, max_seconds) for i in range(len(pairs))]
            for (key, velocity), hit in zip(pairs, hits):
                if hit is None:
                    made.silent += 1
                    continue
                louder = [h for (k, v), h in zip(pairs, hits) if k == key and v < velocity and h is not None]
                if any(same_but_level(hit, other) for other in louder):
                    made.duplicates += 1
                    continue
                clip = to_clip(hit)
                digest = hashlib.sha256(np.round(clip.samples * 32767).astype(np.int16).tobytes()).digest()
                if digest in seen:
                    made.duplicates += 1
                    continue
                seen.add(digest)
                path = out / f"{kit.label} {GM_DRUMS[key]} v{velocity}.wav"
                if path.exists():
                    made.existing.append(path)
                    continue
                made.written.append(write_audio(path, clip, "pcm16"))
    return made


def folder(path: Path) -> None:
    """``path`` made (with its parents) if missing; a one-line error when it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BridgeError(f"{path}: cannot make the folder ({files.reason(error)})") from None


def write_licence(out: Path, text: str) -> None:
    """LICENCE.md: where the sounds come from and under what terms; a folder holds one source's sounds, made one
    way (another text there is refused)."""
    path = out / LICENCE_FILE
    if path.exists():
        if path.read_text() != text:
            raise BridgeError(f"{out} already holds sounds made differently (see its {LICENCE_FILE}): "
                              "use a new --out folder")
        return
    files.create_new(path, text.encode(), BridgeError)


def debian_package(font: Path) -> tuple[str, str] | None:
    """(package, version) that installed the file, or None."""
    try:
        owner = subprocess.run(["dpkg-query", "-S", str(font.resolve())], capture_output=True, text=True,
                               timeout=30)
        if owner.returncode != 0:
            return None
        package = owner.stdout.split(":", 1)[0].strip()
        version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                                 timeout=30).stdout.strip()
        return package, version
    except (OSError, subprocess.SubprocessError):
        return None


def licence_text(font: Path, found: list[Kit], velocities, max_seconds: float) -> str:
    with open(font, "rb") as f:
        font_sha256 = files.sha256_of(f)
    package = debian_package(font)
    fmt = f"{SAMPLE_RATE // 1000} kHz 16-bit WAV, mono and stereo, at most {max_seconds:g} s"
    lines = [
        "# Where these one-shots come from",
        "",
        f"Rendered by `dd-bridge make-drums` with FluidSynth from the soundfont `{font.name}`",
        f"(sha256 {font_sha256}): drum kits {', '.join(k.name for k in found)};",
        f"GM percussion keys {KEYS.start}-{KEYS.stop - 1} at velocities {', '.join(map(str, velocities))}; {fmt}.",
        "",
    ]
    known = PACKAGE_LICENCES.get(package[0]) if package else None
    if known:
        lines += licence_lines(known, {
            "kit": f"{font.stem} drum kits ({', '.join(k.name for k in found)})", "author": known.holders,
            "licence": known.licence,
            "licence_source": f"/usr/share/doc/{package[0]}/copyright (Debian package {package[0]} "
                              f"{package[1]}), copied below",
            "source": f"dd-bridge make-drums {font} (sha256 {font_sha256[:16]}...)", "format": fmt})
    copyright_file = Path("/usr/share/doc") / package[0] / "copyright" if package else None
    if copyright_file and copyright_file.exists():
        lines += copyright_lines("The soundfont", package, copyright_file)
    else:
        lines += ["The soundfont is not from a Debian package: its licence is whatever its author gave it. Check "
                  "it before sharing these sounds or weights trained on them.", ""]
    return "\n".join(lines)


def licence_lines(known: Licence, entry: dict) -> list[str]:
    """LICENCE.md's verdict and its model card `training_data` entry (what `labels.kit_source` reads back)."""
    verdict = ("may be trained into weights that ship with DD Bridge" if known.ships else
               "are fine for your own models, but **not** for weights that ship with DD Bridge (copyleft or "
               "share-alike)")
    return [f"Licence: **{known.licence}**; copyright holders: {known.holders}. These sounds {verdict}.", "",
            "The model card's `training_data` entry for them:", "", "```yaml",
            yaml.safe_dump([entry], sort_keys=False, width=110).rstrip(), "```", ""]


def copyright_lines(what: str, package: tuple[str, str], copyright_file: Path) -> list[str]:
    """The Debian package's copyright file, verbatim, for LICENCE.md."""
    return [f"{what} is from the Debian package `{package[0]}` version {package[1]}. Its licence, "
            f"verbatim from {copyright_file}:", "", "```", copyright_file.read_text().rstrip(), "```", ""]


def shipping_warning(font: Path) -> str | None:
    """A line for fonts whose licence keeps trained weights from shipping (docs/training-data.md)."""
    package = debian_package(font)
    known = PACKAGE_LICENCES.get(package[0]) if package else None
    if known and not known.ships:
        return (f"{font.name} ({package[0]}) is {known.licence}: fine for your own models, not for weights that "
                "ship with DD Bridge")
    return None
