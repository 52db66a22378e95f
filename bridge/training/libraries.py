"""Real drum one-shots from sample libraries, labelled file by file (or folder by folder), for training.

A library's file names mislead: Sonic Pi's `drum_cymbal_closed`, `_pedal` and `_open` are hi-hats, its
`glitch_perc*` are glitchy textures and `drum_roll` is a roll, not one-shots. So each library here is an explicit
table, {file: class}, of the files whose spectrogram and envelope were looked at and judged to be that class (one
of labels.CLASSES); every other file is left out. The table (LIBRARIES) is the one place a label is decided.

`dd-bridge make-drums sonic-pi --out DIR` reads the library where its package installs it (or under --root, a
folder the .deb was extracted into), checks the package's copyright file gives every file used the licence
recorded here (DEP-5: the last paragraph whose Files: pattern matches), and writes DIR/<class>/<file>.wav — the
layout `train-classifier` and `train` read (labels.labelled_folder) — each resampled to 48 kHz (soxr, as
everywhere), cut and levelled as make-drums cuts a soundfont's hits (drums.trim, drums.to_clip), 16-bit. DIR's
LICENCE.md is make-drums' kind: the verdict, the model card's `training_data` entry (labels.kit_source reads it),
a table of every file with its class, copyright holder and source, and the copyright file verbatim. Files already
in DIR are kept; a LICENCE.md that says otherwise (another library, version or --seconds) refuses the folder.

A collection that no Debian package carries (COLLECTIONS: the Open Source Drum Kit, a public-domain multi-sampled
acoustic kit; MuldjordKit, CC-BY-4.0) is read from a clone of the repository that publishes it (`--root DIR`); its
folders name what each hit is (kick/, snare/, hihat/closed-hihat/, ...), so there a table of folders decides the
class, and the statement that gives its licence is checked in the repository's README and copied into LICENCE.md.
MuldjordKit (CC-BY-4.0) is recorded with 16 microphones, a file each: `Mics` groups a hit's files and mixes them
into one stereo one-shot before it is cut and levelled like any other.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import logging
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge import files
from bridge.engine.audio import Clip, read_audio, resample, stereo, write_audio
from bridge.errors import BridgeError
from bridge.training import drums
from bridge.training.data import audio_under

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Library:
    name: str  # what make-drums takes
    package: str  # the Debian package that installs it
    folder: str  # where that package puts the samples
    in_source: str  # the samples' folder in the package's source, as its copyright file's Files: patterns see it
    holders: str
    accepts: tuple[str, ...]  # the licences (short names) a file used may have by the copyright file: all let
    # weights trained on them ship (no copyleft, no share-alike)
    get: str  # how to get it, for the error when it is not there
    labels: dict[str, str]  # file -> class, as its spectrogram and envelope show it

    def samples(self, root: Path) -> Path:
        return root / self.folder.lstrip("/")

    def copyright(self, root: Path) -> Path:
        return root / "usr/share/doc" / self.package / "copyright"

    @property
    def origin(self) -> str:  # what a missing file's warning names
        return self.package

    def read(self, root: Path) -> tuple[list[Sample], list[str]]:
        return read_library(self, root)

    def version(self, root: Path) -> str:
        return package_version(root, self.package)

    def licence_text(self, root: Path, samples: list[Sample], version: str, max_seconds: float) -> str:
        return licence_text(self, samples, version, self.copyright(root), max_seconds)

    def clip(self, root: Path, sample: Sample) -> Clip:
        return read_audio(self.samples(root) / sample.file)


def _tabla() -> dict[str, str]:
    strokes = ["dhec", "ghe1", "ghe2", "ghe3", "ghe4", "ghe5", "ghe6", "ghe7", "ghe8", "ke1", "ke2", "ke3", "na",
               "na_o", "na_s", "re", "tas1", "tas2", "tas3", "te1", "te2", "te_m", "te_ne", "tun1", "tun2", "tun3"]
    return {f"tabla_{stroke}.flac": "perc" for stroke in strokes}  # single strokes of a hand drum, as congas are


LIBRARIES = {library.name: library for library in (
    Library(
        name="sonic-pi", package="sonic-pi-samples", folder="/usr/share/sonic-pi/samples", in_source="etc/samples",
        # the samples' README says all are CC0 from freesound.org; Debian's copyright file gives each its CC0
        # paragraph, except bd_mehackit and sn_generic (hullum's, added later), left to its Files: * (MIT)
        holders="the freesound.org uploaders named per file in LICENCE.md; Samuel Aaron (the MIT files)",
        accepts=("CC0", "MIT"),
        get="install it with `sudo apt-get install sonic-pi-samples` (21 MB, no dependencies)",
        labels={
            **{f"bd_{name}.flac": "kick" for name in
               ("808", "ada", "boom", "fat", "gas", "haus", "klub", "mehackit", "pure", "sone", "tek", "zome", "zum")},
            "drum_bass_hard.flac": "kick", "drum_bass_soft.flac": "kick", "drum_heavy_kick.flac": "kick",
            "elec_hollow_kick.flac": "kick", "elec_soft_kick.flac": "kick",
            **{f"sn_{name}.flac": "snare" for name in ("dolf", "dub", "generic", "zome")},
            "drum_snare_hard.flac": "snare", "drum_snare_soft.flac": "snare", "elec_snare.flac": "snare",
            "elec_hi_snare.flac": "snare", "elec_lo_snare.flac": "snare", "elec_mid_snare.flac": "snare",
            # menegass's kit (freesound 100051-100067): "cymbal" closed, pedal and open are its hi-hat, 0.2 to 1.8 s
            "drum_cymbal_closed.flac": "hat", "drum_cymbal_pedal.flac": "hat", "drum_cymbal_open.flac": "hat",
            **{f"drum_tom_{pitch}_{force}.flac": "tom" for pitch in ("hi", "mid", "lo") for force in ("hard", "soft")},
            "elec_fuzz_tom.flac": "tom",
            # its crash (hard, soft) and splash; elec_cymbal is a drum machine's bright noise cymbal
            "drum_cymbal_hard.flac": "cymbal", "drum_cymbal_soft.flac": "cymbal", "drum_splash_hard.flac": "cymbal",
            "drum_splash_soft.flac": "cymbal", "elec_cymbal.flac": "cymbal",
            # finger snaps: a broadband crack over a short noise tail, the clap's sound and role
            "perc_snap.flac": "clap", "perc_snap2.flac": "clap",
            "drum_cowbell.flac": "perc", "elec_triangle.flac": "perc", **_tabla(),
            # left out: drum_roll (a roll), elec_filt_snare (a 1.5 s filter sweep), elec_wood (three hits), the
            # elec_ bleeps (beep, blip, bong, chime, ping, pop, tick, twang, ...), glitch_perc* (textures),
            # perc_bell*, _door, _impact*, _swash, _swoosh, _till (effects), loops, ambi, bass, guit, misc, vinyl
        }),
    Library(
        name="exadrums", package="exadrums", folder="/usr/share/exadrums", in_source="Data/SoundBank",
        holders="2015-2022 Jeremy Oden <jerem.oden@gmail.com>", accepts=("BSD-3-Clause",),
        get="it comes with the Debian package exadrums, which pulls a GUI: `apt-get download exadrums && "
            "dpkg-deb -x exadrums_*.deb DIR`, then --root DIR",
        # acoustic one-shots of its default kit; the copyright file's one paragraph, Files: *, covers them
        labels={"BD_Acou_01.wav": "kick", "Snr_Acou_01.wav": "snare", "HiHat.wav": "hat", "Tom01.wav": "tom",
                "Tom03.wav": "tom", "Crash_High.wav": "cymbal", "RideBell.wav": "cymbal", "RideEdge.wav": "cymbal"}),
)}


def find(name: str) -> Library | Collection:
    if name not in SOURCES:
        raise BridgeError(f"no sample library {name!r}; there are: {', '.join(SOURCES)}")
    return SOURCES[name]


def terms(copyright_text: str, path: str) -> dict[str, str]:
    """The fields of the last paragraph of a DEP-5 copyright file whose Files: patterns match path (later
    paragraphs override earlier ones); field names in lower case, continuation lines joined."""
    found: dict[str, str] = {}
    for block in re.split(r"\n[ \t]*\n", copyright_text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if any(fnmatch.fnmatchcase(path, pattern) for pattern in fields.get("files", "").split()):
            found = fields
    return found


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""


def package_version(root: Path, package: str) -> str:
    """The package's version from its changelog.Debian.gz (there installed or extracted alike), or "unknown"."""
    try:
        with gzip.open(root / "usr/share/doc" / package / "changelog.Debian.gz", "rt", errors="replace") as f:
            found = re.match(r"\S+ \(([^)]+)\)", f.readline())
    except (OSError, EOFError):
        return "unknown"
    return found.group(1) if found else "unknown"


