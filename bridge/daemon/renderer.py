"""The service's one warm model: the engine and the file-level operations behind one small object.

The worker thread is the only caller. Loading falls back to a small random-weight stand-in only when no model was
asked for and the bundled default is not installed, and says so loudly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from bridge import constants
from bridge.engine import clips
from bridge.engine.audio import Clip
from bridge.engine.checkpoints import LoadedModel, load_model
from bridge.engine.devices import made_on
from bridge.engine.tempo import Bars
from bridge.engine.engine import Engine
from bridge.engine.guides.registry import resolve_mode
from bridge.engine.modelcard import find_model
from bridge.engine.unet import DanceDiffusionUNet, UNetConfig
from bridge.errors import CheckpointError

log = logging.getLogger(__name__)

STAND_IN_NAME = "random-stand-in"
# The real layout at 1/200 of the size: attention only on the three innermost levels, where it is cheap.
STAND_IN_ARCHITECTURE = UNetConfig(channels=(16, 16, 32, 32, 32, 32, 64, 64), n_attn_layers=1)
STAND_IN_WINDOW = constants.DEFAULT_WINDOW


def stand_in_model() -> LoadedModel:
    """A small random-weight model in the real architecture: the service runs, the sounds are noise."""
    return LoadedModel.from_network(DanceDiffusionUNet(STAND_IN_ARCHITECTURE), name=STAND_IN_NAME,
                                    sample_rate=constants.DEFAULT_SAMPLE_RATE, window=STAND_IN_WINDOW,
                                    provenance="random weights made at start-up", licence="none")


def load_for_service(spec: str | None) -> tuple[LoadedModel, str]:
    """The model and the reference to it that `dd-bridge --model` takes (what the recreate commands name)."""
    if spec is None:
        try:
            find_model(constants.DEFAULT_MODEL)
        except CheckpointError as error:
            log.warning("!" * 78)
            log.warning("the bundled model %r is not installed (%s)", constants.DEFAULT_MODEL, error)
            log.warning("running on a RANDOM-WEIGHT stand-in model: it renders noise, not drums.")
            log.warning("give a real model with --model (a .ckpt, a diffusers folder or a model card name)")
            log.warning("!" * 78)
            return stand_in_model(), STAND_IN_NAME
        spec = constants.DEFAULT_MODEL
    return load_model(spec), reference_for(spec)


def reference_for(spec: str) -> str:
    """How the service names a model it loads by ``spec``: a path made absolute, a card's name as it is."""
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def model_stamp(spec: str | None) -> tuple | None:
    """The size and modification time of each file of the model ``spec`` names (the card beside the weights, every
    file of a diffusers folder): equal while nothing was saved over it. None where it names nothing on disk."""
    try:
        path = find_model(constants.DEFAULT_MODEL if spec is None else spec)
        files = sorted([*path.glob("*"), *path.glob("*/*")]) if path.is_dir() else sorted(
            sibling for sibling in path.parent.iterdir() if sibling.stem == path.stem)
        return tuple((str(file), stat.st_size, stat.st_mtime_ns)
                     for file in files if file.is_file() for stat in [file.stat()])
    except (CheckpointError, OSError):
        return None


def press_length(length: int) -> int:
    """The samples the engine runs a finished render of ``length`` samples on, before its padding to the network's
    multiple: a new sound's or a variation's silence before and after it (clips.vary_clip, clips.generate_clips)."""
    return clips.LEAD_IN + length + clips.EDGE_MARGIN


def warm_shapes(engine: Engine) -> list[tuple[int, int]]:
    """The (batch, length) shapes the network runs a default press at, each at the engine's batch for it: a new
    sound of the model's window (generate's default) and a variation of a clip up to that long, and a variation of
    a short one-shot (up to the network's shortest length: the bundled model's 0.5 s). A shorter batch is padded to
    these; every other length runs eagerly. Lengths are not bucketed: padding changes the sound."""
    lengths = sorted({engine.padded_length(press_length(1)), engine.padded_length(press_length(engine.window))})
    return [(engine.batch_size(length), length) for length in lengths]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    reference: str
    hash: str
    device: str
    precision: str
    sample_rate: int
    window: int
    parameters: int
    recreatable: bool
    backend: str = constants.DEFAULT_BACKEND  # what ran the network: named in a file's command unless torch


@dataclass(frozen=True)
class Made:
    """What a file's metadata says of the model and the machine that rendered it, taken on the render thread as it
    rendered: a variation held for a later write (prefetch, audition) keeps this, not the Renderer, whose weights
    and GPU memory would stay alive as long as it is held, a model switch or more after."""

    info: ModelInfo
    guide_mode: str
    machine: tuple[tuple[str, object], ...]  # made_on(): the device and threads the render ran on (CPU only)

    def metadata(self, operation: str, sources, options: dict, **details) -> dict:
        options = {**options, "precision": self.info.precision, "backend": constants.backend_named(self.info.backend),
                   **dict(self.machine)}
        if options.get("guide"):  # guided: the mode it ran in (auto picks by device), so the command names it
            options["guide_mode"] = self.guide_mode
        data = clips.render_metadata(operation, model=self.info.reference, model_hash=self.info.hash,
                                     sources=sources, options=options, **details)
        if not self.info.recreatable:
            data["command"] = "(rendered by a random-weight stand-in model: cannot be recreated)"
        return data


