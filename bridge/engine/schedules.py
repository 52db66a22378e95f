"""Diffusion time and the step grids every sampler walks.

Dance Diffusion is a v-objective model on the cosine (variance-preserving) path: at time t in [0, 1] a clip x0 and
Gaussian noise eps mix as ``x = alpha * x0 + sigma * eps`` with ``alpha, sigma = cos(pi t / 2), sin(pi t / 2)``.
Grids are float64 on the CPU: coefficients computed from them are exact at both ends (alpha(1) underflows to
6e-17 rather than rounding negative as it does in float32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bridge.errors import ConfigError

# k-style samplers work on x / alpha at sigma = tan(pi t / 2), infinite at t = 1. At this sigma the clip's weight
# alpha = 1e-12 is below float32 resolution, so starting here is starting from pure noise.
SIGMA_MAX = 1e12


def alpha_sigma(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The clip's and the noise's weight at time t: (cos(pi t / 2), sin(pi t / 2))."""
    t = torch.as_tensor(t, dtype=torch.float64)
    return torch.cos(t * math.pi / 2), torch.sin(t * math.pi / 2)


def crash_schedule(u: torch.Tensor) -> torch.Tensor:
    """The notebook's "crash" warp of a uniform grid: sigma = sin^2(pi u / 2), alpha = sqrt(1 - sigma^2).

    It spends more steps near t = 1, where the structure of the sound is decided. diffusers' IPNDMScheduler builds
    its timesteps the same way.
    """
    u = torch.as_tensor(u, dtype=torch.float64)
    sigma = torch.sin(u * math.pi / 2) ** 2
    alpha = (1 - sigma**2).sqrt()
    return torch.atan2(sigma, alpha) * 2 / math.pi


def crash_inverse(t: float) -> float:
    """The u whose crash-warped time is t: sin^2(pi u / 2) = sin(pi t / 2)."""
    return math.asin(math.sqrt(math.sin(t * math.pi / 2))) * 2 / math.pi


def step_grid(steps: int, noise: float = 1.0) -> torch.Tensor:
    """The decreasing times a sampler visits: from exactly ``noise`` to exactly 0, ``steps`` steps (steps + 1 points).

    The crash warp of an even grid; for noise = 1 these are diffusers' IPNDMScheduler timesteps followed by 0.
    """
    _check_grid(steps, noise)
    u = torch.linspace(min(crash_inverse(noise), 1.0), 0, steps + 1, dtype=torch.float64)
    ts = crash_schedule(u)
    ts[0], ts[-1] = noise, 0.0  # exact ends: round-trip error of the warp would otherwise shift the knob by ~1e-16
    return ts


# The Karras et al. (2022, eq. 5) grid: even steps in sigma^(1 / rho) between these (variance-exploding sigmas,
# tan(pi t / 2)). Chosen on held-out kits for the bundled model's new sounds (docs/benchmarks.md, "Which grid"):
# against the crash grid it spends more steps where the sound is still noise (sigma 80 to 10) and goes on down
# to a lower last noise level (0.001 against 0.004 at 25 steps).
KARRAS_SIGMA_MIN, KARRAS_SIGMA_MAX, KARRAS_RHO = 0.001, 80.0, 7.0


def karras_grid(steps: int, noise: float = 1.0) -> torch.Tensor:
    """Decreasing times as for step_grid, spaced by Karras et al.'s rule from ``noise`` (at most sigma
    KARRAS_SIGMA_MAX) to KARRAS_SIGMA_MIN (a tenth of the knob's sigma if that is lower), then 0: ``steps`` steps.

    Above KARRAS_SIGMA_MAX (t 0.992, where the clip's weight alpha is under 1.3 %) the grid starts at it: the state
    at ``noise`` stands for the state there, as k-diffusion's samplers start from noise times sigma_max."""
    _check_grid(steps, noise)
    top = min(float(ve_sigma(torch.tensor(noise))), KARRAS_SIGMA_MAX)
    bottom = min(KARRAS_SIGMA_MIN, top / 10)  # a knob near 0 still gets distinct, decreasing levels
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    sigmas = (top ** (1 / KARRAS_RHO) + ramp * (bottom ** (1 / KARRAS_RHO) - top ** (1 / KARRAS_RHO))) ** KARRAS_RHO
    ts = torch.cat([t_from_ve_sigma(sigmas), torch.zeros(1, dtype=torch.float64)])
    if top < KARRAS_SIGMA_MAX:
        ts[0] = noise  # exact: the knob's own time, not its round trip through tan and atan
    return ts


