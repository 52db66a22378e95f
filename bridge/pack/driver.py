"""The driver of a pack: the one process that writes it, whoever renders.

In order: the pack folder's leftovers of an interrupted run are removed (our hidden temporaries only); the tasks
not done and verified are handed to the workers with their source audio; each file that comes back is written
atomically under its planned name (a reader never sees half a file) and entered in the manifest; then the model's
licence and attribution, and a contact sheet per source (skipped, and said, without matplotlib).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bridge import files, pictures
from bridge.engine.audio import read_audio
from bridge.errors import AudioError
from bridge.pack import manifest as manifests
from bridge.pack.manifest import Manifest
from bridge.pack.plan import Plan, Source, Task
from bridge.progress import Bar

log = logging.getLogger(__name__)

SHEET_NAME = "contact sheet.png"
SHEET_VARIATIONS = 6  # per noise level on a source's sheet: enough to see the spread, small enough to read
LICENCE_NAME, ATTRIBUTION_NAME = "LICENCE.txt", "ATTRIBUTION.txt"


@dataclass(frozen=True)
class Summary:
    files: int
    rendered: int
    sheets: int
    seconds: float


def make_pack(plan: Plan, out: Path, open_workers: Callable[[], object], *, progress: Bar | None = None) -> Summary:
    """The pack of ``plan`` in ``out``, resuming what is there; ``open_workers()`` is called only if there is
    rendering to do or the model is not yet described."""
    started = time.perf_counter()
    with files.open_folder(out, AudioError) as folder:
        pack = Manifest(folder, plan)
        _remove_leftovers(folder, plan)
        todo = [task for task in plan.tasks if not pack.verified(task.file)]
        rendered = 0
        if todo or pack.model is None:
            workers = open_workers()
            try:
                pack.model = workers.describe()
                rendered = _render(plan, folder, pack, workers, todo, progress)
            finally:
                pack.save(force=True)
                workers.close()
        _write_licence(folder, pack.model)
        sheets = _draw_sheets(plan, folder, pack)
        pack.save(force=True)
    return Summary(len(plan.tasks), rendered, sheets, time.perf_counter() - started)


def _render(plan: Plan, folder: files.Folder, pack: Manifest, workers, todo: list[Task], progress) -> int:
    done = len(plan.tasks) - len(todo)
    folders: dict[str, files.Folder] = {}
    try:
        for result in workers.results(_jobs(plan, todo)):
            source = plan.sources[result.task.source]
            if source.folder not in folders:
                folders[source.folder] = folder.subfolder(source.folder)
            folders[source.folder].replace(result.task.file.rsplit("/", 1)[1], result.data)
            pack.record(result, source)
            pack.save()
            done += 1
            if progress is not None:
                progress(done, len(plan.tasks))
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
            for leftover in here.names():
                if leftover.startswith(files.TEMPORARY_PREFIX) and files.TEMPORARY_MARK in leftover:
                    here.remove(leftover)


def _write_licence(folder: files.Folder, model: dict) -> None:
    """The model's licence as its card states it, and what to credit, beside the sounds it made."""
    credit = [f"Sounds in this pack were made with DD Bridge from the model {model['name']} "
              f"(sha256 {model['model_hash']}).", "", f"Model licence: {model['licence']}", "",
              f"Provenance: {model['provenance']}"]
    if model.get("training_data"):
        credit += ["", "Trained on:", json.dumps(model["training_data"], indent=1, ensure_ascii=False)]
    for name, text in ((LICENCE_NAME, model["licence"] + "\n"), (ATTRIBUTION_NAME, "\n".join(credit) + "\n")):
        folder.replace(name, text.encode("utf-8"))


def _draw_sheets(plan: Plan, folder: files.Folder, pack: Manifest) -> int:
    """A contact sheet per source whose sheet is missing or changed: the source, then a few variations per noise
    level, one row each. Without matplotlib: none, and said once."""
    if not pictures.available():
        log.info("pack: contact sheets skipped (pictures need matplotlib: pip install 'dd-bridge[plots]')")
        return 0
    drawn = 0
    for k, source in enumerate(plan.sources):
        name = f"{source.folder}/{SHEET_NAME}"
        if name in pack.sheets and manifests.checksum(folder.path / name) == pack.sheets[name]:
            continue
        tasks = [task for task in plan.tasks if task.source == k]
        if not all(task.file in pack.entries for task in tasks):
            continue  # not all rendered (a run stopped): the rerun draws it
        path = pictures.contact_sheet(folder.path / name, _sheet_rows(source, tasks, folder.path), replace=True,
                                      title=f"{source.folder} · {plan.settings['model']} · "
                                            f"{plan.settings['sampler']}, {plan.settings['steps']} steps")
        pack.sheets[name] = manifests.checksum(path)
        drawn += 1
    return drawn


def _sheet_rows(source: Source, tasks: list[Task], out: Path) -> list[list[pictures.Tile]]:
    original = read_audio(source.path, source.region)
    rows = []
    for noise in dict.fromkeys(task.noise for task in tasks):
        shown = [task for task in tasks if task.noise == noise][:SHEET_VARIATIONS]
        rows.append([pictures.Tile(f"{source.path.name} (source)", original)]
                    + [pictures.Tile(f"noise {noise:g} · seed {task.seed}", read_audio(out / task.file))
                       for task in shown])
    return rows
