"""Guidance: edit the network's denoised estimate at every step, whatever the sampler.

Every sampler here only ever sees ``model(x, t) -> v``. ``Guided`` wraps that callable: it turns v into the
denoised estimate ``x0 = alpha * x - sigma * v``, lets each guide active at t edit it, and hands back the v that
implies the edited estimate, ``v' = (alpha * x - x0') / sigma``. The samplers are unchanged and an unguided render
never goes through this module, so it stays bit-identical to diffusers' pipeline.

This is the "cheap" form of guidance (an update of the denoised estimate alone, no backward pass through the
U-Net), as in the reconstruction-guidance line of work: Chung et al. 2022 ("Diffusion posterior sampling",
arXiv:2209.14687) step the estimate along a loss gradient; here a guide may also take its step in closed form when
its loss has one (``SourceShape``).

A guide is a callable ``guide(denoised [B, 2, L], t) -> denoised`` with ``acts_at(t) -> bool``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from bridge.engine.schedules import alpha_sigma

N_FFT = 1024  # 21 ms at 48 kHz: the time resolution of an envelope a producer hears
HOP = 256
BANDS = 32  # log-spaced bands from 40 Hz to Nyquist (and one below): coarse enough to be an envelope
LOWEST_BAND_HZ = 40.0
SILENCE_DB = -120.0  # energies are floored here, so digital silence in the source is a finite target
TIME_SLACK_FRAMES = 2  # a cell's ceiling is the source's loudest within +-2 frames (+-11 ms): onsets may move


class Guided:
    """``model(x, t) -> v`` whose denoised estimate is edited by ``guides`` wherever they act."""

    def __init__(self, model, guides):
        self.model = model
        self.guides = list(guides)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v = self.model(x, t)
        time = float(t.reshape(-1)[0])
        active = [guide for guide in self.guides if guide.acts_at(time)]
        if not active or time <= 0:
            return v
        alpha, sigma = (float(w) for w in alpha_sigma(torch.tensor(time)))
        denoised = alpha * x.float() - sigma * v.float()
        edited = denoised
        for guide in active:
            edited = guide(edited, time)
        return ((alpha * x.float() - edited) / sigma).to(v.dtype)


@functools.lru_cache(maxsize=8)
def band_matrix(sample_rate: int, n_fft: int = N_FFT, bands: int = BANDS) -> torch.Tensor:
    """[bands + 1, bins]: overlapping triangles on a log-frequency axis whose columns sum to 1, so band values
    spread back onto bins by ``matrix.T @ values`` interpolate smoothly (a partition of unity)."""
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
    spec = _stft(audio)
    power = spec.abs().pow(2).sum(dim=1)  # [B, bins, frames]
    bands = torch.einsum("kf,bft->bkt", band_matrix(sample_rate).to(power), power)
    return 10 * torch.log10(bands.clamp(min=10 ** (SILENCE_DB / 10)))


def _stft(audio: torch.Tensor) -> torch.Tensor:
    b, c, length = audio.shape
    flat = audio.reshape(b * c, length).float()
    if length <= N_FFT // 2:
        flat = F.pad(flat, (0, N_FFT // 2 + 1 - length))
    spec = torch.stft(flat, N_FFT, HOP, window=torch.hann_window(N_FFT, device=audio.device), center=True,
                      return_complex=True)
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

    def apply(self, audio: torch.Tensor, lift_db: float | None = None) -> torch.Tensor:
        """``audio`` [B, C, L] turned down cell by cell where it exceeds the ceiling (and, with ``lift_db``, up
        where it fell below the source by more than the margin, by at most lift_db)."""
        lift_db = self.lift_db if lift_db is None else lift_db
        length = audio.shape[-1]
        spec = _stft(audio)
        power = spec.abs().pow(2).sum(dim=1)
        matrix = band_matrix(self.sample_rate).to(power)
        energy = 10 * torch.log10(torch.einsum("kf,bft->bkt", matrix, power).clamp(min=10 ** (SILENCE_DB / 10)))
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
        # Spread band gains onto bins in the dB domain (smooth across frequency), then to amplitude.
        bin_gain = 10 ** (torch.einsum("kf,bkt->bft", matrix, gain_db) / 20)
        edited = spec * bin_gain[:, None]
        b, c = spec.shape[:2]
        out = torch.istft(edited.reshape(b * c, *spec.shape[-2:]), N_FFT, HOP,
                          window=torch.hann_window(N_FFT, device=audio.device), center=True,
                          length=max(length, N_FFT // 2 + 1))
        return out[..., :length].reshape(audio.shape).to(audio.dtype)


SHAPE_MARGIN_DB = 3.0  # a variation may differ from its source's envelope by this much in any cell, freely
SHAPE_LIFT_DB = 12.0  # the most a cell that fell below the source is lifted back (more would raise the model's noise)


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