def _check_grid(steps: int, noise: float) -> None:
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if not 0 < noise <= 1:
        raise ValueError(f"noise must be in (0, 1], got {noise!r}")


def ve_sigma(t: torch.Tensor) -> torch.Tensor:
    """The variance-exploding noise level of the same point: sigma / alpha = tan(pi t / 2), capped at SIGMA_MAX."""
    alpha, sigma = alpha_sigma(t)
    return (sigma / alpha).clamp(max=SIGMA_MAX)


def t_from_ve_sigma(sigma_ve: torch.Tensor) -> torch.Tensor:
    """Inverse of ve_sigma: t = 2 atan(sigma) / pi."""
    return torch.atan(torch.as_tensor(sigma_ve, dtype=torch.float64)) * 2 / math.pi


NEAR_NOISE = 0.99  # above this t the state is noise (alpha < 0.016): rendering a stretch from here again changes nothing


@dataclass(frozen=True)
class Resampling:
    """RePaint's resampling (Lugmayr et al. 2022, "RePaint: Inpainting using Denoising Diffusion Probabilistic
    Models", arXiv:2201.09865, section 4.2 and Algorithm 1): the grid is walked in stretches of ``jump`` steps,
    and each stretch is rendered ``times`` times (their U; 1: off): after the first pass the state is noised
    forward again to the stretch's start (``renoise``) and the stretch is rendered anew. Each pass lets the
    network denoise the free part again seeing the known part (imposed at every step, bridge.engine.inpaint)
    one pass better harmonised. The last stretch (it ends at t = 0) and one that starts in pure noise (above
    NEAR_NOISE) are rendered once: there is nothing to harmonise with at either end."""

    times: int = 1
    jump: int = 1

    def __post_init__(self):
        for name, value in (("resample", self.times), ("the jump", self.jump)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")

    def stretches(self, ts: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
        """(times of a stretch, from its start to its end, and how many times it is rendered), in order; stretches
        rendered once in a row are one (a multistep sampler keeps its history over them: without resampling the
        grid is one stretch, the sampler called as it always is)."""
        steps = len(ts) - 1
        out: list[tuple[int, int, int]] = []  # (first step, last step, times)
        for first in range(0, steps, self.jump if self.times > 1 else steps):
            last = min(first + self.jump, steps) if self.times > 1 else steps
            again = self.times > 1 and ts[last] > 0 and ts[first] < NEAR_NOISE
            if out and not again and out[-1][2] == 1:
                out[-1] = (out[-1][0], last, 1)
            else:
                out.append((first, last, self.times if again else 1))
        return [(ts[first:last + 1], times) for first, last, times in out]

    def steps(self, ts: torch.Tensor) -> int:
        """The sampler steps the grid takes with the stretches rendered again: what progress counts."""
        return sum((len(piece) - 1) * times for piece, times in self.stretches(ts))


def renoise(x: torch.Tensor, t_from: float, t_to: float, noise: torch.Tensor) -> torch.Tensor:
    """The state at ``t_from`` noised forward to ``t_to`` > t_from (the diffusion's own q(x_to | x_from)):
    ``alpha_to / alpha_from * x + sqrt(sigma_to^2 - (alpha_to / alpha_from)^2 sigma_from^2) * noise``, which puts
    a state ``alpha_from * x0 + sigma_from * eps`` on ``alpha_to * x0 + sigma_to * eps'``."""
    (a0, s0), (a1, s1) = (tuple(float(w) for w in alpha_sigma(torch.tensor(t))) for t in (t_from, t_to))
    ratio = a1 / a0
    return ratio * x + math.sqrt(max(s1**2 - (ratio * s0) ** 2, 0.0)) * noise
