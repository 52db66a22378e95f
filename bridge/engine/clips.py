"""The operations on audio as producers have it: clips in, clips out; shared by the CLI and the service.

The engine works on [2, L] tensors at the model's rate; these functions take a clip to that form and bring every
result back. A variation keeps its source's frames, rate and channels exactly. An interpolation takes the frames,
rate and channels of its first clip `a`; `b` is fitted to `a`'s length (cut, or padded with silence at the end).
A clip longer than the model's window is rendered in one pass: the U-Net is convolutional, so it takes any length
that is a multiple of its length multiple (the engine pads and trims), at a memory cost that grows with length.
So every operation first checks the length it will render, once resampled to the model's rate but before the
resampling, against the longest the memory free now allows (``Engine.check_length``, bridge.engine.memory).

Over 300 lines: every file-level operation (vary, generate, interpolate, repaint, extend, loops) goes through
the same length check, resampling and finish, written once here.
"""

from __future__ import annotations

import logging
import math
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from bridge import __version__
from bridge.constants import (DEFAULT_NOISE, DEFAULT_SAMPLER, DEFAULT_SHAPE, DEFAULT_STEPS, MAX_SEED, NEW_SOUND,
                               sampler_for, vary_kind)
from bridge.engine import seeds
from bridge.engine.audio import Clip, from_model, model_length, read_audio, to_model
from bridge.engine.engine import interpolation_weights
from bridge.engine.finish import finish, fit_level, levelled, over_full_scale
from bridge.engine.guidance import source_shape
from bridge.engine.guides import registry
from bridge.engine.guides.builtin import GuideContext
from bridge.engine.guides.classes import heard_ceiling
from bridge.engine.inpaint import (DEFAULT_RESAMPLE, FADE_SECONDS, KNOWN_MAX_NOISE, KnownPart, circular_layout,
                                   crossfade, known_start, resampling, splice)
from bridge.engine.regions import Region
from bridge.engine.tempo import Bars
from bridge.errors import ConfigError

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None] | None
Cancel = Callable[[], bool] | None
Seed = int | Sequence[int] | None
Guides = Sequence[registry.GuideRequest]

LONG_CLIP_WINDOWS = 4  # beyond this many model windows, say that one pass needs that much more memory
LOOP_CONTEXT_WINDOWS = 0.25  # a loop is rendered with this much of a model window of itself on either side
LOOP_SHORTFALL = 0.01  # a clip this much shorter than the loop asked for is taken round (a DAW's rounding)
# A finished one-shot, variation, repaint or extension window runs with this much silence after it (Engine.vary's
# margin): the network's last samples come out as a spike, which lands in the part cut off, not in the file (an
# extension's windows are a whole model window each: every one ended on it). 10.7 ms at 48 kHz: the
# spike is 16 samples; the cost is one more length multiple when the sound fills the last one (a default new
# sound: 32768 samples run as 40960).
EDGE_MARGIN = 512
# A finished new sound, variation or repaint runs with this much silence before it, imposed at every step
# (Engine.vary's lead_in): the network's first samples come out as a spike too, and a new sound began on a click
# of 1 to 6 samples up to full scale, 5 to 50 times its body (every one of 8 seeds; the finish then set the
# sound's level by the click). 2.7 ms at 48 kHz: short enough that the hit still starts the file (every onset
# within 32 samples of the start in 16 seeds at 64 and 128; at 256 and more a quarter began 6 to 93 ms late).
# (An extension's windows start on audio that is imposed, and a loop's layout has no ends: CircularTie.)
LEAD_IN = 128
SEED_STRIDE = 0x9E3779B97F4A7C15  # an extension's window k of output seed s draws from s + k * stride


