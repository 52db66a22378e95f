"""A pack's manifest: what each file is (source, region, noise, seed, model and hash, the device and thread count it
was rendered with, every setting, seconds to render, checksum), as JSON (manifest.json, the whole plan too) and CSV
(manifest.csv, one row a file, for a spreadsheet). Both are rewritten atomically as files land (at most every
SAVE_EVERY_S, and at the end), so an interrupted run resumes from them: a file is done when the manifest lists it
and its bytes have that checksum; a contact sheet is redrawn when a file it shows has changed (``sheet_files``).
``validate`` is the check a pack passes: JSON and CSV agree, every file listed is there with its checksum.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

from bridge import __version__, files
from bridge.engine.guides import grammar
from bridge.errors import BridgeError
from bridge.pack.plan import Plan, Source
from bridge.pack.render import Rendered

JSON_NAME, CSV_NAME = "manifest.json", "manifest.csv"
MANIFEST_BYTES = 1 << 30  # a million files' entries stay well under this
AUDIO_BYTES = 4 << 30  # the WAV format's own limit
SAVE_EVERY_S = 1.0  # a rerun redoes at most this much work; a 10 000-file pack is not rewritten 10 000 times
PLAN_ONLY = ("seed", "per_source", "noise", "model")  # settings of the plan that each entry states on its own
COLUMNS = ("file", "source", "region_start", "region_end", "noise", "seed", "model", "model_hash", "device",
           "threads")
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


def stored_run(folder: Path) -> tuple[int | None, int | None]:
    """(seed, threads) of the pack in folder, None for what it does not say: the seed it was planned with, and the
    torch threads its files were rendered with on the CPU (the most of them), so that a rerun without --seed or
    --threads renders the rest as the rest was rendered, whatever --workers (whose count shares out the cores)."""
    data = read(folder)
    if data is None:
        return None, None
    settings = data["plan"].get("settings")
    seed = settings.get("seed") if isinstance(settings, dict) else None
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    threads = [entry.get("threads", model.get("threads")) for entry in data["files"] if isinstance(entry, dict)
               and str(entry.get("device", model.get("device"))).split(":")[0] == "cpu"]
    threads = [one for one in threads if isinstance(one, int) and not isinstance(one, bool) and one > 0]
    return (seed if isinstance(seed, int) else None), (max(set(threads), key=threads.count) if threads else None)


class Manifest:
    """The entries of a pack being made in ``folder`` (a files.Folder), by file."""

    def __init__(self, folder: files.Folder, plan: Plan, model: dict | None = None):
        self.folder, self.plan, self.model = folder, plan, model
        self.entries: dict[str, dict] = {}
        self.sheets: dict[str, str] = {}  # contact sheet -> sha256
        self.shown: dict[str, str] = {}  # contact sheet -> a digest of the checksums of the files it shows
        self._saved = 0.0
        data = read(folder.path)
        if data is not None:
            _as_planned_now(data["plan"])
            if data["plan"] != plan.identity():
                raise PackError(f"{folder.path} holds another pack ({differences(data['plan'], plan.identity())}): "
                                "give another --out, or the same arguments to resume it")
            self.entries = {entry["file"]: entry for entry in data["files"]
                            if isinstance(entry, dict) and isinstance(entry.get("file"), str)}
            stored = data.get("model") if isinstance(data.get("model"), dict) else {}
            for entry in self.entries.values():  # an older pack's entries: made how its model says, once and for all
                for key in ("device", "threads"):  # (a resume replaces the model with its own run's)
                    entry.setdefault(key, stored.get(key))
            self.sheets = _strings(data.get("sheets"))
            self.shown = _strings(data.get("sheet_files"))
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
            "model_hash": done.model_hash, "device": done.device, "threads": done.threads, "settings": settings,
            "seconds": round(done.seconds, 3), "sha256": done.sha256}

    def save(self, *, force: bool = False) -> None:
        """Both files replaced atomically (CSV first: the JSON, which a rerun reads, is never ahead of it)."""
        now = time.monotonic()
        if not force and now - self._saved < SAVE_EVERY_S:
            return
        order = {task.file: i for i, task in enumerate(self.plan.tasks)}
        entries = sorted(self.entries.values(), key=lambda e: order.get(e["file"], len(order)))
        self.folder.replace(CSV_NAME, to_csv(entries).encode("utf-8"), sync=force)
        data = {"dd_bridge": __version__, "plan": self.plan.identity(), "model": self.model, "files": entries,
                "sheets": self.sheets, "sheet_files": self.shown}
        self.folder.replace(JSON_NAME, json.dumps(data, indent=1).encode("utf-8"), sync=force)
        self._saved = now


def _as_planned_now(plan: dict) -> None:
    """An older pack's plan as this version plans the same command: guides of weight 0 are left out of a plan since
    2026-12-06 (they never acted: "0 is off", docs/guidance.md), so `--guide brightness=0` resumes the pack it made
    before, whose manifest still lists it."""
    settings = plan.get("settings") if isinstance(plan, dict) else None
    guides = settings.get("guide") if isinstance(settings, dict) else None
    if isinstance(guides, list):
        settings["guide"] = [text for text in guides if grammar.weight_of(text) != 0]


def differences(before: dict, now: dict) -> str:
    """What makes the plan of a pack (``before``, as its manifest holds it) another than ``now`` (Plan.identity()),
    in a few words: the sources added or missing, the settings given otherwise ("--steps 8, the pack's 3")."""
    def sources(plan) -> dict:
        listed = plan.get("sources") if isinstance(plan.get("sources"), list) else []
        return {_source_said(one): one for one in listed if isinstance(one, dict)}

    said = []
    old, new = sources(before), sources(now)
    for what, names in (("added", [name for name in new if name not in old]),
                        ("missing", [name for name in old if name not in new])):
        if names:
            more = f" and {len(names) - 1} more" if len(names) > 1 else ""
            said.append(f"{len(names)} source{'s' * (len(names) > 1)} {what}: {names[0]}{more}")
    if not said and list(old) != list(new):
        said.append("the sources in another order")
    if not said and [one.get("folder") for one in old.values()] != [one.get("folder") for one in new.values()]:
        said.append("the sources' folders named otherwise")
    old_settings = before.get("settings") if isinstance(before.get("settings"), dict) else {}
    new_settings = now.get("settings") or {}
    for key in dict.fromkeys([*new_settings, *old_settings]):
        if old_settings.get(key) != new_settings.get(key):
            said.append(f"--{key.replace('_', '-')} {_value_said(new_settings.get(key))}, the pack's "
                        f"{_value_said(old_settings.get(key))}")
    return "; ".join(said) or "other sources or settings"


def _source_said(source: dict) -> str:
    region = source.get("region")
    at = f" ({region[0]:g}-{region[1]:g} s)" if isinstance(region, list) and len(region) == 2 and \
        all(isinstance(x, (int, float)) for x in region) else ""
    return f"{source.get('path')}{at}"


def _value_said(value) -> str:
    if value is None:
        return "not given"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(f"{one:g}" if isinstance(one, float) else str(one) for one in value) or "none"
    return files.shown(value) if not isinstance(value, (int, float, str)) else str(value)


def _strings(value) -> dict[str, str]:
    """A manifest's {name: checksum} mapping, without what is not one (a damaged manifest is read, not trusted)."""
    if not isinstance(value, dict):
        return {}
    return {name: text for name, text in value.items() if isinstance(name, str) and isinstance(text, str)}


