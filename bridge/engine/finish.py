"""The last touch on a render before it becomes a file: nothing the model added below hearing, nothing clipped.

- Rumble and DC: a small diffusion model leaves energy below 20 Hz (offsets up to 0.017 were measured on the
  bundled model). A variation gets its source's own content below 20 Hz back in place of the model's, so an 808's
  sub and a recording's offset are kept and only what the model added goes; a generated sound gets none.
  The split is a zero-phase FFT filter (raised-cosine edge from 10 to 20 Hz) over the zero-padded clip, so it
  neither wraps the tail into the attack nor shifts anything in time.
- Level: a render that peaks above full scale is turned down as a whole to just under it (never up: renders are
  not normalised), instead of clamping, which would flatten its peaks into clicks.
"""

from __future__ import annotations

import math

import torch

RUMBLE_HZ = 20.0  # at and above: untouched
RUMBLE_EDGE_HZ = 10.0  # at and below: all of it is the low band
FULL_SCALE = 10 ** (-0.1 / 20)  # -0.1 dBFS: a peak never reaches the clamp at 1.0


def low_band(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """The part of ``audio`` [..., L] below 20 Hz (from 10 Hz a raised-cosine edge), zero-phase."""
    length = audio.shape[-1]
    size = 2 * length  # zero padding: no circular wrap of the tail into the attack
    spectrum = torch.fft.rfft(audio.double(), n=size)
    freqs = torch.fft.rfftfreq(size, 1 / sample_rate, dtype=torch.float64)
    edge = ((freqs - RUMBLE_EDGE_HZ) / (RUMBLE_HZ - RUMBLE_EDGE_HZ)).clamp(0, 1)
    weight = 0.5 * (1 + torch.cos(math.pi * edge))
    return torch.fft.irfft(spectrum * weight, n=size)[..., :length].to(audio.dtype)


def finish(renders: torch.Tensor, sample_rate: int, source: torch.Tensor | None = None) -> torch.Tensor:
    """[B, 2, L] renders at the model's rate, ready to write: the source's sub-20 Hz band (or none), and every
    render whose peak is over full scale turned down to just under it."""
    out = renders.float() - low_band(renders.float(), sample_rate)
    if source is not None:
        out = out + low_band(source.float()[..., :renders.shape[-1]], sample_rate)
    peak = out.abs().amax(dim=(-2, -1), keepdim=True)
    return out * (FULL_SCALE / peak.clamp(min=FULL_SCALE))