def vary_clip(engine, clip: Clip, count: int, *, noise: float = DEFAULT_NOISE, steps: int = DEFAULT_STEPS,
              sampler: str | None = None, seed: Seed = None, shape: float = DEFAULT_SHAPE,
              finish: bool = True, guides: Guides = (), guide_mode: str = "cheap", progress: Progress = None,
              cancel: Cancel = None) -> list[Clip]:
    """`count` variations of clip at noise level `noise`, each with clip's frames, sample rate and channels.

    `shape` in [0, 1] is how closely each variation keeps to the source's time-frequency envelope
    (bridge.engine.guidance.source_shape; 0: the model alone). The renders are finished as every file is
    (bridge.engine.finish), keeping the source's own content below 20 Hz. `finish=False`: the network alone,
    clamped, as diffusers' pipeline writes it (no shape, no finish). `guides` (GuideRequests, docs/guidance.md)
    steer every render in `guide_mode` (cheap or full); relative targets are relative to the clip. `sampler` None or
    "auto": the one measured best for variations of one-shots (constants.vary_kind)."""
    sampler = sampler_for(sampler, kind=vary_kind(loop=False))
    engine.check_length(model_length(clip, engine.sample_rate), count)  # before resampling: it takes memory too
    _say_if_silent(clip, shape if finish else 0)
    x = to_model(clip, engine.sample_rate)
    _note_length(engine, x.shape[-1])
    steered = _guides(engine, guides, guide_mode, source=x)
    if not finish:
        outputs = engine.vary(x, count, noise=noise, steps=steps, sampler=sampler, seed=seed, progress=progress,
                              cancel=cancel, guides=steered)
        return [from_model(y, clip, sample_rate=engine.sample_rate) for y in outputs]
    shaped = source_shape(x, engine.sample_rate, shape)
    outputs = engine.vary(x, count, noise=noise, steps=steps, sampler=sampler, seed=seed, progress=progress,
                          cancel=cancel, guides=shaped + steered, clamp=False, margin=EDGE_MARGIN, lead_in=LEAD_IN)
    return [_fitted(from_model(_finished(y, engine.sample_rate, x, shaped, _peak(clip)), clip,
                               sample_rate=engine.sample_rate), clip) for y in outputs]


def generate_clips(engine, count: int, seconds: float | None = None, *, steps: int = DEFAULT_STEPS,
                   sampler: str | None = None, seed: Seed = None, finish: bool = True, guides: Guides = (),
                   guide_mode: str = "cheap", shape: float = DEFAULT_SHAPE, progress: Progress = None,
                   cancel: Cancel = None) -> list[Clip]:
    """`count` new stereo sounds at the model's rate, `seconds` long (default: one model window); kept under the
    ceiling of the drum class each is heard as (`shape` in [0, 1]: how much of what exceeds it goes per step;
    bridge.engine.guides.classes.HeardCeiling), finished and levelled (bridge.engine.finish) unless `finish=False`
    (clamped, no shape, as diffusers' pipeline writes them); `guides` as for vary_clip. `sampler` None or "auto":
    the one measured best for new sounds (constants.sampler_for)."""
    if isinstance(shape, bool) or not isinstance(shape, (int, float)) or not 0 <= shape <= 1:
        raise ConfigError(f"shape must be a number in [0, 1], got {shape!r}")
    sampler = sampler_for(sampler, kind=NEW_SOUND)
    length = engine.window if seconds is None else round(seconds * engine.sample_rate)
    if length < 1:
        raise ConfigError(f"seconds must be positive, got {seconds}")
    engine.check_length(length, count)
    _note_length(engine, length)
    shaping = _guides(engine, guides, guide_mode)
    if finish and shape > 0:  # a new sound's shape, as a variation's is its source's: its heard class's ceiling
        heard = heard_ceiling(engine.sample_rate, shape)
        # before the asked guides, as a variation's shape is: what a producer asks for has the last word at every
        # step. After them, the ceiling of a sound heard as a hat took out the A1 that tuning=1:A1 put under it,
        # and a render asked for A1 came out at C4 (docs/guidance.md, "The asked guides act last").
        shaping = ([heard] if heard is not None else []) + shaping
    outputs = engine.generate(count, length, steps=steps, sampler=sampler, seed=seed, progress=progress,
                              cancel=cancel, clamp=not finish, guides=shaping,
                              margin=EDGE_MARGIN if finish else 0, lead_in=LEAD_IN if finish else 0)
    if finish:  # and at a sample pack's level (bridge.engine.finish.levelled)
        outputs = [levelled(_finished(y, engine.sample_rate)) for y in outputs]
    return [Clip(y.numpy().T, engine.sample_rate) for y in outputs]


