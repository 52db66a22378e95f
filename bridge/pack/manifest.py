"""A pack's manifest: what each file is (source, region, noise, seed, model and hash, every setting, seconds to
render, checksum), as JSON (manifest.json, the whole plan too) and CSV (manifest.csv, one row a file, for a
spreadsheet). Both are rewritten atomically as files land (at most every SAVE_EVERY_S, and at the end), so an
interrupted run resumes from them: a file is done when the manifest lists it and its bytes have that checksum.
``validate`` is the check a pack passes: JSON and CSV agree, every file listed is there with its checksum.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

from bridge import __version__, files
from bridge.errors import BridgeError
from bridge.pack.plan import Plan, Source
from bridge.pack.render import Rendered

JSON_NAME, CSV_NAME = "manifest.json", "manifest.csv"
MANIFEST_BYTES = 1 << 30  # a million files' entries stay well under this
AUDIO_BYTES = 4 << 30  # the WAV format's own limit
SAVE_EVERY_S = 1.0  # a rerun redoes at most this much work; a 10 000-file pack is not rewritten 10 000 times
PLAN_ONLY = ("seed", "per_source", "noise", "model")  # settings of the plan that each entry states on its own
COLUMNS = ("file", "source", "region_start", "region_end", "noise", "seed", "model", "model_hash")
SETTING_COLUMNS = ("steps", "sampler", "shape", "finish", "format", "precision", "backend", "guide", "guide_mode",
                   "loop", "bars", "bpm", "resample", "sample_rate", "window")
TAIL_COLUMNS = ("seconds", "sha256")


class PackError(BridgeError):
    """A pack folder that cannot be used as asked (another pack's, unreadable manifest)."""


def checksum(path: Path) -> str | None:
    """The file's sha256, or None when it is missing or not a regular file."""
    try:
        with files.open_regular(path, AUDIO_BYTES) as file:
            return files.sha256_of(file)
    except OSError:
        return None


def read(folder: Path) -> dict | None:
    """manifest.json of the pack in folder; None when there is none."""
    path = folder / JSON_NAME
    if not path.exists():
        return None
    try:
        data = json.loads(files.read_regular(path, MANIFEST_BYTES))
    except (OSError, ValueError) as error:
        raise PackError(f"{path}: not a readable manifest ({error}); move it away to start this pack afresh")
    if not isinstance(data, dict) or not isinstance(data.get("plan"), dict) or not isinstance(data.get("files"),
                                                                                                   list):
        raise PackError(f"{path}: not a DD Bridge pack manifest")
    return data


def stored_seed(folder: Path) -> int | None:
    """The seed a pack in folder was planned with (a rerun without --seed resumes it)."""
    data = read(folder)
    seed = data["plan"].get("settings", {}).get("seed") if data is not None else None
    return seed if isinstance(seed, int) else None


class Manifest:
    """The entries of a pack being made in ``folder`` (a files.Folder), by file."""

    def __init__(self, folder: files.Folder, plan: Plan, model: dict | None = None):
        self.folder, self.plan, self.model = folder, plan, model
        self.entries: dict[str, dict] = {}
        self.sheets: dict[str, str] = {}  # contact sheet -> sha256
        self._saved = 0.0
        data = read(folder.path)
        if data is not None:
            if data["plan"] != plan.identity():
                raise PackError(f"{folder.path} holds another pack (other sources or settings): give another --out, "
                                "or the same arguments to resume it")
            self.entries = {entry["file"]: entry for entry in data["files"] if isinstance(entry, dict)}
            self.sheets = dict(data.get("sheets") or {})
            self.model = self.model or data.get("model")

    def verified(self, name: str) -> bool:
        """The file is listed and its bytes have the listed checksum."""
        entry = self.entries.get(name)
        return entry is not None and checksum(self.folder.path / name) == entry.get("sha256")

    def record(self, done: Rendered, source: Source) -> None:
        settings = {key: value for key, value in self.plan.settings.items() if key not in PLAN_ONLY}
        self.entries[done.task.file] = {
            "file": done.task.file, "source": str(source.path), "region": source.region_list,
            "noise": done.task.noise, "seed": done.task.seed, "model": self.plan.settings["model"],
            "model_hash": done.model_hash, "settings": settings, "seconds": round(done.seconds, 3),
            "sha256": done.sha256}

    def save(self, *, force: bool = False) -> None:
        """Both files replaced atomically (CSV first: the JSON, which a rerun reads, is never ahead of it)."""
        now = time.monotonic()
        if not force and now - self._saved < SAVE_EVERY_S:
            return
        order = {task.file: i for i, task in enumerate(self.plan.tasks)}
        entries = sorted(self.entries.values(), key=lambda e: order.get(e["file"], len(order)))
        self.folder.replace(CSV_NAME, to_csv(entries).encode("utf-8"), sync=force)
        data = {"dd_bridge": __version__, "plan": self.plan.identity(), "model": self.model, "files": entries,
                "sheets": self.sheets}
        self.folder.replace(JSON_NAME, json.dumps(data, indent=1).encode("utf-8"), sync=force)
        self._saved = now


def row(entry: dict) -> dict:
    """An entry as a CSV row: the region in two columns, each setting in its own, guides joined by "; "."""
    region = entry.get("region") or [None, None]
    settings = entry.get("settings") or {}
    values = {"region_start": region[0], "region_end": region[1],
              **{key: settings.get(key) for key in SETTING_COLUMNS}}
    values.update((key, entry.get(key)) for key in COLUMNS + TAIL_COLUMNS if key not in values)
    if isinstance(values["guide"], list):
        values["guide"] = "; ".join(values["guide"])
    return {key: "" if value is None else str(value) for key, value in values.items()}


def to_csv(entries: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS + SETTING_COLUMNS + TAIL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(row(entry) for entry in entries)
    return buffer.getvalue()


def validate(folder: Path) -> list[str]:
    """What is wrong with the pack in folder (nothing: an empty list): the CSV says what the JSON says, and every
    file listed, contact sheets included, is there with its checksum."""
    data = read(folder)
    if data is None:
        return [f"{folder}: no {JSON_NAME}"]
    problems = []
    try:
        text = files.read_regular(folder / CSV_NAME, MANIFEST_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    expected = [row(entry) for entry in data["files"]]
    if rows != expected:
        problems.append(f"{CSV_NAME} and {JSON_NAME} disagree")
    listed = [(entry["file"], entry["sha256"]) for entry in data["files"]] + list((data.get("sheets") or {}).items())
    for name, sha256 in listed:
        if checksum(folder / name) != sha256:
            problems.append(f"{name}: missing or not the bytes the manifest lists")
    return problems
