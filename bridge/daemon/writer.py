"""The sample folder: where results go and what they are called.

A request names a folder (or leaves it to the settings) and a source file; neither can make the service write
outside the configured folders: folders are resolved (symlinks included) and must lie inside an allowed one,
names taken from source files are reduced to one plain path component (bridge.files.source_stems), and the
per-source subfolder is opened once, refusing a link, and written relative to that open folder. A folder checked
when it was set may be swapped for a link later (or a missing part of it made as one): so at every write it is
checked again and opened from the allowed folder down, one component at a time, never through a link
(``_open``); what resolves outside the allowed folders by then is refused in the same words as when it was set.

Prefetched variations are written ahead into a hidden staging folder inside the sample folder, complete and
with their metadata; a key press then only gives the staged file its name (a hard link, no data written), so
answering takes the same time for a long clip as for a short one. The staging folder is the service's own: a link
or file planted under its name is removed rather than followed, and no request may write into it (it is emptied
when the service stops).
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import logging
import os
import secrets
import stat
import time
from pathlib import Path

from bridge import files
from bridge.engine.audio import Clip, encode_wav, write_numbered
from bridge.engine.regions import Region, named
from bridge.errors import AudioError, BridgeError, ConfigError
from bridge.files import safe_name

log = logging.getLogger(__name__)

STAGING = ".dd-bridge-staging"  # hidden: DAW browsers and Finder do not list it
TEMPORARY_GLOB = f"{files.TEMPORARY_PREFIX}*{files.TEMPORARY_MARK}.wav"  # a WAV being written (bridge.files)
STALE_TEMPORARY_S = 600


OPEN_TRIES = 3  # a folder whose links keep changing while it is opened is refused after this many looks


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


class SampleFolder:
    """Resolves request folders inside the allowed ones and writes numbered, complete files into them."""

    def __init__(self, default: Path, allowed: tuple[Path, ...]):
        self.allowed = tuple(Path(os.path.realpath(folder)) for folder in allowed)
        self.default: Path | None = None  # no staging folder to keep requests out of until it is known
        self.default = self.resolve(str(default))

    def resolve(self, folder: str) -> Path:
        """The real folder for a request's folder text; ConfigError unless it lies inside an allowed folder and
        outside the staging folder (whose files are deleted when the service stops)."""
        path = Path(os.path.expanduser(folder))
        if not path.is_absolute():
            raise ConfigError(f"folder must be an absolute path, not {folder!r}")
        real = Path(os.path.realpath(path))
        if not any(_inside(real, allowed) for allowed in self.allowed):
            raise self._outside(folder)
        if real.exists() and not real.is_dir():  # said now (at the start, or at /dd/set), not at every request
            raise ConfigError(f"folder {folder} is a file, not a folder")
        if self.default is not None and _inside(real, self.staging):
            raise ConfigError(f"folder {folder} is inside the service's staging folder {self.staging}, which is "
                              "emptied when the service stops; choose another folder")
        return real

    def _outside(self, folder: str | Path) -> ConfigError:
        return ConfigError(f"folder {folder} is outside the allowed folders "
                           f"({', '.join(map(str, self.allowed))}); add it to allowed_folders in the config")

    def _open(self, folder: Path) -> files.Folder:
        """A request's folder (resolved when it was asked for, maybe long ago), open to write into, made where
        missing. It is resolved again now, and opened from the widest allowed folder holding it down, never
        through a link (bridge.files.open_below): a link swapped in after that look is refused, not followed.
        A link found there is looked through once more: what it leads to now is accepted only where resolve
        accepts it, so a folder that leads outside the allowed folders by now is refused in resolve's words."""
        for _ in range(OPEN_TRIES):
            real = self.resolve(str(folder))
            root = min((allowed for allowed in self.allowed if _inside(real, allowed)), key=lambda a: len(a.parts))
            try:
                return files.open_below(root, real)
            except OSError as error:
                if error.errno != errno.ELOOP:
                    raise AudioError(f"{folder}: cannot create this folder ({files.reason(error)})") from None
        raise self._outside(folder)

    def _subfolder(self, folder: Path, name: str) -> files.Folder:
        """The subfolder ``name`` of folder, open: writes go relative to it, so swapping it for a link after this
        check cannot send them elsewhere. A link in its place is refused, wherever it leads."""
        target = folder / name
        with self._open(folder) as parent:
            try:
                return parent.subfolder(name)
            except OSError as error:
                if error.errno == errno.ELOOP:
                    raise ConfigError(f"{target} is a link, which could lead outside the sample folder; "
                                      "not writing there") from None
                raise AudioError(f"{target}: cannot create this folder ({files.reason(error)})") from None

    def _target(self, folder: Path, operation: str, sources: tuple[str, ...], model: str,
                regions: tuple[Region | None, ...] = (), label: str = "") -> tuple[files.Folder, str]:
        """vary: "<source>/<source> var NNN.wav"; generate: "generated/<model> NNN.wav";
        interpolate: "interpolated/<a> to <b> NNN.wav"; repaint, extend: "<source>/<source> <label> NNN.wav";
        a loop's label (bridge.engine.tempo.loop_label) goes before "var" or after the model: "<source> loop 1 bar
        120 bpm var NNN.wav", as the CLI names it. A region shows after its source's stem: "<source>/<source>
        1.000-1.200s var NNN.wav". Names too long for the file system are cut to fit: the sources' stems, never the
        labels (bridge.files.fitted_stem); the subfolder keeps the source's stem as source_stems gives it."""
        names = files.source_stems(*sources)
        located = (*regions, None, None)

        def stem(compose):  # the sources' stems with their regions, composed; the sources cut to fit, never a label
            return files.fitted_stem(lambda *parts: compose(*(named(part, region)
                                                              for part, region in zip(parts, located))), *names)

        if operation == "vary":
            return self._subfolder(folder, names[0]), stem(lambda a: " ".join(filter(None, (a, label, "var"))))
        if operation in ("repaint", "extend"):
            return self._subfolder(folder, names[0]), stem(lambda a: f"{a} {label}")
        if operation == "generate":
            return self._subfolder(folder, "generated"), files.fitted_stem(
                lambda name: " ".join(filter(None, (name, label))), safe_name(model, "model"))
        return self._subfolder(folder, "interpolated"), stem(lambda a, b: f"{a} to {b}")

    def write(self, folder: Path, clip: Clip, fmt: str, metadata: dict, *, operation: str,
              sources: tuple[str, ...] = (), model: str = "model", regions: tuple[Region | None, ...] = (),
              label: str = "") -> Path:
        """Write one result under ``folder`` as the next free "<stem> NNN.wav" of its kind; returns its path."""
        target, stem = self._target(folder, operation, sources, model, regions, label)
        with target:
            return write_numbered(target, stem, clip, fmt, metadata)

    # -- staged results ----------------------------------------------------------------------------------------
    @property
    def staging(self) -> Path:
        return self.default / STAGING

    def stage(self, clip: Clip, fmt: str, metadata: dict) -> Path:
        """Write a complete file ahead, under a hidden name, for ``publish`` to name later."""
        data = encode_wav(clip, fmt, metadata)
        with self._staging_folder() as staging:
            try:
                return staging.create(f"{secrets.token_hex(8)}.wav", data)
            except OSError as error:
                raise AudioError(f"{staging.path}: could not write audio ({files.reason(error)})") from None

    def _staging_folder(self) -> files.Folder:
        """The staging folder, open, as a real folder inside the sample folder (itself opened as any request's
        folder is). Anything else under its name (a link planted to send staged files elsewhere, a file) is
        removed, never followed: the name is the service's."""
        with self._open(self.default) as sample_folder:
            with contextlib.suppress(FileNotFoundError):
                if not stat.S_ISDIR(sample_folder.stat(STAGING).st_mode):  # the entry itself: a link or a file
                    log.warning("%s is not a plain folder (a link or a file); removing it", self.staging)
                    sample_folder.remove(STAGING)
            try:
                return sample_folder.subfolder(STAGING)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):  # swapped in again meanwhile
                    raise ConfigError(f"{self.staging} leads outside the sample folder; not writing there") from None
                raise AudioError(f"{self.staging}: cannot create this folder ({files.reason(error)})") from None

    def publish(self, staged: Path, folder: Path, *, operation: str, sources: tuple[str, ...] = (),
                model: str = "model", regions: tuple[Region | None, ...] = (), label: str = "") -> Path:
        """Give a staged file the next free name, as ``write`` would; OSError where a link cannot be made
        (another file system): the caller then writes the result out instead."""
        target, stem = self._target(folder, operation, sources, model, regions, label)
        # The staged file by its bare name in the staging folder opened now, link-free (a variation waits minutes
        # for its key press: the staging folder may have been swapped meanwhile), and never through a link.
        with target, self._staging_folder() as staging:
            path = target.link_numbered(staged.name, stem, ".wav", staging)  # fails rather than replace
            staging.remove(staged.name)
        return path

    def clear_staging(self) -> None:
        """Staged files are of no use once the service stops: remove them (a link in its place: the link only).
        Through the sample folder opened as for a write: one that leads outside the allowed folders by now is
        not ours to clear."""
        if not self.default.is_dir():
            return
        try:
            sample_folder = self._open(self.default)
        except BridgeError as error:
            log.warning("staged files not cleared: %s", error)
            return
        with sample_folder:
            try:
                staging = sample_folder.subfolder(STAGING, create=False)
            except FileNotFoundError:
                return
            except OSError:  # a link or a file in its place: that goes, never what it leads to
                sample_folder.remove(STAGING)
                return
            with staging:
                for name in staging.names():  # staged files and their temporaries: files only
                    with contextlib.suppress(OSError):
                        staging.remove(name)
            with contextlib.suppress(OSError):
                sample_folder.remove_folder(STAGING)

    def clear_leftovers(self) -> None:
        """What a killed service can leave: staged files, and the hidden temporary of a write cut off (only those
        older than any write takes, where the service writes: another program may be writing right now)."""
        self.clear_staging()
        if not self.default.is_dir():
            return
        cutoff = time.time() - STALE_TEMPORARY_S
        try:
            sample_folder = self._open(self.default)
        except BridgeError as error:  # the writes will say so; nothing of ours to clear there
            log.warning("leftovers not cleared: %s", error)
            return
        with sample_folder:
            for name in sample_folder.names():
                try:  # a subfolder that is a link is not ours: what it leads to is never cleared
                    subfolder = sample_folder.subfolder(name, create=False)
                except OSError:
                    continue
                with subfolder:
                    for temporary in fnmatch.filter(subfolder.names(), TEMPORARY_GLOB):
                        with contextlib.suppress(OSError):
                            entry = subfolder.stat(temporary)
                            if stat.S_ISREG(entry.st_mode) and entry.st_mtime < cutoff:
                                subfolder.remove(temporary)


def discard(path: Path | None) -> None:
    if path is not None:
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            log.debug("could not remove %s: %s", path, error)