def interpolate_clips(engine, a: Clip, b: Clip, count: int, *, steps: int = DEFAULT_STEPS,
                      sampler: str = DEFAULT_SAMPLER, guides: Guides = (), guide_mode: str = "cheap",
                      progress: Progress = None, cancel: Cancel = None) -> list[Clip]:
    """`count` clips from a to b (both ends included), with a's frames, sample rate and channels; `guides` as for
    vary_clip (relative targets: relative to a). Finished as every file is (bridge.engine.finish), each against
    the mix of a and b at its point: the model's offset and rumble out, the sources' own sub-20 Hz band in that
    mix (the network left offsets of 0.002 to 0.014 in interpolations between sources with none), turned down
    if over full scale instead of clamped."""
    length = model_length(a, engine.sample_rate)
    engine.check_length(max(length, model_length(b, engine.sample_rate)), count)
    xa = to_model(a, engine.sample_rate)
    xb = to_model(b, engine.sample_rate)
    length = xa.shape[-1]
    xb = xb[:, :length] if xb.shape[-1] >= length else F.pad(xb, (0, length - xb.shape[-1]))
    _note_length(engine, length)
    outputs = engine.interpolate(xa, xb, count, steps=steps, sampler=sampler, progress=progress, cancel=cancel,
                                 guides=_guides(engine, guides, guide_mode, source=xa), clamp=False)
    mixes = [torch.lerp(xa, xb, float(w)) for w in interpolation_weights(count)]
    return [_fitted(from_model(_finished(y, engine.sample_rate, mix, peak=_peak(a, b)), a,
                               sample_rate=engine.sample_rate), a, b) for y, mix in zip(outputs, mixes)]


def repaint_clip(engine, clip: Clip, count: int, start: float, end: float, *, noise: float = 1.0,
                 steps: int = DEFAULT_STEPS, sampler: str = DEFAULT_SAMPLER, seed: Seed = None,
                 guides: Guides = (), guide_mode: str = "cheap", resample: int = DEFAULT_RESAMPLE,
                 progress: Progress = None, cancel: Cancel = None) -> list[Clip]:
    """`count` versions of clip whose seconds [start, end) are new (`noise` 1) or a variation of what was there
    (lower `noise`); everything else is the clip to the bit. The new part joins through the model (the known
    part imposed at every step, bridge.engine.inpaint) and fades in and out over 5 ms inside the range.
    `guides` as for vary_clip steer the whole estimate; the known part is imposed after them. `resample`: how
    many times each stretch of the grid is rendered (RePaint's resampling, bridge.engine.inpaint.resampling)."""
    first, stop = Region(start, end).frames(clip.frames, clip.sample_rate, "the clip")
    engine.check_length(model_length(clip, engine.sample_rate), count)
    x = to_model(clip, engine.sample_rate)
    _note_length(engine, x.shape[-1])
    scale = engine.sample_rate / clip.sample_rate
    mask = torch.ones(x.shape[-1])
    mask[math.floor(first * scale):math.ceil(stop * scale)] = 0
    begin, level = known_start(x, mask, noise)
    outputs = engine.vary(begin, count, noise=level, steps=steps, sampler=sampler, seed=seed, progress=progress,
                          cancel=cancel, guides=[*_guides(engine, guides, guide_mode, source=x), KnownPart(x, mask)],
                          margin=EDGE_MARGIN, lead_in=LEAD_IN,
                          clamp=False, resample=resampling(resample, steps))
    weight = crossfade(clip.frames, first, stop, round(FADE_SECONDS * clip.sample_rate), fade_in=first > 0,
                       fade_out=stop < clip.frames)  # fades only where the new part meets kept audio
    return [_spliced(engine, y, clip, clip, x, weight, declick=noise < 1) for y in outputs]