@dataclass(frozen=True)
class Sample:
    file: str  # in the library
    label: str
    licence: str  # from its copyright paragraph, as holder and source
    holder: str
    source: str
    mics: tuple[tuple[str, str], ...] = ()  # a hit of a multi-microphone kit: (microphone, file) for each file


@dataclass(frozen=True)
class Mics:
    """How a kit recorded with many microphones, a file each, becomes stereo one-shots: the files of one hit are
    summed, the room's pairs (overheads, ambience) to their side and every close microphone to both, as the kit's
    own notes pan them; what is not sound (a drum trigger's signal) is left out."""

    pattern: str  # a file's name -> its hit (group "hit") and microphone (group "mic")
    left: frozenset[str]
    right: frozenset[str]
    leave: frozenset[str]

    def hits(self, paths: list[Path], folder: Path) -> dict[str, list[tuple[str, str]]]:
        """{hit: [(microphone, file relative to folder), ...]} of the files that name a hit."""
        found: dict[str, list[tuple[str, str]]] = {}
        for path in paths:
            name = re.fullmatch(self.pattern, path.name)
            if name and name.group("mic") not in self.leave:
                hit = (path.parent.relative_to(folder) / name.group("hit")).as_posix()
                found.setdefault(hit, []).append((name.group("mic"), path.relative_to(folder).as_posix()))
        return found

    def mix(self, folder: Path, sample: Sample) -> Clip:
        """The hit's microphones summed to stereo, at their rate."""
        parts = [(mic, read_audio(folder / file)) for mic, file in sample.mics]
        rates = {clip.sample_rate for _, clip in parts}
        if len(rates) != 1:
            raise BridgeError(f"{sample.file}: its microphones' files are at {len(rates)} rates")
        out = np.zeros((max(clip.samples.shape[0] for _, clip in parts), 2), dtype=np.float32)
        for mic, clip in parts:
            mono = clip.samples.mean(axis=1)
            sides = [0] if mic in self.left else [1] if mic in self.right else [0, 1]
            out[:mono.size, sides] += mono[:, None]
        return Clip(out, rates.pop())


