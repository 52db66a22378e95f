"""Guidance: edit the network's denoised estimate at every step, whatever the sampler.

Every sampler here only ever sees ``model(x, t) -> v``. ``Guided`` wraps that callable: it turns v into the
denoised estimate ``x0 = alpha * x - sigma * v``, lets each guide active at t edit it, and hands back the v that
implies the edited estimate, ``v' = (alpha * x - x0') / sigma``. The samplers are unchanged and an unguided render
never goes through this module, so it stays bit-identical to diffusers' pipeline.

Two kinds of guide:
- a closed-form edit, ``guide(denoised [B, 2, L], t) -> denoised`` with ``acts_at(t) -> bool`` (``SourceShape``);
- a loss (``LossGuide``): a differentiable function of the denoised estimate, one loss per batch item, stepped
  down its normalised gradient. In the cheap mode the gradient is taken with respect to the estimate alone, no
  backward pass through the U-Net: the "backward" guidance of Bansal et al. 2023 ("Universal guidance for
  diffusion models", arXiv:2302.07121), one normalised step instead of their inner optimisation. In the full mode
  the gradient goes back through the network to the noisy state x, as in diffusion posterior sampling (Chung et
  al. 2022, arXiv:2209.14687) and universal guidance's "forward" term; Crowson's v-diffusion ``cond_sample``
  takes it the same way (x with grad, ``pred = alpha x - sigma v``, the loss of pred) and shifts v by it.
  Here both modes apply the step to the denoised estimate, so every sampler integrates it as it integrates x0.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from bridge.engine.schedules import alpha_sigma
from bridge.errors import ConfigError

N_FFT = 1024  # 21 ms at 48 kHz: the time resolution of an envelope a producer hears
HOP = 256
BANDS = 32  # log-spaced bands from 40 Hz to Nyquist (and one below): coarse enough to be an envelope
LOWEST_BAND_HZ = 40.0
SILENCE_DB = -120.0  # energies are floored here, so digital silence in the source is a finite target
TIME_SLACK_FRAMES = 2  # a cell's ceiling is the source's loudest within +-2 frames (+-11 ms): onsets may move


class Guided:
    """``model(x, t) -> v`` whose denoised estimate is edited by ``guides`` wherever they act.

    Loss guides with ``full`` set take their gradient through ``differentiable(x, t) -> v`` (the torch module
    itself, in float32 and eager, called with grad on x; where one acts, v is that call's, not ``model``'s); the
    others edit the estimate in turn, in the order given (registry.build gives them in registry.in_order's).

    ``length``: the render's own samples. The network runs on a state padded to its length multiple, and the
    padding is cut off the file, so a loss measures and edits only the first ``length`` samples: measured with
    it, a 1 s render's tail read 66 ms longer than the file's, and a decay guide shortened what was then cut.
    Closed-form edits (the source's shape, a repaint's known part) see the whole state, padding and all.

    ``start``: a lead-in of that many samples of silence before the render (Engine.vary's ``lead_in``), imposed on
    every estimate here; every guide sees the state from the render's first sample, as if it were not there."""

    def __init__(self, model, guides, differentiable=None, length: int | None = None, start: int = 0):
        self.model = model
        self.guides = list(guides)
        self.differentiable = differentiable
        self.length, self.start = length, start
        # A loss's edits jump from call to call: a multistep sampler ends on the last estimate
        # (bridge.engine.samplers.sample_v_iplms). The closed-form edits (a loop's wrap) keep its order 4, and so
        # does a loss of weight 0, which never acts ("0 is off": the unguided render to the bit).
        self.edits_estimates = any(isinstance(guide, LossGuide) and guide.weight != 0 for guide in self.guides)
        if differentiable is None and any(getattr(guide, "full", False) for guide in self.guides):
            raise ConfigError("full guidance needs the network in torch (--backend torch); use the cheap mode")

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        time = float(t.reshape(-1)[0])
        active = [guide for guide in self.guides if guide.acts_at(time)] if time > 0 else []
        full = [guide for guide in active if getattr(guide, "full", False)]
        alpha, sigma = (float(w) for w in alpha_sigma(torch.tensor(time)))
        if full:
            v, steps = self._through_network(x, t, alpha, sigma, full)
        else:
            v, steps = self.model(x, t), []
        if not active and not (self.start and time > 0):
            return v
        edited = alpha * x.float() - sigma * v.float()
        for step in steps:
            edited = edited + F.pad(step, (self.start, edited.shape[-1] - self.start - step.shape[-1]))
        seen = edited[..., self.start:]  # the render and its padding: what the guides see
        for guide in active:
            if isinstance(guide, LossGuide) and not guide.full:
                own = self._own(seen)
                seen = torch.cat([guide(own, time), seen[..., own.shape[-1]:]], dim=-1)
            elif not getattr(guide, "full", False):
                seen = guide(seen, time)
        edited = F.pad(seen, (self.start, 0))  # the lead-in: silence
        return ((alpha * x.float() - edited) / sigma).to(v.dtype)

    def _own(self, audio: torch.Tensor) -> torch.Tensor:
        """The render's own samples of [B, C, length from the render's start]: what a loss measures."""
        return audio if self.length is None else audio[..., :self.length]

    def _through_network(self, x, t, alpha, sigma, guides):
        """v, and each full guide's step, its loss's gradient taken back through the network to x."""
        # The engine samples in inference mode: the graph is built outside it, from copies.
        with torch.inference_mode(False), torch.enable_grad():
            state = x.detach().clone().float().requires_grad_(True)
            v = self.differentiable(state, t.detach().clone())
            denoised = self._own((alpha * state - sigma * v.float())[..., self.start:])
            steps = [guide.step(denoised, sigma, wrt=state) for guide in guides]
        return v.detach().clone(), steps


class LossGuide:
    """A loss of the denoised estimate, stepped down at every network call for t in (``t_min``, ``t_max``].

    ``loss(audio [B, C, L]) -> [B]``. The step is ``x0' = x0 - weight * sigma * rms(x0) * g / rms(g)``, g the
    gradient (of the estimate in the cheap mode, of the noisy state in the full mode): normalised by its RMS, a
    weight means the same for every loss and model; relative to the estimate's level, for quiet and loud
    sounds; scaled by sigma, so the steps of a render sum to about the same whatever the step count (a sampler
    moves x by an edit of x0 in proportion to the step in t over sigma; near t = 0 the estimate is left to the
    network). A negative weight climbs. ``to_zero``: the loss is 0 at its goal (a target), and a step is never
    longer than Polyak's, ``loss / |g|`` (Polyak 1987, "Introduction to optimization", 5.3): to first order it
    never passes the goal (half way, for a squared distance), so a guide toward a target settles there.
    ``to_end``: the loss is the distance left to an end of the measure (0 there and past it, a weight without a
    target that goes no further: builtin.Measured's ``ends``); the steps keep the open-ended pace (sigma) and are
    cut to Polyak's for that distance, ``loss / |g|``, so that to first order none passes the end. Without the
    cut one step at t = 0.35 took a render's punch from 17.5 dB to 26.9 past an end of 18.
    """

    def __init__(self, loss, weight: float, *, t_min: float = 0.0, t_max: float = 1.0, full: bool = False,
                 to_zero: bool = False, to_end: bool = False, name: str = "loss"):
        if not math.isfinite(weight):
            raise ValueError(f"{name}: the weight must be a finite number, got {weight!r}")
        if not 0 <= t_min < t_max <= 1:
            raise ValueError(f"{name}: the range must be 0 <= t_min < t_max <= 1, got {t_min}..{t_max}")
        self.loss, self.weight, self.to_zero, self.to_end = loss, float(weight), to_zero, to_end
        self.t_min, self.t_max, self.full, self.name = t_min, t_max, full, name

    def acts_at(self, t: float) -> bool:
        return self.t_min < t <= self.t_max and self.weight != 0

    def __call__(self, denoised: torch.Tensor, t: float) -> torch.Tensor:
        """The cheap mode: the estimate moved along its own loss's gradient. A target's step reaches it only to
        first order, and the measures are curved (a log T60 of a tail shortened by scaling its samples), so it
        takes ``TARGET_STEPS``, each from where the last one ended, as Newton's method does: here a gradient
        costs no network call."""
        sigma = float(alpha_sigma(torch.tensor(t))[1])
        edited = denoised
        for _ in range(TARGET_STEPS if self.to_zero else 1):
            with torch.inference_mode(False), torch.enable_grad():
                estimate = edited.detach().clone().float().requires_grad_(True)
                step = self.step(estimate, sigma, wrt=estimate)
            edited = edited + step.to(denoised.dtype)
        return edited

    def step(self, denoised: torch.Tensor, sigma: float, *, wrt: torch.Tensor) -> torch.Tensor:
        """The edit of ``denoised`` (a graph from ``wrt``): [B, C, L], detached."""
        loss = self.loss(denoised)
        if not bool(torch.isfinite(loss.detach()).all()):
            # Its gradient would be NaN, zeroed below: the guide would do nothing while the file says it guided.
            what = "NaN" if bool(torch.isnan(loss.detach()).any()) else "inf"
            raise ConfigError(f"guide {self.name}: its measure is not finite on this sound ({what})")
        (gradient,) = torch.autograd.grad(loss.sum(), wrt, retain_graph=True)
        gradient = torch.nan_to_num(gradient)
        spread = _rms(gradient).clamp(min=1e-30)
        # A target's steps are bounded by the distance left, so they need no sigma to keep their sum in check; and
        # the network puts back some of what it hears at every call, so they must hold the target to the last one.
        scale = 1.0 if self.to_zero else sigma
        size = self.weight * scale * _rms(denoised.detach()).clamp(min=LEVEL_FLOOR) / spread  # times g
        if self.to_zero or self.to_end:  # onto the target or the end, to first order: |size * g| <= 2 loss / |g|
            # for a squared distance to a target, loss / |g| for a distance to an end
            reach = (2 if self.to_zero else 1) * loss.detach().reshape(size.shape).clamp(min=0)
            size = size.clamp(max=reach / (spread**2 * gradient[0].numel()).clamp(min=1e-30))  # on it: 0, not 0/0
        return -size * gradient


TARGET_STEPS = 3  # per network call, for a guide toward a target in the cheap mode (LossGuide.__call__)
LEVEL_FLOOR = 1e-3  # -60 dBFS: the step of a silent estimate is that of a quiet one, not zero


def _rms(audio: torch.Tensor) -> torch.Tensor:
    """[B, 1, 1]: RMS over channels and time, per batch item."""
    return audio.pow(2).mean(dim=(1, 2), keepdim=True).sqrt()


@functools.lru_cache(maxsize=8)
def band_matrix(sample_rate: int, n_fft: int = N_FFT, bands: int = BANDS) -> torch.Tensor:
    """[bands + 1, bins]: overlapping triangles on a log-frequency axis whose columns sum to 1, so band values
    spread back onto bins by ``matrix.T @ values`` interpolate smoothly (a partition of unity). Made outside
    inference mode whatever the caller's: it is cached, and a copy first made while sampling (the source shape, the
    heard class's ceiling) is an inference tensor that a guide's gradient cannot use afterwards."""
    with torch.inference_mode(False):
        return _band_matrix(sample_rate, n_fft, bands)


def _band_matrix(sample_rate: int, n_fft: int, bands: int) -> torch.Tensor:
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    centres = torch.cat([torch.zeros(1, dtype=torch.float64),
                         torch.logspace(math.log10(LOWEST_BAND_HZ), math.log10(sample_rate / 2), bands,
                                        dtype=torch.float64)])
    # Interpolate linearly in log frequency between neighbouring centres (the first centre sits at 0 Hz).
    log_f = torch.log(freqs.clamp(min=1e-3))
    log_c = torch.log(centres.clamp(min=LOWEST_BAND_HZ / 2))
    weights = torch.zeros(len(centres), len(freqs), dtype=torch.float64)
    for i in range(len(centres)):
        if i > 0:
            left = log_c[i - 1]
            rising = (log_f - left) / (log_c[i] - left)
        else:
            rising = torch.ones_like(log_f)
        if i < len(centres) - 1:
            falling = (log_c[i + 1] - log_f) / (log_c[i + 1] - log_c[i])
        else:
            falling = torch.ones_like(log_f)
        weights[i] = torch.clamp(torch.minimum(rising, falling), 0, 1)
    weights = weights / weights.sum(0, keepdim=True).clamp(min=1e-12)
    return weights.float()


def cell_energy_db(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """[B, bands + 1, frames] energy per band and STFT frame of [B, C, L] audio, summed over channels, in dB."""
    spec = stft(audio)
    return band_energy_db(spec, band_matrix(sample_rate).to(spec.real))


def band_energy_db(spec: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``cell_energy_db`` of an STFT [B, C, bins, frames] already made, with its ``band_matrix``."""
    power = spec.abs().pow(2).sum(dim=1)  # [B, bins, frames]
    return 10 * torch.log10(torch.einsum("kf,bft->bkt", matrix, power).clamp(min=10 ** (SILENCE_DB / 10)))


def stft(audio: torch.Tensor, n_fft: int = N_FFT, hop: int = HOP) -> torch.Tensor:
    """[B, C, bins, frames]: the Hann-windowed STFT of [B, C, L] audio (a clip shorter than half a frame is padded
    with silence, which the reflecting pad at the ends needs)."""
    b, c, length = audio.shape
    flat = audio.reshape(b * c, length)
    flat = flat if flat.dtype == torch.float64 else flat.float()  # float64 kept: the gradient checks use it
    if length <= n_fft // 2:
        flat = F.pad(flat, (0, n_fft // 2 + 1 - length))
    spec = torch.stft(flat, n_fft, hop, window=torch.hann_window(n_fft, device=audio.device, dtype=flat.dtype),
                      center=True, return_complex=True)
    return spec.reshape(b, c, *spec.shape[-2:])


@dataclass
class SourceShape:
    """Keeps a variation inside its source's time-frequency envelope: where the denoised estimate is louder than
    the source by more than ``margin_db`` in a (band, 21 ms frame) cell, it is turned down toward that ceiling.

    The loss is ``sum over cells of relu(E_est - E_src - margin)^2`` in dB; ``strength`` in [0, 1] is the fraction
    of the excess removed per network call, a step of exactly that size in the log-gain of each cell (1: onto the
    ceiling). Turning down only what exceeds the source removes what the model adds — hiss and crackle over a
    decay that has gone quiet, rumble under a hat — and leaves alone the differences a variation is made of.
    Acts for t in (0, ``t_max``].
    """

    reference: torch.Tensor  # [2, L] or [B, 2, L] at the model's rate: the source
    sample_rate: int
    margin_db: float = 3.0
    strength: float = 1.0
    t_max: float = 1.0
    lift_db: float = 0.0
    settle_lift_db: float | None = None  # lift_db for settle(); None: the same as while sampling
    _ceiling: torch.Tensor | None = field(default=None, init=False, repr=False)
    _floor: torch.Tensor | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if not 0 <= self.strength <= 1:
            raise ValueError(f"strength must be in [0, 1], got {self.strength}")
        reference = self.reference if self.reference.dim() == 3 else self.reference[None]
        energy = cell_energy_db(reference.float(), self.sample_rate)
        slack = 2 * TIME_SLACK_FRAMES + 1
        self._ceiling = F.max_pool1d(energy, slack, stride=1, padding=TIME_SLACK_FRAMES) + self.margin_db
        # The floor is the source's own level less the margin, with no slack: a render equal to its source is
        # never under it, so it is left as it is (a slack here would lift the gaps between a loop's hits).
        self._floor = energy - self.margin_db

    def acts_at(self, t: float) -> bool:
        return 0 < t <= self.t_max and self.strength > 0

    def __call__(self, denoised: torch.Tensor, t: float) -> torch.Tensor:
        return self.apply(denoised)

    def settle(self, audio: torch.Tensor) -> torch.Tensor:
        """The finished render [B, C, L] given the same treatment once more, with ``settle_lift_db``."""
        lift = self.lift_db if self.settle_lift_db is None else self.settle_lift_db
        return self.apply(audio, lift)

    def trim(self, audio: torch.Tensor) -> torch.Tensor:
        """``audio`` [B, C, L] turned down where it exceeds the ceiling, nothing lifted: held once more in
        finish.finish, right after the source's band under 20 Hz is swapped in (why: its ``ceilings``)."""
        return self.apply(audio, 0.0)

    def apply(self, audio: torch.Tensor, lift_db: float | None = None) -> torch.Tensor:
        """``audio`` [B, C, L] turned down cell by cell where it exceeds the ceiling (and, with ``lift_db``, up
        where it fell below the source by more than the margin, by at most lift_db)."""
        lift_db = self.lift_db if lift_db is None else lift_db
        spec = stft(audio)
        matrix = band_matrix(self.sample_rate).to(spec.real)
        energy = band_energy_db(spec, matrix)
        ceiling = self._ceiling.to(energy)[..., :energy.shape[-1]]
        if ceiling.shape[-1] < energy.shape[-1]:  # past the source's end (the engine's padding): silence
            ceiling = F.pad(ceiling, (0, energy.shape[-1] - ceiling.shape[-1]), value=SILENCE_DB + self.margin_db)
        excess = (energy - ceiling).clamp(min=0)
        gain_db = -self.strength * excess  # [B, bands, frames]
        if lift_db > 0:  # and up where it fell more than the margin below the source, by at most lift_db
            floor = self._floor.to(energy)[..., :energy.shape[-1]]
            if floor.shape[-1] < energy.shape[-1]:
                floor = F.pad(floor, (0, energy.shape[-1] - floor.shape[-1]), value=SILENCE_DB - self.margin_db)
            gain_db = gain_db + (self.strength * (floor - energy).clamp(min=0)).clamp(max=lift_db)
        return with_band_gains(spec, gain_db, matrix, audio)


def with_band_gains(spec: torch.Tensor, gain_db: torch.Tensor, matrix: torch.Tensor,
                    audio: torch.Tensor) -> torch.Tensor:
    """``audio`` [B, C, L] (whose ``stft`` is ``spec``) with gains in dB per band and frame [B, bands + 1, frames]
    spread onto the bins in the dB domain (smooth across frequency), back through the inverse STFT."""
    bin_gain = 10 ** (torch.einsum("kf,bkt->bft", matrix, gain_db) / 20)
    edited = spec * bin_gain[:, None]
    b, c = spec.shape[:2]
    length = audio.shape[-1]
    out = torch.istft(edited.reshape(b * c, *spec.shape[-2:]), N_FFT, HOP,
                      window=torch.hann_window(N_FFT, device=audio.device, dtype=spec.real.dtype), center=True,
                      length=max(length, N_FFT // 2 + 1))
    return out[..., :length].reshape(audio.shape).to(audio.dtype)


SHAPE_MARGIN_DB = 3.0  # a variation may differ from its source's envelope by this much in any cell, freely
# The most a cell that fell below the source is lifted back at the end: 24 dB gives the SDE's variations their
# sources' tails back (12 dB left them 4-5 dB short; docs/benchmarks.md, "Which sampler for a variation").
SHAPE_LIFT_DB = 24.0


def source_shape(source: torch.Tensor, sample_rate: int, shape: float) -> list[SourceShape]:
    """The guides a variation of ``source`` [2, L] gets for a ``shape`` in [0, 1] (0: none): while sampling, a
    ceiling (what the model adds over the source's envelope is taken out at every step); at the end
    (``settle``), the finished render is also lifted where it fell below the source's envelope."""
    if isinstance(shape, bool) or not isinstance(shape, (int, float)) or not 0 <= shape <= 1:
        raise ValueError(f"shape must be a number in [0, 1], got {shape!r}")
    if shape == 0:
        return []
    return [SourceShape(source, sample_rate, margin_db=SHAPE_MARGIN_DB, strength=float(shape),
                        lift_db=0.0, settle_lift_db=SHAPE_LIFT_DB)]
