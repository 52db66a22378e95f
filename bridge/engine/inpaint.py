"""Repaint, extend and loop: guides that impose what is known on every denoised estimate, and the splices after.

Dance Diffusion models are unconditional: nothing in the network knows which part of a clip must stay. So the
known part is imposed at every sampler step through ``guidance.Guided`` (the wrapper that edits the denoised
estimate ``x0`` and hands back the v that implies it), and every sampler is steered without changing:

- ``KnownPart``: where the mask says "known", the estimate is replaced by the source. This is the replacement
  step of RePaint (Lugmayr et al. 2022, "RePaint: Inpainting using Denoising Diffusion Probabilistic Models",
  arXiv:2201.09865, eq. 8) taken on the estimate instead of the noisy state: for the deterministic samplers
  (their update is linear in the estimate and the implied noise) the known part of the state stays exactly on
  the source's own noising path ``alpha * source + sigma * noise`` and lands on the source at t = 0, while the
  network denoises the unknown part seeing the known one at the same noise level, so the two join. RePaint's
  resampling (jumping back in time and denoising again, so the new part harmonises with the known one) is
  ``resampling`` below: the engine walks the grid in stretches and renders each again after re-noising it
  (bridge.engine.schedules.Resampling), the same guides acting at every step of every pass.
- ``CircularTie``: a loop rendered with its own end before its start and its start after its end (circular
  padding of the clip), where every copy of a sample is averaged with the others at every step, as
  MultiDiffusion fuses overlapping windows (Bar-Tal et al. 2023, arXiv:2302.08113). The network never sees an
  edge at the wrap: it denoises the loop's start with the loop's end as its past, so the result flows over the
  wrap as it flows anywhere else. docs/loops.md says why this rather than repainting a rolled seam.

After the render the known part is put back from the source at the file's own rate (``splice``): sample-exact
outside the new material, which fades in over a few milliseconds inside its own range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bridge.engine.finish import fit_new_level
from bridge.engine.schedules import Resampling

FADE_SECONDS = 0.005  # the crossfade where new material meets kept audio, inside the new material's range
# v-iplms (like diffusers' IPNDMScheduler) takes the denoised estimate as 0 at t = 1, where no guide can reach it,
# and its multistep history carries that first step on: the known part landed 9 % off its source after 10
# steps. Just below t = 1 the known part is in the state (alpha = 1.6e-3) and every sampler lands on it.
KNOWN_MAX_NOISE = 0.999
# RePaint's resampling (schedules.Resampling): how many times each stretch of the grid is rendered by default, set
# by measurement on the bundled model over four held-out kits (docs/loops.md, "Resampling"): once (off). Repaint's
# and extend's joins got no better (an extension's worse); a loop's wrap step halved, but its level step over the
# wrap grew on one kit of four and in the loop tests' own loop, at 1.7 times the render's time. Stretches are this fraction of the grid's steps
# (RePaint jumps 10 of 250 steps; at the 6 to 25 steps a producer waits for, a stretch of one step would re-noise
# as much as it denoises).
DEFAULT_RESAMPLE = 1
RESAMPLE_JUMP = 0.25


def resampling(times: int, steps: int) -> Resampling:
    """RePaint's resampling for a render of ``steps`` steps: each stretch of RESAMPLE_JUMP of them ``times`` times."""
    return Resampling(times, max(1, round(steps * RESAMPLE_JUMP)) if isinstance(steps, int) else 1)


@dataclass
class KnownPart:
    """Replaces the denoised estimate by ``known`` [2, L] (or [B, 2, L]) where ``mask`` [L] is 1 (0: free).
    Past L (the engine's padding to the network's length multiple) everything is free."""

    known: torch.Tensor
    mask: torch.Tensor

    def acts_at(self, t: float) -> bool:
        return t > 0

    def __call__(self, denoised: torch.Tensor, t: float) -> torch.Tensor:
        length = min(self.known.shape[-1], denoised.shape[-1])
        mask = self.mask[:length].to(denoised)
        out = denoised.clone()
        out[..., :length] = torch.lerp(denoised[..., :length], self.known[..., :length].to(denoised), mask)
        return out