def row(entry: dict) -> dict:
    """An entry as a CSV row: the region in two columns, each setting in its own, guides joined by "; "."""
    region = entry.get("region")
    region = region if isinstance(region, list) and len(region) == 2 else [None, None]
    settings = entry.get("settings") if isinstance(entry.get("settings"), dict) else {}
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
    problems, entries = [], []
    for number, entry in enumerate(data["files"], 1):
        if isinstance(entry, dict) and all(isinstance(entry.get(key), str) for key in ("file", "sha256")):
            entries.append(entry)
        else:
            problems.append(f"{JSON_NAME}: entry {number} is damaged (no file name or no sha256)")
    try:
        text = files.read_regular(folder / CSV_NAME, MANIFEST_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    # the columns the CSV has (a pack made before a column was added still agrees), file and checksum at least
    columns = [key for key in reader.fieldnames or () if key in COLUMNS + SETTING_COLUMNS + TAIL_COLUMNS]
    expected = [{key: value for key, value in row(entry).items() if key in columns} for entry in entries]
    if not {"file", "sha256"} <= set(columns) or rows != expected:
        problems.append(f"{CSV_NAME} and {JSON_NAME} disagree")
    sheets = data.get("sheets") or {}
    if not isinstance(sheets, dict):
        problems.append(f"{JSON_NAME}: its list of contact sheets is damaged")
        sheets = {}
    listed = [(entry["file"], entry["sha256"]) for entry in entries] + list(sheets.items())
    for name, sha256 in listed:
        if not isinstance(name, str) or Path(name).is_absolute() or ".." in Path(name).parts:
            problems.append(f"{JSON_NAME}: {files.shown(name)} is not a file of this pack")
        elif checksum(folder / name) != sha256:
            problems.append(f"{name}: missing or not the bytes the manifest lists")
    return problems