class Renderer:
    def __init__(self, loaded: LoadedModel, reference: str, device: str = "auto", precision: str = "auto",
                 backend: str = "torch", max_batch: int | None = None):
        self.stamp: tuple | None = None  # the files' model_stamp when load() read them; None: always load again
        kwargs = {} if precision == "auto" else {"precision": precision}
        self.engine = Engine(loaded, device=device, backend=backend, max_batch=max_batch, **kwargs)
        self.guide_mode = resolve_mode("auto", self.engine.device.type, backend)  # the CLI's default, likewise
        self.info = ModelInfo(
            name=loaded.name, reference=reference, hash=self.engine.model_hash, device=str(self.engine.device),
            precision=str(getattr(self.engine, "precision", precision)), sample_rate=self.engine.sample_rate,
            window=self.engine.window, parameters=loaded.num_parameters,
            recreatable=reference != STAND_IN_NAME, backend=backend)

    @classmethod
    def load(cls, spec: str | None, device: str = "auto", precision: str = "auto",
             backend: str = "torch") -> "Renderer":
        stamp = model_stamp(spec)  # before reading: a save during the load reads as a change next time
        loaded, reference = load_for_service(spec)
        renderer = cls(loaded, reference, device, precision, backend)
        renderer.stamp = stamp if reference != STAND_IN_NAME else None
        return renderer

    def is_loaded(self, spec: str | None) -> bool:
        """Whether ``spec`` names the model this renderer holds, with its files unchanged since it was loaded: a
        DAW that names its model before every request (REAPER's Settings) must not reload it, nor lose the
        variations rendered ahead, each time; a model saved again (retrained) is loaded again."""
        if self.stamp is None:
            return False
        try:
            reference = constants.DEFAULT_MODEL if spec is None else reference_for(spec)
        except OSError:
            return False
        return reference == self.info.reference and model_stamp(spec) == self.stamp

    def warm_up(self) -> None:
        """CUDA: compile the network for the shapes of a default press (warm_shapes) now, not on a key press; other
        shapes run eagerly (bridge.engine.backends.cuda). On the render thread: the CUDA graphs recorded here belong
        to the thread that records them (the worker calls this before its first job, and for a new model before
        it takes it). Nothing to do on other devices."""
        warm_up = getattr(self.engine.network, "warm_up", None)
        if warm_up is not None:
            warm_up(warm_shapes(self.engine))

    @property
    def batch_size(self) -> int:
        """Outputs the device renders at once (one on a CPU, where batching makes each slower): the engine's batch
        for a window-long press, as it runs (clips.LEAD_IN and clips.EDGE_MARGIN around it)."""
        return self.engine.batch_size(press_length(self.engine.window))

    @property
    def samplers(self) -> tuple[str, ...]:
        from bridge.engine.samplers import SAMPLERS
        return tuple(SAMPLERS)

    def vary(self, clip: Clip, seeds: list[int], *, loop: bool = False, bars: Bars | None = None,
             **kwargs) -> list[Clip]:
        if loop:
            return clips.vary_loop(self.engine, clip, len(seeds), bars, seed=list(seeds), guide_mode=self.guide_mode,
                                   **kwargs)
        return clips.vary_clip(self.engine, clip, len(seeds), seed=list(seeds), guide_mode=self.guide_mode, **kwargs)

    def generate(self, seeds: list[int], seconds: float | None, *, loop: bool = False, bars: Bars | None = None,
                 **kwargs) -> list[Clip]:
        if loop:
            return clips.generate_loops(self.engine, len(seeds), bars, seed=list(seeds), guide_mode=self.guide_mode,
                                        **kwargs)
        return clips.generate_clips(self.engine, len(seeds), seconds, seed=list(seeds), guide_mode=self.guide_mode,
                                    **kwargs)

    def repaint(self, clip: Clip, seeds: list[int], start: float, end: float, **kwargs) -> list[Clip]:
        return clips.repaint_clip(self.engine, clip, len(seeds), start, end, seed=list(seeds),
                                  guide_mode=self.guide_mode, **kwargs)

    def extend(self, clip: Clip, seeds: list[int], seconds: float, **kwargs) -> list[Clip]:
        return clips.extend_clip(self.engine, clip, len(seeds), seconds, seed=list(seeds), guide_mode=self.guide_mode,
                                 **kwargs)

    def interpolate(self, a: Clip, b: Clip, count: int, **kwargs) -> list[Clip]:
        return clips.interpolate_clips(self.engine, a, b, count, guide_mode=self.guide_mode, **kwargs)

    def made(self) -> Made:
        """What the files of a render made now say of it; called on the render thread, whose device and torch
        threads are the ones the command needs for the same bytes."""
        return Made(self.info, self.guide_mode, tuple(made_on(self.engine.device).items()))

    def metadata(self, operation: str, sources, options: dict, **details) -> dict:
        return self.made().metadata(operation, sources, options, **details)

