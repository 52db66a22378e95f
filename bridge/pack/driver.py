"""The driver of a pack: the one process that writes it, whoever renders.

A run holds the pack folder for itself (``locked``): a second run into the same folder is refused, never mixed in.
In order: the pack folder's leftovers of an interrupted run are removed (our hidden temporaries only); the tasks
not done and verified are handed to the workers with their source audio; each file that comes back is written
atomically under its planned name (a reader never sees half a file) and entered in the manifest; then the model's
licence and attribution, and a contact sheet per source (skipped, and said, without matplotlib). Ctrl-C (or a kill)
ends the workers at once and writes the files that had come back.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from bridge import constants, files, pictures
from bridge.engine.audio import read_audio
from bridge.errors import AudioError
from bridge.pack import manifest as manifests
from bridge.pack.manifest import Manifest, PackError
from bridge.pack.plan import Plan, Source, Task
from bridge.progress import Bar

try:
    import fcntl
except ImportError:  # Windows: no flock (msvcrt.locking locks byte ranges, not a file); packs there go unlocked
    fcntl = None

log = logging.getLogger(__name__)

SHEET_NAME = "contact sheet.png"
SHEET_VARIATIONS = 6  # per noise level on a source's sheet: enough to see the spread, small enough to read
LICENCE_NAME, ATTRIBUTION_NAME = "LICENCE.txt", "ATTRIBUTION.txt"
# Held (flock) by the run writing the pack, removed when it ends; hidden, and not a temporary (no TEMPORARY_MARK):
# leftovers are never taken for it.
LOCK_NAME = files.TEMPORARY_PREFIX + "pack.lock"
_HELD = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)  # what flock answers when another holds the lock


@dataclass(frozen=True)
class Summary:
    files: int
    rendered: int
    sheets: int
    seconds: float


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """The pack folder ``out`` held by this run alone while in the with (an exclusive flock on LOCK_NAME in it):
    another run into it is refused in one line, before it reads or writes anything there (two runs both "succeeded"
    and left a manifest that matched no file). The lock ends with the process, however it ends (kill -9 too)."""
    if fcntl is None:
        yield
        return
    with files.open_folder(out, AudioError) as folder:
        held = _lock(folder)
        try:
            yield
        finally:
            if held is not None:
                with contextlib.suppress(OSError):
                    folder.remove(LOCK_NAME)  # while still held: a run waiting on this file then looks again
                os.close(held)


def _lock(folder: files.Folder) -> int | None:
    """The open, locked LOCK_NAME (its descriptor), or None where the folder's file system takes no locks."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        try:
            fd = os.open(folder._at(LOCK_NAME), flags, 0o666, dir_fd=folder.fd)
        except OSError as error:  # a read-only folder or disk, a link put in its place
            raise PackError(f"{folder.path / LOCK_NAME}: cannot open the pack's lock file ({files.reason(error)}); "
                            "the pack folder must be writable") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in _HELD:
                raise PackError(f"{folder.path}: another dd-bridge pack is writing this folder; wait for it to "
                                "finish") from None
            log.debug("%s: not locked (%s)", folder.path, files.reason(error))  # a share without locks: go on
            with contextlib.suppress(OSError):
                folder.remove(LOCK_NAME)  # a lock that locks nothing: not left in the pack as a stray hidden file
            return None
        try:
            same = os.fstat(fd).st_ino == folder.stat(LOCK_NAME).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the run that held it ended and removed it meanwhile: lock the file there now