def extend_clip(engine, clip: Clip, count: int, seconds: float, *, steps: int = DEFAULT_STEPS,
                sampler: str = DEFAULT_SAMPLER, seed: Seed = None, guides: Guides = (), guide_mode: str = "cheap",
                resample: int = DEFAULT_RESAMPLE, progress: Progress = None, cancel: Cancel = None) -> list[Clip]:
    """`count` continuations of clip, `seconds` longer: the clip to the bit, then new material (what finishing
    changes in it fades in over its first 5 ms, bridge.engine.inpaint.splice). Rendered a model window at a time,
    each window starting with the last half window of what is there already (imposed, so the new half
    continues it), so any length takes one window's memory. `seed` as for vary: an int draws the whole batch,
    a list gives each output its own (window k of seed s draws from s + k * SEED_STRIDE). `guides` as for
    vary_clip, relative targets relative to each window's known part; `resample` as for repaint_clip."""
    added = round(seconds * clip.sample_rate)
    if not math.isfinite(seconds) or added < 1:
        raise ConfigError(f"seconds to add must be positive, got {seconds:g}")
    rate = engine.sample_rate
    x = to_model(clip, rate)
    frames = clip.frames + added
    target = model_length(Clip(np.zeros((frames, 1), np.float32), clip.sample_rate), rate)
    context = engine.window // 2
    plan = _windows(x.shape[-1], target, engine.window, context)
    engine.check_length(engine.window, 1)
    # Only the end is carried and finished: before it the result is the source to the bit (the splice's weight 0),
    # and finishing the whole file took time and memory in proportion to its length (half a second added to a
    # 2-minute bounce: 76 s and 6 GB; a 10-minute take could get the service killed). The tail starts where the
    # clip's and the model's rates meet on a whole sample, far enough back that the finish's filters settle in
    # the kept audio.
    tail, tail_frames = _tail_start(x.shape[-1] - max(engine.window, rate), rate, clip.sample_rate)
    drawn = _output_seeds(count, seed)
    renders = []
    for i, output_seed in enumerate(drawn):
        audio = x[:, tail:]  # every window's known part lies in it: context <= window <= its length
        for k, (known, new) in enumerate(plan):
            window = F.pad(audio[:, -known:], (0, new))
            mask = torch.cat([torch.ones(known), torch.zeros(new)])
            (y,) = engine.vary(window, 1, noise=KNOWN_MAX_NOISE, steps=steps, sampler=sampler,
                               seed=[(output_seed + k * SEED_STRIDE) % (MAX_SEED + 1)], cancel=cancel, clamp=False,
                               margin=EDGE_MARGIN,
                               guides=[*_guides(engine, guides, guide_mode, source=window[:, :known]),
                                       KnownPart(window, mask)],
                               resample=resampling(resample, steps), progress=_share(progress, i * len(plan) + k, count * len(plan)))
            audio = torch.cat([audio, y[:, known:]], dim=-1)
        renders.append(audio)
    engine.last_seeds = list(drawn) if seed is None else seed  # what recreates the request (each output alone)
    kept, ends = clip.frames - tail_frames, frames - tail_frames
    like = Clip(np.pad(clip.samples[tail_frames:], ((0, added), (0, 0))), clip.sample_rate)
    fade = round(FADE_SECONDS * clip.sample_rate)
    weight = crossfade(ends, kept, ends, 0)
    finishing = crossfade(ends, kept, ends, fade, fade_out=False)
    source = F.pad(x[:, tail:], (0, target - x.shape[-1]))
    return [Clip(np.concatenate([clip.samples[:tail_frames],
                                 _spliced(engine, audio, like, like, source, weight, finishing, declick=False).samples]),
                 clip.sample_rate) for audio in renders]


