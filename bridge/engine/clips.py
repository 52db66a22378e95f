"""The operations on audio as producers have it: clips in, clips out; shared by the CLI and the service.

The engine works on [2, L] tensors at the model's rate; these functions take a clip to that form and bring every
result back. A variation keeps its source's frames, rate and channels exactly. An interpolation takes the frames,
rate and channels of its first clip `a`; `b` is fitted to `a`'s length (cut, or padded with silence at the end).
A clip longer than the model's window is rendered in one pass: the U-Net is convolutional, so it takes any length
that is a multiple of its length multiple (the engine pads and trims), at a memory cost that grows with length.
So every operation first checks the length it will render, once resampled to the model's rate but before the
resampling, against the longest the memory free now allows (``Engine.check_length``, bridge.engine.memory).
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

from torch.nn import functional as F

from bridge import __version__
from bridge.constants import DEFAULT_NOISE, DEFAULT_SAMPLER, DEFAULT_SHAPE, DEFAULT_STEPS
from bridge.engine.audio import Clip, from_model, model_length, read_audio, to_model
from bridge.engine.finish import finish, fit_level
from bridge.engine.guidance import source_shape
from bridge.engine.guides import registry
from bridge.engine.guides.builtin import GuideContext
from bridge.engine.regions import Region
from bridge.errors import ConfigError

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None] | None
Cancel = Callable[[], bool] | None
Seed = int | Sequence[int] | None
Guides = Sequence[registry.GuideRequest]

LONG_CLIP_WINDOWS = 4  # beyond this many model windows, say that one pass needs that much more memory


def vary_clip(engine, clip: Clip, count: int, *, noise: float = DEFAULT_NOISE, steps: int = DEFAULT_STEPS,
              sampler: str = DEFAULT_SAMPLER, seed: Seed = None, shape: float = DEFAULT_SHAPE,
              finish: bool = True, guides: Guides = (), guide_mode: str = "cheap", progress: Progress = None,
              cancel: Cancel = None) -> list[Clip]:
    """`count` variations of clip at noise level `noise`, each with clip's frames, sample rate and channels.

    `shape` in [0, 1] is how closely each variation keeps to the source's time-frequency envelope
    (bridge.engine.guidance.source_shape; 0: the model alone). The renders are finished as every file is
    (bridge.engine.finish), keeping the source's own content below 20 Hz. `finish=False`: the network alone,
    clamped, as diffusers' pipeline writes it (no shape, no finish). `guides` (GuideRequests, docs/guidance.md)
    steer every render in `guide_mode` (cheap or full); relative targets are relative to the clip."""
    engine.check_length(model_length(clip, engine.sample_rate), count)  # before resampling: it takes memory too
    x = to_model(clip, engine.sample_rate)
    _note_length(engine, x.shape[-1])
    steered = _guides(engine, guides, guide_mode, source=x)
    if not finish:
        outputs = engine.vary(x, count, noise=noise, steps=steps, sampler=sampler, seed=seed, progress=progress,
                              cancel=cancel, guides=steered)
        return [from_model(y, clip, sample_rate=engine.sample_rate) for y in outputs]
    shaped = source_shape(x, engine.sample_rate, shape)
    outputs = engine.vary(x, count, noise=noise, steps=steps, sampler=sampler, seed=seed, progress=progress,
                          cancel=cancel, guides=shaped + steered, clamp=False)
    return [_fitted(from_model(_finished(y, engine.sample_rate, x, shaped), clip, sample_rate=engine.sample_rate))
            for y in outputs]


def generate_clips(engine, count: int, seconds: float | None = None, *, steps: int = DEFAULT_STEPS,
                   sampler: str = DEFAULT_SAMPLER, seed: Seed = None, finish: bool = True, guides: Guides = (),
                   guide_mode: str = "cheap", progress: Progress = None, cancel: Cancel = None) -> list[Clip]:
    """`count` new stereo sounds at the model's rate, `seconds` long (default: one model window); finished
    (bridge.engine.finish) unless `finish=False` (clamped, as diffusers' pipeline writes them); `guides` as for
    vary_clip."""
    length = engine.window if seconds is None else round(seconds * engine.sample_rate)
    if length < 1:
        raise ConfigError(f"seconds must be positive, got {seconds}")
    engine.check_length(length, count)
    _note_length(engine, length)
    outputs = engine.generate(count, length, steps=steps, sampler=sampler, seed=seed, progress=progress,
                              cancel=cancel, clamp=not finish, guides=_guides(engine, guides, guide_mode))
    if finish:
        outputs = [_finished(y, engine.sample_rate) for y in outputs]
    return [Clip(y.numpy().T, engine.sample_rate) for y in outputs]


def interpolate_clips(engine, a: Clip, b: Clip, count: int, *, steps: int = DEFAULT_STEPS,
                      sampler: str = DEFAULT_SAMPLER, guides: Guides = (), guide_mode: str = "cheap",
                      progress: Progress = None, cancel: Cancel = None) -> list[Clip]:
    """`count` clips from a to b (both ends included), with a's frames, sample rate and channels; `guides` as for
    vary_clip (relative targets: relative to a)."""
    length = model_length(a, engine.sample_rate)
    engine.check_length(max(length, model_length(b, engine.sample_rate)), count)
    xa = to_model(a, engine.sample_rate)
    xb = to_model(b, engine.sample_rate)
    length = xa.shape[-1]
    xb = xb[:, :length] if xb.shape[-1] >= length else F.pad(xb, (0, length - xb.shape[-1]))
    _note_length(engine, length)
    outputs = engine.interpolate(xa, xb, count, steps=steps, sampler=sampler, progress=progress, cancel=cancel,
                                 guides=_guides(engine, guides, guide_mode, source=xa))
    return [from_model(y, a, sample_rate=engine.sample_rate) for y in outputs]


def _guides(engine, requests: Guides, mode: str, source=None) -> list:
    """The loss guides ``requests`` ask for, at the engine's rate; ``match`` reads its clip as any input is read."""
    if mode not in ("cheap", "full"):
        raise ConfigError(f"guide_mode must be cheap or full, got {mode!r}")
    context = GuideContext(engine.sample_rate, source,
                           load=lambda path: to_model(read_audio(Path(path)), engine.sample_rate))
    return registry.build(requests, context, full=mode == "full")


def _finished(render, sample_rate: int, source=None, guides=()):
    """One render [2, L] settled by its guides and finished, alone: an output recreated with --count 1 is the same
    to the bit as in its batch (batched FFTs may round differently)."""
    render = render[None]
    for guide in guides:
        render = guide.settle(render)
    return finish(render, sample_rate, source)[0]


def _fitted(clip: Clip) -> Clip:
    return Clip(fit_level(clip.samples), clip.sample_rate)


def _note_length(engine, length: int) -> None:
    windows = length / engine.window
    if windows > LONG_CLIP_WINDOWS:
        log.warning("%.1f s is %.0f model windows: rendered in one pass, needing about %.0f times the memory of one",
                    length / engine.sample_rate, windows, windows)


def render_metadata(operation: str, *, model: str, model_hash: str, sources: Sequence[str | Path] = (),
                    options: dict, regions: Sequence[Region | None] = (), **details) -> dict:
    """What made an output, for its WAV comment: model, settings, sources and the command that makes it again.

    `options` are the command's own options (count, steps, sampler, seed, noise, seconds, precision, ...): they go
    into the JSON and into the recreating command; `details` (such as the output's index in its batch) only
    into the JSON. Sources are written as absolute paths so the command works from any folder. `regions` are the
    parts of the sources used (None: the whole file): JSON "region": [start, end] (and "tail") for the first,
    "b_region" for the second; the command gets --start/--end (--tail) and --b-start/--b-end.
    """
    sources = [str(Path(source).resolve()) for source in sources]
    options = {key: value for key, value in options.items() if value is not None}
    located, command_options = {}, dict(options)
    for prefix, region in zip(("", "b_"), regions):
        if region is not None:
            located[f"{prefix}region"] = [region.start, region.end]
            if region.tail:
                located[f"{prefix}tail"] = region.tail
            command_options.update(region.options(prefix))
    command = ["dd-bridge", operation, *sources, "--model", str(model)]
    for key, value in command_options.items():
        for one in value if isinstance(value, list) else [value]:  # a list: the option repeated (--guide)
            command += [f"--{key.replace('_', '-')}", str(one)]
    return {"operation": operation, "model": str(model), "model_hash": model_hash, **options, "sources": sources,
            **located, **details, "command": shlex.join(command), "dd_bridge": __version__}