@dataclass(frozen=True)
class Collection:
    """Drum samples a repository publishes (no Debian package): read from a clone of it, labelled by folder."""

    name: str  # what make-drums takes
    repository: str  # where it is published
    folder: str  # the samples' folder in it
    statement_file: str  # the file in it that states the licence
    statement: str  # the words that file must hold (lower case), or nothing is made
    licence: str
    holders: str
    get: str  # how to get it, for the error when it is not there
    folders: dict[str, str]  # a folder under ``folder`` (its first part) -> class; any other is left out
    mics: Mics | None = None  # a kit with a file per microphone: each hit mixed from them

    def samples(self, root: Path) -> Path:
        return root / self.folder

    @property
    def origin(self) -> str:
        return self.repository

    def read(self, root: Path) -> tuple[list[Sample], list[str]]:
        """The labelled samples there (paths relative to ``samples``) and the table's folders with none."""
        folder = self.samples(root)
        if not folder.is_dir():
            raise BridgeError(f"{self.name}: no {folder}: {self.get}")
        text = self._statement(root)
        if self.statement not in " ".join(text.lower().split()):
            raise BridgeError(f"{root / self.statement_file} does not say {self.statement!r}: without that "
                              "nothing is made (the collection in bridge/training/libraries.py needs checking)")
        samples, names = [], {}
        paths = audio_under(folder)
        hits = self.mics.hits(paths, folder) if self.mics else {path.relative_to(folder).as_posix(): [] for path in
                                                                  paths}
        for hit, mics in hits.items():
            relative = Path(hit)
            label = self.folders.get(relative.parts[0]) if len(relative.parts) > 1 else None
            if label is None:
                continue
            sample = Sample(hit, label, self.licence, self.holders, self.repository, tuple(sorted(mics)))
            if out_name(sample) in names:
                raise BridgeError(f"{self.name}: {relative} and {names[out_name(sample)]} would both be "
                                  f"{out_name(sample)}")
            names[out_name(sample)] = relative
            samples.append(sample)
        if not samples:
            raise BridgeError(f"{folder}: none of the folders this knows ({', '.join(self.folders)}) holds audio")
        return samples, [name for name in self.folders if not any(s.file.startswith(name + "/") for s in samples)]

    def clip(self, root: Path, sample: Sample) -> Clip:
        return self.mics.mix(self.samples(root), sample) if sample.mics else read_audio(self.samples(root) /
                                                                                      sample.file)

    def _statement(self, root: Path) -> str:
        try:
            return files.read_regular(root / self.statement_file, 1 << 20).decode("utf-8", errors="replace")
        except OSError as error:
            raise BridgeError(f"{self.name}: cannot read {root / self.statement_file} ({files.reason(error)}): "
                              f"without its licence nothing is made; {self.get}") from None

    def version(self, root: Path) -> str:
        """The clone's commit, or "unknown" (a download of the files without git's: not a folder above's)."""
        if not (root / ".git").exists():
            return "unknown"
        try:
            found = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                   timeout=30)
        except (OSError, subprocess.SubprocessError):
            return "unknown"
        commit = found.stdout.strip()
        return commit if found.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", commit) else "unknown"

    def licence_text(self, root: Path, samples: list[Sample], version: str, max_seconds: float) -> str:
        return _licence_document(
            self.name, f"a clone of {self.repository} (commit {version})",
            f"{len(samples)} drum one-shots, each labelled by the folder it is in (the table in "
            "bridge/training/libraries.py)" + (", each hit mixed from its microphones' files (the overheads' and "
                                              "the room's pairs to their sides, every close microphone to both)"
                                              if self.mics else ""),
            drums.Licence(self.licence, self.holders, True),
            kit=f"{self.name} ({self.repository}, commit {version})",
            licence_source=f"{self.statement_file} of {self.repository}, copied below",
            fmt=_format("stereo", max_seconds),
            table=["| file | class | from |", "|---|---|---|"] +
                  [f"| {out_name(s)} | {s.label} | {_source(s)} |" for s in samples],
            tail=["", f"The collection's {self.statement_file}, verbatim:", "", "```",
                  self._statement(root).rstrip(), "```", ""])