def make_pack(plan: Plan, out: Path, open_workers: Callable[[], object], *, progress: Bar | None = None) -> Summary:
    """The pack of ``plan`` in ``out``, resuming what is there; ``open_workers()`` is called only if there is
    rendering to do or the model is not yet described. The caller holds ``locked(out)``."""
    started = time.perf_counter()
    with files.open_folder(out, AudioError) as folder:
        pack = Manifest(folder, plan)
        _remove_leftovers(folder, plan)
        todo = [task for task in plan.tasks if not pack.verified(task.file)]
        rendered = 0
        # The model described anew where the pack does not say it all: a pack made before its card's notices
        # were recorded gets them in ATTRIBUTION.txt (a complete pack otherwise never opens a worker again).
        if todo or pack.model is None or "notices" not in pack.model:
            workers = open_workers()
            try:
                model = workers.describe()
                if todo or pack.model is None:
                    _check_model(pack, model, set(pack.entries) - {task.file for task in todo})
                    pack.model = model
                    rendered = _render(plan, folder, pack, workers, todo, progress)
                elif model.get("model_hash") == pack.model.get("model_hash"):  # complete: only the notices
                    pack.model = {**pack.model, "notices": model.get("notices")}
                else:  # complete, and its model has changed since (a newer bundled model): nothing to finish
                    log.info("%s: complete; its model's weights changed since it was made, so its attribution "
                             "is left as it was", out)
            except BaseException:
                workers.stop()  # an error or Ctrl-C: the workers end now, not after the renders in flight
                raise
            finally:
                pack.save(force=True)
                workers.close()
        _write_licence(folder, pack.model)
        sheets = _draw_sheets(plan, folder, pack)
        pack.save(force=True)
    return Summary(len(plan.tasks), rendered, sheets, time.perf_counter() - started)


def _check_model(pack: Manifest, model: dict, kept: set[str]) -> None:
    """A resume renders with the weights the pack's files were made with (refused otherwise: a pack of two models
    is no one model's, and its licence and attribution name one); rendering on another device or thread count is
    said in one line (the bytes then differ in their last bits; each file's comment names how it was made)."""
    entries = [pack.entries[name] for name in sorted(kept)]
    before = pack.model or {}
    hashes = {entry.get("model_hash") for entry in entries} - {None, model["model_hash"]}
    if hashes:
        raise PackError(f"{pack.folder.path}: its files were made with other weights of {model['name']} (sha256 "
                        f"{min(hashes)[:12]}..., now {model['model_hash'][:12]}...): give another --out, or put "
                        "those weights back to finish this pack")
    now = made_with(model.get("device"), model.get("threads"))
    made = [made_with(entry.get("device", before.get("device")), entry.get("threads", before.get("threads")))
            for entry in entries]
    other = [one for one in made if one != now and one[0] is not None]
    if other:
        log.warning("pack: this run renders %s; %d of the %d files already made were made %s, so the pack mixes the "
                    "two (each file's comment names its own --device and --threads)", _said(now), len(other),
                    len(made), _said(max(set(other), key=other.count)))


def made_with(device: str | None, threads: int | None) -> tuple[str | None, int | None]:
    """(device type, threads on the CPU): what a file's bytes depend on besides the plan (render.made_on)."""
    kind = str(device).split(":")[0] if device is not None else None
    return kind, threads if kind == "cpu" else None


def _said(made: tuple[str | None, int | None]) -> str:
    device, threads = made
    return f"with --device {device} --threads {threads}" if threads is not None else f"with --device {device}"


def _render(plan: Plan, folder: files.Folder, pack: Manifest, workers, todo: list[Task], progress) -> int:
    done = len(plan.tasks) - len(todo)
    folders: dict[str, files.Folder] = {}

    def write(result) -> None:
        nonlocal done
        source = plan.sources[result.task.source]
        if source.folder not in folders:
            folders[source.folder] = folder.subfolder(source.folder)
        folders[source.folder].replace(result.task.file.rsplit("/", 1)[1], result.data)
        pack.record(result, source)
        pack.save()
        done += 1
        if progress is not None:
            progress(done, len(plan.tasks))

    try:
        try:
            for result in workers.results(_jobs(plan, todo)):
                write(result)
        except KeyboardInterrupt:  # Ctrl-C, or a kill (bridge.cli.pack): what had come back is kept
            for result in workers.stop():
                write(result)
            raise
    finally:
        for opened in folders.values():
            opened.close()
    return len(todo)


