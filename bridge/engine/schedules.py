"""Diffusion time and the step grids every sampler walks.

Dance Diffusion is a v-objective model on the cosine (variance-preserving) path: at time t in [0, 1] a clip x0 and
Gaussian noise eps mix as ``x = alpha * x0 + sigma * eps`` with ``alpha, sigma = cos(pi t / 2), sin(pi t / 2)``.
Grids are float64 on the CPU: coefficients computed from them are exact at both ends (alpha(1) underflows to
6e-17 rather than rounding negative as it does in float32).
"""

from __future__ import annotations

import math

import torch

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
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if not 0 < noise <= 1:
        raise ValueError(f"noise must be in (0, 1], got {noise!r}")
    u = torch.linspace(min(crash_inverse(noise), 1.0), 0, steps + 1, dtype=torch.float64)
    ts = crash_schedule(u)
    ts[0], ts[-1] = noise, 0.0  # exact ends: round-trip error of the warp would otherwise shift the knob by ~1e-16
    return ts


def ve_sigma(t: torch.Tensor) -> torch.Tensor:
    """The variance-exploding noise level of the same point: sigma / alpha = tan(pi t / 2), capped at SIGMA_MAX."""
    alpha, sigma = alpha_sigma(t)
    return (sigma / alpha).clamp(max=SIGMA_MAX)


def t_from_ve_sigma(sigma_ve: torch.Tensor) -> torch.Tensor:
    """Inverse of ve_sigma: t = 2 atan(sigma) / pi."""
    return torch.atan(torch.as_tensor(sigma_ve, dtype=torch.float64)) * 2 / math.pi
