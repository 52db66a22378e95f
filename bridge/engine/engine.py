"""The Engine: one model kept warm on a device; generate, vary and interpolate on [2, L] tensors, in batches.

The network is only "a callable ``model(x, t) -> v``": the backend picks which one (the torch module, or an ONNX
Runtime session), the samplers never know. Everything here works at the model's sample rate; files and other
rates are ``bridge.engine.clips``' business.

Seeds: an int, a list (one per output) or None (random), as ``bridge.engine.seeds`` says; ``last_seeds`` holds
what recreates the last request when passed back as ``seed``: the int, or the list.

Over 300 lines: generate, vary and interpolate share the batching, the progress and the cancel rules here.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.nn import functional as F

from bridge.constants import DEFAULT_SAMPLER, DEFAULT_STEPS, MAX_COUNT
from bridge.engine import memory, seeds as seeding
from bridge.engine.backends import load_network
from bridge.engine.checkpoints import LoadedModel, load_model
from bridge.engine.devices import pick_device, pick_dtype
from bridge.engine.guidance import Guided
from bridge.engine.modelcard import ModelCard
from bridge.engine.samplers import SAMPLERS, grid
from bridge.engine.schedules import Resampling, alpha_sigma, renoise
from bridge.engine.seeds import Seed
from bridge.engine.unet import DanceDiffusionUNet
from bridge.errors import Cancelled, ConfigError

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None] | None
Cancel = Callable[[], bool] | None

GPU_BATCH_SAMPLES = 8 * 65536  # items x length per batch on a GPU: 8 windows of the full model fit in ~16 GiB


class Engine:
    """Keeps one model warm on one device. Every method returns float32 CPU [count, 2, L] clamped to [-1, 1]."""

    def __init__(self, model: LoadedModel | str | Path | None = None, device: str = "auto",
                 precision: str = "fp32", backend: str = "torch", *, max_batch: int | None = None,
                 module: DanceDiffusionUNet | None = None):
        """``module``: the network already built from ``model`` (see ``from_module``); otherwise the torch backend
        builds it here, and the onnx backend holds its own copy of the weights, with no torch module beside it."""
        loaded = model if isinstance(model, LoadedModel) else load_model(model)
        if max_batch is not None and (not isinstance(max_batch, int) or max_batch < 1):
            raise ConfigError(f"max_batch must be an integer >= 1, got {max_batch!r}")
        self._loaded = loaded
        self._device = pick_device(device)
        self._dtype = pick_dtype(precision)
        self._precision = precision
        self._backend = backend
        self._max_batch = max_batch
        if module is None and backend == "torch":
            module = loaded.build()
        self.network = load_network(backend, loaded, self._device, precision, module)
        self._module = module  # the plain torch module: full guidance takes gradients through it
        self.last_seeds: Seed = None
        log.info("%s on %s (%s, %s backend)", loaded.name, self._device, precision, backend)

    @classmethod
    def from_module(cls, module: DanceDiffusionUNet, sample_rate: int, window: int, *, name: str = "in-memory",
                    device: str | None = None, precision: str = "fp32", max_batch: int | None = None) -> "Engine":
        """An Engine around a network already in memory (tests, training's evaluation), which keeps running that
        very module as it changes; it stays where it is unless ``device`` says otherwise."""
        loaded = LoadedModel.from_network(module, name=name, sample_rate=sample_rate, window=window,
                                          provenance="in memory")
        if device is None:
            device = next(module.parameters()).device.type
        return cls(loaded, device, precision, max_batch=max_batch, module=module)

    # What the model is

    @property
    def card(self) -> ModelCard:
        return self._loaded.card

    @property
    def sample_rate(self) -> int:
        return self._loaded.sample_rate

    @property
    def window(self) -> int:
        return self._loaded.window

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def precision(self) -> str:
        """The precision the network runs at: the one asked for, unless its backend could not (the onnx
        backend's fp16 and bf16 without TensorRT run fp32: OnnxModel.precision), so what files record is true."""
        used = getattr(self.network, "precision", None)
        return used if isinstance(used, str) else self._precision

    @property
    def backend(self) -> str:
        return self._backend

    @property
    def model_hash(self) -> str:
        return self._loaded.sha256

    @property
    def length_multiple(self) -> int:
        return self._loaded.architecture.length_multiple

    def padded_length(self, length: int) -> int:
        """The length the network runs at (UNetConfig.padded_length)."""
        return self._loaded.architecture.padded_length(length)

    def batch_size(self, length: int, *, full: bool = False) -> int:
        """How many outputs run together: ``max_batch`` if given, else ``batch_size(device, padded length)``.
        ``full``: with a guide in the full mode, whose backward pass through the network takes several times the
        memory per output (memory.bytes_per_sample): the batch shrinks by as much (to 1 at least), so that it
        holds what an unguided batch holds."""
        share = self._full_share() if full else 1.0
        if self._max_batch is not None:
            return max(1, int(self._max_batch * share))
        return batch_size(self._device, self.padded_length(length), share=share)

    def _full_share(self) -> float:
        """An unguided render's memory per output over a full-mode guided one's."""
        channels = self._loaded.architecture.channels
        return memory.bytes_per_sample(channels) / memory.bytes_per_sample(channels, full=True)

    # How long a render can be

    def memory_needed(self, length: int, count: int = 1, *, full: bool = False) -> tuple[int, int]:
        """Estimated peak bytes of a render of ``count`` outputs of ``length`` samples: (on the device, on the
        host); the same pool when the device is the CPU. ``full``: guided in the full mode (full_guidance)."""
        padded = self.padded_length(length)
        batch = min(count, self.batch_size(length, full=full))
        device = batch * padded * memory.bytes_per_sample(self._loaded.architecture.channels, full=full)
        host = count * padded * memory.OUTPUT_BYTES
        return int(device), int(host)

    def longest_length(self, count: int = 1, *, full: bool = False) -> int:
        """The longest render of ``count`` outputs, in samples at the model's rate, that the memory free now
        allows; ``full``: guided in the full mode."""
        reference = self.length_multiple * 1024  # long enough that padding and batching no longer matter
        device, host = (need / reference for need in self.memory_needed(reference, count, full=full))
        if self._device.type == "cpu":
            return int(memory.USABLE_FRACTION * memory.host_free_bytes() / (device + host))
        return int(memory.USABLE_FRACTION * min(memory.free_bytes(self._device) / device,
                                                memory.host_free_bytes() / host))

    def check_length(self, length: int, count: int = 1, *, full: bool = False) -> None:
        """ConfigError, naming the limit, for a render longer than the memory here allows: asked before any work
        (the service would otherwise be killed for memory in the middle of it, with no reply). ``full``: guided
        in the full mode (full_guidance), whose backward pass through the network takes several times the memory
        (a GPU would run out in the middle of the render); the error names the mode and the cheap one's limit."""
        longest = self.longest_length(count, full=full)
        if self.padded_length(length) > longest:
            rate = self.sample_rate
            outputs = f" for {count} outputs" if count > 1 and self._device.type == "cpu" else ""
            mode = " in the full guide mode (a backward pass through the network at every guided step)" if full else ""
            cheap = (f" (--guide-mode cheap: up to {max(self.longest_length(count), 0) / rate:.1f} s)"
                     if full else "")
            raise ConfigError(f"{length / rate:.1f} s at {rate} Hz is longer than {self.card.name} can render "
                              f"on {self._device.type}{mode} with the memory free now "
                              f"({memory.gib(memory.free_bytes(self._device))}): the longest is "
                              f"{max(longest, 0) / rate:.1f} s{outputs}{cheap}")

    # Operations

    def generate(self, count: int, length: int | None = None, *, steps: int = DEFAULT_STEPS,
                 sampler: str = DEFAULT_SAMPLER, seed: Seed = None, progress: Progress = None,
                 cancel: Cancel = None, guides: Sequence = (), clamp: bool = True, resample: Resampling | None = None,
                 margin: int = 0, lead_in: int = 0, **options) -> torch.Tensor:
        """``count`` new sounds of ``length`` samples (default: the model's window); ``guides``, ``resample``,
        ``margin`` and ``lead_in`` as for vary."""
        length = self.window if length is None else length
        _check_positive_int("length", length)
        _check_margin("margin", margin)
        _check_margin("lead_in", lead_in)
        seeds = self._seeds(count, seed)
        self.check_length(lead_in + length + margin, count, full=full_guidance(guides))
        padded = self.padded_length(lead_in + length + margin)
        x = seeding.starting_noise(count, padded, seeds)
        ts = grid(sampler, _steps(steps), 1.0)
        out = self._sample(x, ts, sampler, seeds, progress, cancel, options, guides=guides,
                           resample=resample, length=length, start=lead_in)
        return _cut(out, lead_in, length, clamp)

    def vary(self, audio: torch.Tensor, count: int, *, noise: float, steps: int = DEFAULT_STEPS,
             sampler: str = DEFAULT_SAMPLER, seed: Seed = None, progress: Progress = None, cancel: Cancel = None,
             guides: Sequence = (), clamp: bool = True, resample: Resampling | None = None,
             margin: int = 0, lead_in: int = 0, **options) -> torch.Tensor:
        """``count`` variations of ``audio`` [2, L]: noised to time ``noise`` (0 = the clip, 1 = a new sound),
        then sampled back to 0. ``guides`` (bridge.engine.guidance) edit every denoised estimate on the way;
        ``clamp=False`` leaves the level to the caller (bridge.engine.finish). ``resample``: RePaint's resampling
        (schedules.Resampling), for renders with a known part (bridge.engine.inpaint); every sampler takes it.
        ``margin``: at least this many samples of silence after the clip in the state the network runs on (cut off
        again): the network's last samples, where its padding meets the sound, come out as a spike (the bundled
        model: up to full scale in the last 16 samples, 10-80 times the 50 ms before), so a finished render keeps
        them out of the file (clips.EDGE_MARGIN). ``lead_in``: this many samples of silence before the clip,
        imposed at every step and cut off again: the network's first samples come out as a spike too (a new
        sound from the bundled model: a click of 1 to 6 samples up to full scale, 5 to 50 times the body that
        follows), which the silence takes instead (clips.LEAD_IN). Guides see the state from the clip's first
        sample (bridge.engine.guidance.Guided). Both 0: the state is the clip padded to the network's multiple
        only, as diffusers' pipeline runs it."""
        audio = self._check_audio("audio", audio)
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise <= 1:
            raise ConfigError(f"noise must be a number in [0, 1], got {noise!r}")
        seeds = self._seeds(count, seed)
        length = audio.shape[-1]
        _check_margin("margin", margin)
        _check_margin("lead_in", lead_in)
        self.check_length(lead_in + length + margin, count, full=full_guidance(guides))
        if noise == 0:
            out = audio.expand(count, -1, -1).clone()
            return out.clamp(-1, 1) if clamp else out
        clip = F.pad(audio, (lead_in, self.padded_length(lead_in + length + margin) - lead_in - length))
        alpha, sigma = alpha_sigma(torch.tensor(float(noise)))
        x = (alpha * clip + sigma * seeding.starting_noise(count, clip.shape[-1], seeds)).float()
        ts = grid(sampler, _steps(steps), float(noise))
        out = self._sample(x, ts, sampler, seeds, progress, cancel, options, guides=guides,
                           resample=resample, length=length, start=lead_in)
        return _cut(out, lead_in, length, clamp)

    def interpolate(self, a: torch.Tensor, b: torch.Tensor, count: int, *, steps: int = DEFAULT_STEPS,
                    sampler: str = DEFAULT_SAMPLER, progress: Progress = None, cancel: Cancel = None,
                    guides: Sequence = (), clamp: bool = True, **options) -> torch.Tensor:
        """``count`` sounds from ``a`` to ``b`` (both [2, L], ends included): both clips are taken almost to noise
        along the ODE (deterministic, v-iplms), the two latents are slerped (at interpolation_weights), and
        each point is sampled back. ``clamp=False`` leaves the level to the caller (bridge.engine.finish).

        The latents stay one step short of t = 1, where the network's output stops mattering to the state and
        the way back could not recover the clips; ``steps`` counts the grid of a full render.
        Stochastic samplers draw their noise from a fixed seed, so the result is reproducible too. ``guides``
        act on the way back from the latents."""
        a, b = self._check_audio("a", a), self._check_audio("b", b)
        if a.shape != b.shape:
            raise ConfigError(f"a and b must have the same length, got {a.shape[-1]} and {b.shape[-1]} samples")
        _check_count(count)
        if count < 2:
            raise ConfigError(f"count must be at least 2 to go from a to b, got {count}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
            raise ConfigError(f"steps must be an integer >= 2 for an interpolation, got {steps!r}")
        ts = grid(sampler, steps, 1.0)[1:]
        length = a.shape[-1]
        self.check_length(length, count, full=full_guidance(guides))
        pair = F.pad(torch.stack([a, b]), (0, self.padded_length(length) - length))
        batch = self.batch_size(length)
        guided = self.batch_size(length, full=full_guidance(guides))  # the way back's: _sample's
        tracker = _Tracker(len(ts) - 1, len(_batches(2, batch)) + len(_batches(count, guided)), progress, cancel)
        ends = torch.cat([self._run(SAMPLERS["v-iplms"], pair[rows], ts.flip(0), None, tracker, {})
                          for rows in _batches(2, batch)])
        latents = torch.stack([_slerp(ends[0], ends[1], w) for w in interpolation_weights(count)])
        out = self._sample(latents, ts, sampler, seeding.INTERPOLATION_SEED, None, None, options, tracker=tracker,
                           guides=guides, length=length)
        return _cut(out, 0, length, clamp)

    # The work

    def _sample(self, x: torch.Tensor, ts: torch.Tensor, sampler: str, seeds: Seed, progress: Progress,
                cancel: Cancel, options: dict, tracker: "_Tracker | None" = None, guides: Sequence = (),
                resample: Resampling | None = None, length: int | None = None, start: int = 0) -> torch.Tensor:
        """``x`` sampled down ``ts``; ``start``, ``length``: the render's own samples of the padded state (its
        guides' losses measure those alone)."""
        if sampler not in SAMPLERS:
            raise ConfigError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        known = set(inspect.signature(SAMPLERS[sampler]).parameters) - {"model", "x", "ts", "callback", "noise_sampler"}
        if set(options) - known:
            raise ConfigError(f"{sampler} takes the options {', '.join(sorted(known)) or '(none)'}, "
                              f"got {', '.join(sorted(options))}")
        batches = _batches(x.shape[0], self.batch_size(x.shape[-1], full=full_guidance(guides)))
        resample = resample or Resampling()
        tracker = tracker or _Tracker(resample.steps(ts), len(batches), progress, cancel)
        return torch.cat([self._run(SAMPLERS[sampler], x[rows], ts, seeding.noise_seeds(seeds, rows), tracker, options,
                                    guides, resample, length, start) for rows in batches])

    def _run(self, sample, x: torch.Tensor, ts: torch.Tensor, noise_seeds: list[int] | None,
             tracker: "_Tracker", options: dict, guides: Sequence = (),
             resample: Resampling | None = None, length: int | None = None, start: int = 0) -> torch.Tensor:
        tracker.check()
        x = x.to(self._device, torch.float32)
        noise_sampler = seeding.NoiseSampler(noise_seeds, x) if noise_seeds is not None else None
        # Unguided renders call the network itself: bit-identical to the reference pipeline.
        network = (Guided(self.network, guides, differentiable=self._module, length=length, start=start)
                   if guides or start else self.network)
        fresh = noise_sampler or (lambda t, t_next: torch.randn_like(x))
        try:
            with torch.inference_mode():
                # Without resampling: one stretch, the whole grid, rendered once (the sampler called as it is).
                for piece, times in (resample or Resampling()).stretches(ts):
                    for again in range(times):
                        if again:  # back up the stretch (the seed's own noise), then down it anew
                            x = renoise(x, float(piece[-1]), float(piece[0]), fresh(float(piece[-1]), float(piece[0])))
                        x = sample(network, x, piece, callback=tracker.step, noise_sampler=noise_sampler, **options)
        except ValueError as error:  # the samplers' check of their options
            raise ConfigError(str(error)) from None
        return x.float().cpu()

    def _seeds(self, count: int, seed: Seed) -> int | list[int]:
        _check_count(count)
        self.last_seeds = seeding.resolve(count, seed)
        return self.last_seeds

    def _check_audio(self, name: str, audio: torch.Tensor) -> torch.Tensor:
        if not isinstance(audio, torch.Tensor) or audio.dim() != 2 or audio.shape[0] != 2 or audio.shape[1] < 1:
            shape = tuple(audio.shape) if isinstance(audio, torch.Tensor) else type(audio).__name__
            raise ConfigError(f"{name} must be a stereo tensor [2, samples] at the model's rate, got {shape}")
        audio = audio.detach().float().cpu()
        if not torch.isfinite(audio).all():
            raise ConfigError(f"{name} has NaN or infinite samples")
        return audio


def interpolation_weights(count: int) -> torch.Tensor:
    """Where each of ``count`` interpolations lies between a (0) and b (1): evenly, both ends included."""
    return torch.linspace(0, 1, count, dtype=torch.float64)


def _cut(out: torch.Tensor, start: int, length: int, clamp: bool) -> torch.Tensor:
    """The render's own ``length`` samples from ``start`` of the state it ran on; clamped to [-1, 1] if asked."""
    out = out[..., start:start + length]
    return out.clamp(-1, 1) if clamp else out


def _check_margin(name: str, margin: int) -> None:
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
        raise ConfigError(f"{name} must be an integer >= 0, got {margin!r}")


def batch_size(device: torch.device, padded_length: int, *, share: float = 1.0) -> int:
    """How many outputs of ``padded_length`` samples run together: one on a CPU, where batching makes each item
    slower, more on a GPU (GPU_BATCH_SAMPLES, times ``share``: less where each output takes more memory, the
    full guide mode's backward pass)."""
    if device.type == "cpu":
        return 1
    return max(1, int(GPU_BATCH_SAMPLES * share) // padded_length)


def full_guidance(guides: Sequence) -> bool:
    """Whether any of ``guides`` takes its gradient through the network (the full mode, guidance.Guided): a
    backward pass at every step it acts, whose memory the plan must hold (memory.bytes_per_sample). A weight of 0
    never acts."""
    return any(getattr(guide, "full", False) and getattr(guide, "weight", 1) != 0 for guide in guides)


class _Tracker:
    """Counts sampler steps across batches for ``progress(done, total)`` and stops the work when ``cancel()``."""

    def __init__(self, steps: int, batches: int, progress: Progress, cancel: Cancel):
        self.done, self.total = 0, steps * batches
        self.progress, self.cancel = progress, cancel

    def check(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled(f"cancelled after {self.done} of {self.total} steps")

    def step(self, info: dict) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)
        if self.done < self.total:  # finished work is kept, whatever cancel() says now
            self.check()


def _slerp(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation: noise stays noise-sized all the way from a to b."""
    a64, b64 = a.double(), b.double()
    cos = (a64 * b64).sum() / (a64.norm() * b64.norm())
    theta = cos.clamp(-1, 1).acos()
    if theta < 1e-6:
        return torch.lerp(a64, b64, w).float()
    return ((torch.sin((1 - w) * theta) * a64 + torch.sin(w * theta) * b64) / torch.sin(theta)).float()


def _batches(count: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, count)) for start in range(0, count, size)]


def _steps(steps: int) -> int:
    _check_positive_int("steps", steps)
    return steps


def _check_count(count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise ConfigError(f"count must be an integer in [1, {MAX_COUNT}], got {count!r}")


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")