COLLECTIONS = {collection.name: collection for collection in (
    Collection(
        name="open-source-drumkit", repository="https://github.com/s1m0n-github/the-open-source-drumkit",
        folder="Plugin/Samples", statement_file="README.md", statement="completely public domain",
        # Real Music Media gave THE OPEN SOURCE DRUM KIT to the public domain (KVR forum thread 277132); the
        # repository's LICENSE.md (GPL-3.0) is its plug-in's, and its README says the samples are public domain
        licence="public domain", holders="Real Music Media (THE OPEN SOURCE DRUM KIT); collected by s1m0n-github",
        get="clone it: `git clone https://github.com/s1m0n-github/the-open-source-drumkit DIR` (about 600 MB: "
            "an acoustic kit at 96 kHz, 24-bit), then --root DIR",
        # 96 kHz stereo multi-sampled hits, several microphones (snare top and bottom, toms over and under);
        # left out: sidestick (the label rule leaves "stick" out of every kit) and gong (no class of ours)
        folders={"kick": "kick", "snare": "snare", "rimshot": "snare", "hihat": "hat", "toms": "tom",
                 "crash": "cymbal", "ride": "cymbal"}),
    Collection(
        name="muldjordkit", repository="https://github.com/sfzinstruments/DrumGizmo.MuldjordKit",
        folder="DrumGizmo/MuldjordKit/Samples", statement_file="README.md",
        statement="creative commons attribution 4.0 international license",
        # Lars Muldjord's Tama Superstar kit, recorded in 2010, given to DrumGizmo under CC-BY-4.0; this repository
        # is its SFZ edition (FLAC, one file per microphone), whose LICENSE is the CC-BY-4.0 text
        licence="CC-BY-4.0", holders="Lars Muldjord (MuldjordKit, drumgizmo.org); SFZ edition by kinwie "
                                     "(sfzinstruments)",
        get="clone it: `git clone https://github.com/sfzinstruments/DrumGizmo.MuldjordKit DIR` (about 350 MB: "
            "16 microphones of each hit, 44.1 kHz 24-bit FLAC), then --root DIR",
        # two kicks, snare, four toms, hi-hat closed and open, two crashes, two rides (tip, bell), a china; left
        # out: SnareRest (its keymap's GM key 37, the side stick the label rule leaves out of every kit)
        folders={"KdrumL": "kick", "KdrumR": "kick", "Snare": "snare", "Tom1": "tom", "Tom2": "tom", "Tom3": "tom",
                 "Tom4": "tom", "HihatClosed": "hat", "HihatOpen": "hat", "CrashL": "cymbal", "CrashR": "cymbal",
                 "RideL": "cymbal", "RideLBell": "cymbal", "RideR": "cymbal", "RideRBell": "cymbal",
                 "China": "cymbal"},
        # 1-Snare-OHL.flac: hit 1 of Snare at the left overhead. Trigger is the kick's DDrum trigger, not sound
        mics=Mics(pattern=r"(?P<hit>\d+-[^-]+)-(?P<mic>[^-]+)\.flac", left=frozenset({"OHL", "AmbL"}),
                  right=frozenset({"OHR", "AmbR"}), leave=frozenset({"Trigger"}))),
)}
SOURCES = {**LIBRARIES, **COLLECTIONS}  # every name make-drums takes for real recordings