def _jobs(plan: Plan, todo: list[Task]) -> Iterator[tuple]:
    """(task, source clip, source path, region) for each task; a source is read once for its run of tasks."""
    current, clip = None, None
    for task in todo:
        source = plan.sources[task.source]
        if task.source != current:
            current, clip = task.source, read_audio(source.path, source.region)
        yield task, clip, str(source.path), source.region


def _remove_leftovers(folder: files.Folder, plan: Plan) -> None:
    """Hidden temporaries a killed run left behind (ours by name), in the pack and its source folders."""
    for name in [None, *dict.fromkeys(source.folder for source in plan.sources)]:
        if name is not None and not folder.exists(name):
            continue
        with (folder.subfolder(name) if name is not None else files.Folder(folder.path)) as here:
            files.remove_leftovers(here)  # the pack's lock makes every temporary there a leftover


def _write_licence(folder: files.Folder, model: dict) -> None:
    """The model's licence as its card states it, and what to credit, beside the sounds it made."""
    credit = [f"Sounds in this pack were made with DD Bridge from the model {model['name']} "
              f"(sha256 {model['model_hash']}).", "", f"Model licence: {model['licence']}", "",
              f"Provenance: {model['provenance']}"]
    if model.get("training_data"):
        credit += ["", "Trained on:", json.dumps(model["training_data"], indent=1, ensure_ascii=False)]
    if model.get("notices"):  # the "copied below" of the sets' licence_source: the notices their licences ask for
        credit += ["", "Notices (from the model's card: the licences of what it learnt from ask that they travel "
                   "with copies):", yaml.safe_dump(model["notices"], allow_unicode=True, sort_keys=False, width=100)]
    for name, text in ((LICENCE_NAME, model["licence"] + "\n"), (ATTRIBUTION_NAME, "\n".join(credit) + "\n")):
        folder.replace(name, text.encode("utf-8"))


def _draw_sheets(plan: Plan, folder: files.Folder, pack: Manifest) -> int:
    """A contact sheet per source whose sheet is missing or changed: the source, then a few variations per noise
    level, one row each. Without matplotlib: none, and said once."""
    if not pictures.available():
        log.info("pack: contact sheets skipped (pictures need matplotlib: %s)",
                 constants.install_command(pictures.EXTRA))
        return 0
    drawn = 0
    for k, source in enumerate(plan.sources):
        name = f"{source.folder}/{SHEET_NAME}"
        tasks = [task for task in plan.tasks if task.source == k]
        if not all(task.file in pack.entries for task in tasks):
            continue  # not all rendered (a run stopped): the rerun draws it
        rows = _shown(tasks)
        shows = _digest([pack.entries[task.file].get("sha256") for row in rows for task in row])
        if (name in pack.sheets and manifests.checksum(folder.path / name) == pack.sheets[name]
                and pack.shown.get(name) == shows):
            continue  # there, and showing the files as they are (a file rendered again is drawn again)
        path = pictures.contact_sheet(folder.path / name, _sheet_rows(source, rows, folder.path), replace=True,
                                      title=f"{source.folder} · {plan.settings['model']} · "
                                            f"{plan.settings['sampler']}, {plan.settings['steps']} steps")
        pack.sheets[name] = manifests.checksum(path)
        pack.shown[name] = shows
        drawn += 1
    return drawn


def _shown(tasks: list[Task]) -> list[list[Task]]:
    """The tasks a source's sheet shows: a row of the first few per noise level."""
    return [[task for task in tasks if task.noise == noise][:SHEET_VARIATIONS]
            for noise in dict.fromkeys(task.noise for task in tasks)]


def _digest(checksums: list) -> str:
    return hashlib.sha256("\n".join(map(str, checksums)).encode()).hexdigest()


def _sheet_rows(source: Source, rows: list[list[Task]], out: Path) -> list[list[pictures.Tile]]:
    original = read_audio(source.path, source.region)
    return [[pictures.Tile(f"{source.path.name} (source)", original)]
            + [pictures.Tile(f"noise {task.noise:g} · seed {task.seed}", read_audio(out / task.file)) for task in row]
            for row in rows]