@dataclass(frozen=True)
class CircularTie:
    """One loop of ``period`` samples laid out circularly over a longer render: sample i of the render is sample
    ``(i - before) % period`` of the loop. Every copy of a loop sample gets their average, at every step, except
    the copies within ``edge`` samples of either end of the render, which only receive it: the network's first and
    last samples come out as a spike (clips.EDGE_MARGIN), and averaged in they put a click into the loop at the
    two places that map there, every cycle (the bundled model: 1 to 10 times the 50 ms around, where any other
    place in the loop reads 0.1; tests/engine/test_edges.py). The layout keeps every loop sample's middle copy
    clear of the edges (circular_layout)."""

    period: int
    before: int
    edge: int = 0

    def acts_at(self, t: float) -> bool:
        return t > 0

    def index(self, length: int) -> torch.Tensor:
        return (torch.arange(length) - self.before) % self.period

    def pad(self, loop: torch.Tensor, length: int) -> torch.Tensor:
        """[..., period] laid out over ``length`` samples: the loop's end, the loop, its start (and more)."""
        return loop[..., self.index(length)]

    def fold(self, render: torch.Tensor) -> torch.Tensor:
        """[..., length] -> [..., period]: the average of every sample's copies away from the render's edges."""
        length = render.shape[-1]
        index = self.index(length).to(render.device)
        counted = torch.ones(length, dtype=render.dtype, device=render.device)
        edge = min(self.edge, (length - self.period) // 2)  # short of the middle copies: every sample keeps one
        if edge > 0:
            counted[:edge] = 0
            counted[-edge:] = 0
        summed = torch.zeros(*render.shape[:-1], self.period, dtype=render.dtype, device=render.device)
        summed.index_add_(-1, index, render * counted)
        counts = torch.zeros(self.period, dtype=render.dtype, device=render.device).index_add_(0, index, counted)
        return summed / counts

    def __call__(self, denoised: torch.Tensor, t: float) -> torch.Tensor:
        return self.pad(self.fold(denoised), denoised.shape[-1])

    def seamless(self, render: torch.Tensor, fade: int) -> torch.Tensor:
        """The loop [..., period] out of a finished render [..., length]: its own samples, the first ``fade`` of
        them crossfaded from the copy that follows the loop's end in the render (which the network made as the
        continuation of the end), so the wrap is as smooth as the render is anywhere: exact even where the copies
        did not quite meet (stochastic samplers add fresh noise to each)."""
        loop = render[..., self.before:self.before + self.period].clone()
        after = render[..., self.before + self.period:]
        fade = min(fade, after.shape[-1], self.period)
        if fade > 0:
            weight = rising(fade).to(render)
            loop[..., :fade] = torch.lerp(after[..., :fade], loop[..., :fade], weight)
        return loop


def known_start(audio: torch.Tensor, mask: torch.Tensor, noise: float) -> tuple[torch.Tensor, float]:
    """What a render with a known part starts from: the audio with its free part silenced when the free part is
    to be new (``noise`` 1: nothing of what was there leaks in), and a noise level of at most KNOWN_MAX_NOISE."""
    if not KNOWN_MAX_NOISE <= noise <= 1:  # (out of range: the engine names it)
        return audio, noise
    return audio * mask[:audio.shape[-1]].to(audio), KNOWN_MAX_NOISE


def circular_layout(period: int, context: int, padded_length, edge: int = 0) -> tuple[CircularTie, int]:
    """The layout for a loop of ``period`` samples with at least ``context`` samples of itself on either side,
    and its length: filled up to the length the network runs at (``padded_length(n)``), so no zero padding
    follows it. ``edge``: the tie leaves the render's first and last ``edge`` samples out of its averages
    (CircularTie.fold keeps it short of every sample's middle copy)."""
    length = padded_length(period + 2 * context)
    return CircularTie(period, (length - period) // 2, edge), length


def rising(length: int) -> torch.Tensor:
    """[length] raised-cosine ramp from just above 0 to just below 1 (both ends belong to their neighbours)."""
    return torch.sin(0.5 * torch.pi * (torch.arange(length, dtype=torch.float64) + 0.5) / length) ** 2


def crossfade(frames: int, start: int, end: int, fade: int, *, fade_in: bool = True,
              fade_out: bool = True) -> np.ndarray:
    """[frames] weights of new material: 0 outside [start, end), 1 inside, with raised-cosine ramps of ``fade``
    samples inside the range at the edges that meet kept audio (``fade_in`` at start, ``fade_out`` at end)."""
    weight = np.zeros(frames, np.float64)
    weight[start:end] = 1.0
    fade = max(0, min(fade, (end - start) // 2))
    ramp = rising(fade).numpy()
    if fade and fade_in:
        weight[start:start + fade] = ramp
    if fade and fade_out:
        weight[end - fade:end] = ramp[::-1]
    return weight


def splice(source: np.ndarray, render: np.ndarray, finished: np.ndarray, weight: np.ndarray,
           finishing: np.ndarray | None = None) -> np.ndarray:
    """[frames, channels] out of the source (``source``, zero where it has none), the render back at the file's
    rate, and the same render finished (bridge.engine.finish): the source exactly where ``weight`` is 0, new
    material where it is 1. What finishing changed (the sub-20 Hz band, the offset) comes in with ``finishing``
    (default: the weight), so it makes no step where the new material starts: an extension switches to the
    render where the source ends (the render's copy of the source runs into it) and fades finishing in after.
    New material that would go over full scale is turned down, the source never (finish.fit_new_level)."""
    w = weight[:, None]
    f = w if finishing is None else finishing[:, None]
    new = (render + (finished - render) * f) * w
    return fit_new_level(source * (1 - w), new)  # where w is 0: source * 1 + 0, the source to the bit