def _tail_start(at_most: int, rate: int, clip_rate: int) -> tuple[int, int]:
    """(samples at the model's ``rate``, frames at ``clip_rate``) of the same instant, the latest at or before
    ``at_most`` model samples (0 at the earliest) where both are whole numbers."""
    step = math.gcd(rate, clip_rate)
    k = max(0, at_most) // (rate // step)
    return k * (rate // step), k * (clip_rate // step)


def vary_loop(engine, clip: Clip, count: int, bars: Bars | None = None, *, noise: float = DEFAULT_NOISE,
              steps: int = DEFAULT_STEPS, sampler: str | None = None, seed: Seed = None,
              shape: float = DEFAULT_SHAPE, guides: Guides = (), guide_mode: str = "cheap",
              resample: int = DEFAULT_RESAMPLE, progress: Progress = None, cancel: Cancel = None) -> list[Clip]:
    """`count` variations of clip as a loop that wraps seamlessly: exactly `bars` long at the clip's rate (the
    clip's first bars, or the clip taken round when it is a hair short), or the clip's own length (None); with
    its channels. Rendered circularly (bridge.engine.inpaint.CircularTie, docs/loops.md); `shape` and
    `guides` as for vary_clip, `resample` as for repaint_clip; `sampler` None or "auto": a loop's
    (constants.vary_kind)."""
    sampler = sampler_for(sampler, kind=vary_kind(loop=True))
    frames = clip.frames if bars is None else bars.frames(clip.sample_rate)
    cycle = _one_cycle(clip, frames, bars)
    _say_if_silent(cycle, shape)
    x = to_model(cycle, engine.sample_rate, loop=True)
    renders = _render_loop(engine, x, count, noise=noise, steps=steps, sampler=sampler, seed=seed, shape=shape,
                           guides=guides, guide_mode=guide_mode, resample=resample, progress=progress, cancel=cancel,
                           peak=_peak(cycle))
    return [_fitted(from_model(y, cycle, sample_rate=engine.sample_rate, loop=True), cycle) for y in renders]


def generate_loops(engine, count: int, bars: Bars, *, steps: int = DEFAULT_STEPS, sampler: str = DEFAULT_SAMPLER,
                   seed: Seed = None, guides: Guides = (), guide_mode: str = "cheap", resample: int = DEFAULT_RESAMPLE,
                   progress: Progress = None, cancel: Cancel = None) -> list[Clip]:
    """`count` new stereo loops at the model's rate, exactly `bars` long, that wrap seamlessly; `guides` as for
    generate_clips, `resample` as for repaint_clip."""
    silence = torch.zeros(2, bars.frames(engine.sample_rate))
    renders = _render_loop(engine, silence, count, noise=1.0, steps=steps, sampler=sampler, seed=seed, shape=0,
                           guides=guides, guide_mode=guide_mode, resample=resample, progress=progress, cancel=cancel,
                           source=False)
    return [Clip(y.numpy().T, engine.sample_rate) for y in renders]


def _render_loop(engine, x: torch.Tensor, count: int, *, noise: float, steps: int, sampler: str, seed: Seed,
                 shape: float, guides: Guides, guide_mode: str, resample: int, progress: Progress, cancel: Cancel,
                 source: bool = True, peak: float | None = None) -> list[torch.Tensor]:
    """Loops [2, M] made from x [2, M] (one cycle at the model's rate) laid out circularly, each finished as it
    will be played: settled and finished over three cycles in a row, the middle one kept, so every step of
    finish.py sees the loop's own end before its start and its start after its end."""
    period = x.shape[-1]
    layout, length = circular_layout(period, round(LOOP_CONTEXT_WINDOWS * engine.window), engine.padded_length,
                                     edge=EDGE_MARGIN)
    engine.check_length(length, count)
    _note_length(engine, length)
    around = layout.pad(x, length)
    steered = _guides(engine, guides, guide_mode, source=around if source else None)
    every = [*source_shape(around, engine.sample_rate, shape), *steered, layout]  # the tie last: copies leave equal
    outputs = engine.vary(around, count, noise=noise, steps=steps, sampler=sampler, seed=seed, progress=progress,
                          cancel=cancel, guides=every, clamp=False, resample=resampling(resample, steps))
    three = x.repeat(1, 3)
    settle = source_shape(three, engine.sample_rate, shape)
    fade = round(FADE_SECONDS * engine.sample_rate)
    return [_finished(layout.seamless(y, fade).repeat(1, 3), engine.sample_rate, three if source else None,
                      settle, peak)[:, period:2 * period] for y in outputs]


def _one_cycle(clip: Clip, frames: int, bars: Bars | None) -> Clip:
    """The clip as one cycle of `frames`: its first `frames`, or all of it taken round when it is short by at
    most LOOP_SHORTFALL (a DAW's loop brace rounded to its grid); shorter is an error naming both lengths."""
    if clip.frames < frames * (1 - LOOP_SHORTFALL):
        raise ConfigError(f"the clip is {clip.seconds:.3f} s, shorter than {bars.label} "
                          f"({frames / clip.sample_rate:.3f} s): select the whole loop")
    if clip.frames > frames:
        log.info("looping the first %.3f s (%s) of %.3f s", frames / clip.sample_rate, bars.label, clip.seconds)
    return Clip(np.take(clip.samples, np.arange(frames), axis=0, mode="wrap"), clip.sample_rate)


def _windows(known: int, target: int, window: int, context: int) -> list[tuple[int, int]]:
    """(known samples, new samples) of each window that takes `known` samples to `target`."""
    plan = []
    while known < target:
        held = min(known, context)
        new = min(window - held, target - known)
        plan.append((held, new))
        known += new
    return plan


def _output_seeds(count: int, seed: Seed) -> list[int]:
    """One seed per output: the list given, an int's batch (output i: seed + i), or fresh ones (None)."""
    resolved = seeds.resolve(count, seed)
    return [(resolved + i) % (MAX_SEED + 1) for i in range(count)] if isinstance(resolved, int) else resolved


def _share(progress: Progress, done: int, calls: int) -> Progress:
    """Progress of one of `calls` renders in a row, as the fraction of all of them."""
    if progress is None:
        return None
    return lambda step, total: progress(done * total + step, calls * total)


def _spliced(engine, render: torch.Tensor, like: Clip, source: Clip, source_model: torch.Tensor,
             weight: np.ndarray, finishing: np.ndarray | None = None, *, declick: bool) -> Clip:
    """A repaint's or an extension's render [2, L] at the model's rate as a clip like `like`: the source where
    `weight` is 0, new material (finished without its level step, then turned down alone if over) elsewhere;
    `declick` when the new material varies what the source has there (finish)."""
    finished = finish(render[None], engine.sample_rate, source_model, level=False, declick=declick)[0]
    raw = from_model(render, like, sample_rate=engine.sample_rate).samples
    done = from_model(finished, like, sample_rate=engine.sample_rate).samples
    return Clip(splice(source.samples, raw, done, weight, finishing), like.sample_rate)


def _guides(engine, requests: Guides, mode: str, source=None) -> list:
    """The loss guides ``requests`` ask for, at the engine's rate; ``match`` reads its clip as any input is read."""
    if mode not in ("cheap", "full"):
        raise ConfigError(f"guide_mode must be cheap or full, got {mode!r}")
    context = GuideContext(engine.sample_rate, source,
                           load=lambda path: to_model(read_audio(Path(path)), engine.sample_rate))
    return registry.build(requests, context, full=mode == "full")


def _finished(render, sample_rate: int, source=None, guides=(), peak: float | None = None):
    """One render [2, L] settled by its guides and finished (under their ceiling once more), alone: an output
    recreated with --count 1 is the same to the bit as in its batch (batched FFTs may round differently). ``peak``:
    the source's in its file (finish's source_peak)."""
    render = render[None]
    for guide in guides:
        render = guide.settle(render)
    return finish(render, sample_rate, source, ceilings=guides, source_peak=peak)[0]


def _say_if_silent(clip: Clip, shape: float) -> None:
    """One line where a variation keeping the source's envelope (``shape`` over 0) can only be silent: the CLI's and
    the service's renders alike."""
    if shape > 0 and clip.silent:
        log.warning("the source is digital silence: its variations are silent too; --shape 0 lets the model make "
                    "its own")


def _fitted(clip: Clip, *sources: Clip) -> Clip:
    """The render under full scale, or under its sources' own peak where that is over it (finish.fit_level)."""
    return Clip(fit_level(clip.samples, over_full_scale(_peak(*sources))), clip.sample_rate)


def _peak(*sources: Clip) -> float:
    """The loudest sample of the sources as their files hold them."""
    return max((float(np.abs(source.samples).max()) for source in sources if source.samples.size), default=0.0)


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
        if isinstance(value, bool):  # a flag (--loop): named when on
            command += [f"--{key.replace('_', '-')}"] if value else []
            continue
        for one in value if isinstance(value, list) else [value]:  # a list: the option repeated (--guide)
            command += [f"--{key.replace('_', '-')}", str(one)]
    return {"operation": operation, "model": str(model), "model_hash": model_hash, **options, "sources": sources,
            **located, **details, "command": shlex.join(command), "dd_bridge": __version__}