def read_library(library: Library, root: Path) -> tuple[list[Sample], list[str]]:
    """The library's labelled samples that are there, with their terms (each checked), and the table's files that
    are not; a missing library or licence file, or another licence, is an error."""
    folder, copyright_file = library.samples(root), library.copyright(root)
    if not folder.is_dir():
        raise BridgeError(f"{library.name}: no {folder}: {library.get}")
    try:
        text = files.read_regular(copyright_file, 1 << 20).decode("utf-8", errors="replace")
    except OSError as error:
        raise BridgeError(f"{library.name}: cannot read {copyright_file} ({files.reason(error)}): without its "
                          f"licence nothing is made; {library.get}") from None
    present = [name for name in library.labels if (folder / name).is_file()]
    if not present:
        raise BridgeError(f"{folder}: none of the {len(library.labels)} {library.name} samples this knows "
                          f"(another version of {library.package}?)")
    samples = []
    for name in present:
        said = terms(text, f"{library.in_source}/{name}")
        licence = _first_line(said.get("license", ""))
        if licence not in library.accepts:
            raise BridgeError(f"{copyright_file} gives {name} the licence {licence or 'none'!r}, not "
                              f"{' or '.join(library.accepts)}: the table in bridge/training/libraries.py needs "
                              "checking")
        samples.append(Sample(name, library.labels[name], licence, " ".join(said.get("copyright", "").split()),
                              _first_line(said.get("source", ""))))
    return samples, [name for name in library.labels if name not in present]


def out_name(sample: Sample) -> str:
    """Where a sample goes in the labelled folder: its class's sub-folder, its own name."""
    return f"{sample.label}/{Path(sample.file).stem}.wav"


