"""A pack's task -> the bytes of its file: a warm engine in whatever process renders (this one, a local worker, a Ray
actor), the same vary path as `dd-bridge vary` (bridge.engine.clips), the same WAV and comment as its files.

``TaskRenderer.render`` depends on the task, its source clip and the plan's settings alone: whoever runs it, the
bytes are the same, given the same kind of device and, on the CPU, the same number of torch threads (its kernels
split sums by thread: --threads).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import torch

from bridge import constants
from bridge.engine import clips
from bridge.engine.audio import Clip, encode_wav
from bridge.engine.checkpoints import load_model
from bridge.engine.devices import made_on
from bridge.engine.engine import Engine
from bridge.engine.guides import registry
from bridge.engine.regions import Region
from bridge.engine.tempo import Bars
from bridge.pack.plan import Task

# The settings a file's comment and recreating command hold, in `dd-bridge vary`'s order (None values are left out),
# so a pack's file and the one its command makes are the same bytes.
COMMAND_OPTIONS = ("steps", "sampler", "format", "precision", "backend", "sample_rate", "window", "finish", "loop",
                   "bars", "bpm", "resample", "guide", "guide_mode")


@dataclass(frozen=True)
class Rendered:
    """A task done: the file's bytes, with what the manifest records of it."""

    task: Task
    data: bytes
    seconds: float  # to render, in the worker
    sha256: str
    model_hash: str
    device: str = "cpu"  # the kind of device it was rendered on (cpu, cuda, mps) ...
    threads: int | None = None  # ... and torch's CPU threads there (None off the CPU): the bytes depend on both


@dataclass(frozen=True)
class Where:
    """Where a worker's engine runs: not part of the plan (a pack may be finished on another machine)."""

    device: str = "auto"
    threads: int | None = None  # torch's CPU threads in this worker (None: as torch chose)
    gpu: int | None = None  # a local worker's CUDA device, made its only one (Ray sets its actors' itself)


class TaskRenderer:
    """One warm engine and the plan's settings; ``render(task, source)`` -> Rendered."""

    def __init__(self, settings: dict, where: Where = Where()):
        if where.threads is not None:
            torch.set_num_threads(where.threads)
        self.settings = settings
        loaded = load_model(settings["model"], sample_rate=settings.get("sample_rate"),
                            window=settings.get("window"))
        self.engine = Engine(loaded, device=where.device, precision=settings["precision"],
                             backend=settings["backend"])
        self.guides = [registry.parse_request(text) for text in settings.get("guide") or []]
        self.guide_mode = registry.resolve_mode(settings["guide_mode"], self.engine.device.type,
                                                self.engine.backend)

    def describe(self) -> dict:
        """The model as the pack's licence and attribution name it."""
        card = self.engine.card
        return {"name": card.name, "model_hash": self.engine.model_hash, "licence": card.licence,
                "provenance": card.provenance, "training_data": card.extra.get("training_data"),
                "notices": card.extra.get("notices"),  # what the licences of its training data ask to travel
                "device": str(self.engine.device), "threads": torch.get_num_threads()}

    def render(self, task: Task, source: Clip, path: str, region: Region | None) -> Rendered:
        s = self.settings
        started = time.perf_counter()
        common = {"noise": task.noise, "steps": s["steps"], "sampler": s["sampler"], "seed": [task.seed],
                  "shape": s["shape"], "guides": self.guides, "guide_mode": self.guide_mode}
        if s.get("loop"):
            resample = {"resample": s["resample"]} if s.get("resample") else {}  # --resample, where given
            (clip,) = clips.vary_loop(self.engine, source, 1, Bars.of(s.get("bars"), s.get("bpm")), **resample,
                                      **common)
        else:
            (clip,) = clips.vary_clip(self.engine, source, 1, finish=s["finish"] == "on", **common)
        options = {"noise": task.noise, "shape": s["shape"], "count": 1, "seed": task.seed,
                   **{key: s.get(key) for key in COMMAND_OPTIONS},
                   # as vary names them: finish only when off, loop only when on, guides only when given
                   "finish": None if s["finish"] == "on" else "off", "loop": True if s.get("loop") else None,
                   "backend": constants.backend_named(s.get("backend")),
                   "guide": s.get("guide") or None, "guide_mode": self.guide_mode if s.get("guide") else None,
                   **made_on(self.engine.device)}  # this worker's device and threads: vary then makes the same bytes
        metadata = clips.render_metadata("vary", model=s["model"], model_hash=self.engine.model_hash,
                                         sources=[path], options=options, regions=[region], index=1, of=1)
        data = encode_wav(clip, s["format"], metadata)
        device = self.engine.device.type
        return Rendered(task, data, time.perf_counter() - started, hashlib.sha256(data).hexdigest(),
                        self.engine.model_hash, device, torch.get_num_threads() if device == "cpu" else None)