def licence_text(library: Library, samples: list[Sample], version: str, copyright_file: Path,
                 max_seconds: float) -> str:
    known = drums.Licence(" and ".join(sorted({s.licence for s in samples})), library.holders, True)
    return _licence_document(
        library.name, f"the samples the Debian package `{library.package}` {version} installs in {library.folder}",
        f"{len(samples)} drum one-shots, each labelled by the table in bridge/training/libraries.py (judged by its "
        "spectrogram and envelope, not read from its name)", known,
        kit=f"{library.name} samples ({library.package} {version})",
        licence_source=f"/usr/share/doc/{library.package}/copyright (Debian package {library.package} {version}), "
                       "copied below", fmt=_format("mono and stereo", max_seconds),
        table=["| file | class | from | licence | copyright | source |", "|---|---|---|---|---|---|"] +
              [f"| {out_name(s)} | {s.label} | {s.file} | {s.licence} | {s.holder or '-'} | {s.source or '-'} |"
               for s in samples],
        tail=[""] + drums.copyright_lines("The library", (library.package, version), copyright_file))


def _source(sample: Sample) -> str:
    return f"{sample.file}-*: {len(sample.mics)} microphones" if sample.mics else sample.file


def _format(channels: str, max_seconds: float) -> str:
    return f"{drums.SAMPLE_RATE // 1000} kHz 16-bit WAV, {channels}, at most {max_seconds:g} s"


def _licence_document(name: str, origin: str, what: str, known: drums.Licence, *, kit: str, licence_source: str,
                      fmt: str, table: list[str], tail: list[str]) -> str:
    """LICENCE.md of what make-drums took from a library or a collection: where from and how it was cut, the
    verdict and the model card's entry, every file, and the licence's own text (``tail``)."""
    entry = {"kit": kit, "author": known.holders, "licence": known.licence, "licence_source": licence_source,
             "source": f"dd-bridge make-drums {name} (the labels: bridge/training/libraries.py)", "format": fmt}
    lines = ["# Where these one-shots come from", "",
             f"Made by `dd-bridge make-drums {name}` from {origin}: {what}, resampled to 48 kHz, cut from its onset "
             f"to its end and levelled to {drums.PEAK_DB:g} dBFS as make-drums cuts a soundfont's hits; {fmt}.", ""]
    return "\n".join(lines + drums.licence_lines(known, entry) + table + tail)


def make(name: str, out, *, root=Path("/"), max_seconds: float = drums.MAX_HIT_SECONDS, progress=None) -> drums.Made:
    """The library's labelled one-shots into out (created if needed); files already there are kept."""
    library, out, root = find(name), Path(out), Path(root)
    if not 0.05 <= max_seconds <= 10:
        raise BridgeError(f"the longest hit must be 0.05 to 10 seconds, got {max_seconds}")
    samples, missing = library.read(root)
    if missing:
        log.warning("%d files of the table are not in %s (another version of %s?): %s", len(missing),
                    library.samples(root), library.origin, ", ".join(missing))
    made = drums.Made([], [], 0, 0, [])
    kept, seen = [], set()
    for number, sample in enumerate(samples, 1):  # all read first: LICENCE.md lists exactly the files made
        if progress:
            progress(number, len(samples), sample)
        try:
            clip = library.clip(root, sample)
        except BridgeError as error:
            made.failed.append(str(error))
            log.warning("%s", error)
            continue
        hit = drums.trim(resample(stereo(clip), clip.sample_rate, drums.SAMPLE_RATE).T,
                         round(max_seconds * drums.SAMPLE_RATE))
        if hit is None:
            made.silent += 1
            continue
        levelled = drums.to_clip(hit)
        digest = hashlib.sha256(np.round(levelled.samples * 32767).astype(np.int16).tobytes()).digest()
        if digest in seen:  # the same recording under two names
            made.duplicates += 1
            continue
        seen.add(digest)
        kept.append((sample, levelled))
    drums.folder(out)
    drums.write_licence(out, library.licence_text(root, [sample for sample, _ in kept], library.version(root),
                                                  max_seconds))
    for label in sorted({sample.label for sample, _ in kept}):
        drums.folder(out / label)
    for sample, levelled in kept:
        path = out / out_name(sample)
        if path.exists():
            made.existing.append(path)
        else:
            made.written.append(write_audio(path, levelled, "pcm16"))
    return made

