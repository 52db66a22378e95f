"""Samplers: one function each, one signature.

``sample_x(model, x, ts, *, callback=None, noise_sampler=None, **options) -> x``

- ``model(x, t) -> v``: the v-objective network; ``x`` [B, C, L], ``t`` [B] times in [0, 1].
- ``x``: the state at time ``ts[0]`` (``alpha * clip + sigma * noise``); the result is the state at ``ts[-1]``: 0
  for a render, above 0 for a stretch that RePaint's resampling renders again (``schedules.Resampling``).
- ``ts``: the decreasing grid the sampler's name walks (``grid``: the crash grid, ``schedules.step_grid``, unless
  the name ends in another's); len(ts) - 1 steps.
- ``callback({"i", "t", "x", "denoised"})`` after each step; ``noise_sampler(t, t_next)`` returns standard normal
  noise shaped like ``x`` for the stochastic samplers.

Per-step coefficients are Python floats (float64 maths, and no float64 tensor ever meets a device that lacks it).

The ``v-`` samplers work on the variance-preserving state the network sees. The others are k-diffusion's,
in the variance-exploding variables of Karras et al. (2022): state ``x / alpha`` at ``sigma = tan(pi t / 2)``,
through ``VDenoiser``.
"""

from __future__ import annotations

from typing import Callable

import functools
import math

import torch

from bridge.engine.schedules import SIGMA_MAX, alpha_sigma, karras_grid, step_grid, t_from_ve_sigma, ve_sigma

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# Adams–Bashforth weights, newest first, for orders 1 to 4.
ADAMS_BASHFORTH = ((1.0,), (3 / 2, -1 / 2), (23 / 12, -16 / 12, 5 / 12), (55 / 24, -59 / 24, 37 / 24, -9 / 24))


def _times(t: float, x: torch.Tensor) -> torch.Tensor:
    return x.new_full((x.shape[0],), t)


def _grid(ts: torch.Tensor) -> tuple[list[float], list[tuple[float, float]]]:
    """The times as floats, and (alpha, sigma) at each."""
    alphas, sigmas = alpha_sigma(ts)
    return torch.as_tensor(ts, dtype=torch.float64).tolist(), list(zip(alphas.tolist(), sigmas.tolist()))


def _default_noise(x: torch.Tensor) -> Callable[[float, float], torch.Tensor]:
    return lambda t, t_next: torch.randn_like(x)


class VDenoiser:
    """A v-objective model as Karras et al. (2022)'s denoiser: D(x; sigma) = x0-hat for x = x0 + sigma * eps."""

    def __init__(self, model: Model):
        self.model = model

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        c_in = 1 / math.sqrt(1 + sigma**2)  # = alpha: back to the variance-preserving state the network knows
        x_vp = x * c_in
        v = self.model(x_vp, _times(float(t_from_ve_sigma(sigma)), x))
        return c_in * x_vp - sigma * c_in * v


def _to_sigma_space(model: Model, x: torch.Tensor, ts: torch.Tensor):
    sigmas = ve_sigma(ts).tolist()
    return VDenoiser(model), x * math.sqrt(1 + sigmas[0] ** 2), torch.as_tensor(ts).tolist(), sigmas


def _to_variance_preserving(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """The state at the grid's last sigma back in the variables the other samplers and the engine use: the same
    tensor at sigma 0 (a full render), x * alpha above it (a stretch of RePaint's resampling, bridge.engine.engine)."""
    return x if sigma == 0 else x / math.sqrt(1 + sigma**2)


def _euler_step(x, denoised, sigma, sigma_next):
    # x + (sigma_next - sigma) * (x - denoised) / sigma, written as the interpolation it equals: exact from SIGMA_MAX.
    return denoised + (sigma_next / sigma) * (x - denoised)


@torch.inference_mode()
def sample_v_iplms(model: Model, x, ts, *, callback=None, noise_sampler=None):
    """Improved pseudo linear multistep (Zhang & Chen 2022, iPNDM): Adams–Bashforth in eps, order 1 to 4.

    A model whose estimates a loss guide edits (``edits_estimates``, bridge.engine.guidance.Guided) has an eps that
    jumps from call to call, not the smooth function of t Adams–Bashforth extrapolates: its last step, to t = 0, is of
    order 1 and ends on the last (edited) estimate, as DPM-Solver++'s last step does. Extrapolated, it put back
    a share of the earlier calls' estimates: a decay guide's tail, 0.16-0.23 s (T60) in the last estimate, ended at
    0.4-1.0 s. An unedited model keeps order 4 to the end, as diffusers' IPNDMScheduler (the parity tests)."""
    ts, coefficients = _grid(ts)
    eps_history: list[torch.Tensor] = []
    edited = getattr(model, "edits_estimates", False)
    for i in range(len(ts) - 1):
        (alpha, sigma), (alpha_next, sigma_next) = coefficients[i], coefficients[i + 1]
        v = model(x, _times(ts[i], x))
        eps_history = [sigma * x + alpha * v] + eps_history[:3]
        order = 1 if edited and sigma_next == 0 else len(eps_history)
        eps = sum(w * e for w, e in zip(ADAMS_BASHFORTH[order - 1], eps_history))
        # At t = 1 alpha is 0 and x0-hat is taken as 0, the data mean: what diffusers' IPNDMScheduler does.
        denoised = (x - sigma * eps) / max(alpha, 1e-8)
        x = alpha_next * denoised + sigma_next * eps
        if callback is not None:
            callback({"i": i, "t": ts[i], "x": x, "denoised": denoised})
    return x


@torch.inference_mode()
def sample_v_ddim(model: Model, x, ts, *, callback=None, noise_sampler=None, eta: float = 0.0):
    """DDIM (Song et al. 2021, eq. 12) for v-prediction: eta = 0 follows the ODE, eta = 1 is ancestral (DDPM)."""
    if not 0 <= eta <= 1:
        raise ValueError(f"eta must be in [0, 1], got {eta!r}")
    noise_sampler = noise_sampler or _default_noise(x)
    ts, coefficients = _grid(ts)
    for i in range(len(ts) - 1):
        (alpha, sigma), (alpha_next, sigma_next) = coefficients[i], coefficients[i + 1]
        v = model(x, _times(ts[i], x))
        denoised, eps = alpha * x - sigma * v, sigma * x + alpha * v
        if eta > 0 and sigma_next > 0:
            ddim_sigma = eta * sigma_next / sigma * math.sqrt(1 - alpha**2 / alpha_next**2)
            x = alpha_next * denoised + math.sqrt(max(sigma_next**2 - ddim_sigma**2, 0)) * eps
            x = x + ddim_sigma * noise_sampler(ts[i], ts[i + 1])
        else:  # also runs upwards in t, the ODE's inversion
            x = alpha_next * denoised + sigma_next * eps
        if callback is not None:
            callback({"i": i, "t": ts[i], "x": x, "denoised": denoised})
    return x


@torch.inference_mode()
def sample_euler(model: Model, x, ts, *, callback=None, noise_sampler=None):
    """Euler on the probability-flow ODE dx/dsigma = (x - D(x; sigma)) / sigma (Karras et al. 2022, Alg. 1)."""
    denoise, x, ts, sigmas = _to_sigma_space(model, x, ts)
    for i in range(len(sigmas) - 1):
        denoised = denoise(x, sigmas[i])
        x = _euler_step(x, denoised, sigmas[i], sigmas[i + 1])
        if callback is not None:
            callback({"i": i, "t": ts[i], "x": x, "denoised": denoised})
    return _to_variance_preserving(x, sigmas[-1])


@torch.inference_mode()
def sample_heun(model: Model, x, ts, *, callback=None, noise_sampler=None):
    """Heun's second-order method on the probability-flow ODE (Karras et al. 2022, Alg. 1)."""
    denoise, x, ts, sigmas = _to_sigma_space(model, x, ts)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma)
        x_euler = _euler_step(x, denoised, sigma, sigma_next)
        # No slope at sigma = 0, and from pure noise the trapezoid rule diverges: Euler on those steps.
        if sigma_next == 0 or sigma >= SIGMA_MAX:
            x = x_euler
        else:
            d = (x - denoised) / sigma
            d_next = (x_euler - denoise(x_euler, sigma_next)) / sigma_next
            x = x_euler + (d_next - d) / 2 * (sigma_next - sigma)
        if callback is not None:
            callback({"i": i, "t": ts[i], "x": x, "denoised": denoised})
    return _to_variance_preserving(x, sigmas[-1])


@torch.inference_mode()
def sample_dpmpp_2m(model: Model, x, ts, *, callback=None, noise_sampler=None):
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2): second-order multistep in the data prediction, lambda = -log sigma."""
    denoise, x, ts, sigmas = _to_sigma_space(model, x, ts)
    old_denoised, h_last = None, None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma)
        if old_denoised is None or sigma_next == 0:
            x = _euler_step(x, denoised, sigma, sigma_next)  # DPM-Solver++(1), the same step as DDIM
        else:
            h = math.log(sigma / sigma_next)
            r = h_last / h
            denoised_d = (1 + 1 / (2 * r)) * denoised - 1 / (2 * r) * old_denoised
            x = (sigma_next / sigma) * x - math.expm1(-h) * denoised_d
        if sigma_next > 0:
            h_last = math.log(sigma / sigma_next)
        old_denoised = denoised
        if callback is not None:
            callback({"i": i, "t": ts[i], "x": x, "denoised": denoised})
    return _to_variance_preserving(x, sigmas[-1])


@torch.inference_mode()
def sample_dpmpp_2m_sde(model: Model, x, ts, *, callback=None, noise_sampler=None, eta: float = 1.0):
    """DPM-Solver++(2M) SDE (Lu et al. 2022; k-diffusion's midpoint form): eta scales the noise injected per step."""
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta!r}")
    noise_sampler = noise_sampler or _default_noise(x)
    denoise, x, ts, sigmas = _to_sigma_space(model, x, ts)
    old_denoised, h_last = None, None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma)
        if sigma_next == 0:
            x = denoised
        else:
            h = math.log(sigma / sigma_next)
            eta_h = eta * h
            x = (sigma_next / sigma) * math.exp(-eta_h) * x - math.expm1(-h - eta_h) * denoised
            if old_denoised is not None:
                r = h_last / h
                x = x - 0.5 * math.expm1(-h - eta_h) / r * (denoised - old_denoised)
            if eta > 0:
                x = x + noise_sampler(ts[i], ts[i + 1]) * sigma_next * math.sqrt(-math.expm1(-2 * eta_h))
            h_last = h
        old_denoised = denoised
        if callback is not None:
            callback({"i": i, "t": ts[i], "x": x, "denoised": denoised})
    return _to_variance_preserving(x, sigmas[-1])


def sample_v_iplms_sde(model: Model, x, ts, *, callback=None, noise_sampler=None, below: float = 0.02):
    """v-iplms while t is over ``below``, then DPM-Solver++(2M) SDE for the rest of the grid: the deterministic
    steps lay out what the sound does in time, the last, low-noise ones (where fine detail, and the crackle the
    deterministic steps leave, is made) take fresh noise. Each part is its own sampler as above; ``callback``'s
    step index runs on over both."""
    if not 0 <= below <= 1:
        raise ValueError(f"below must be in [0, 1], got {below!r}")
    times = torch.as_tensor(ts, dtype=torch.float64).tolist()
    switch = next((i for i, t in enumerate(times) if t <= below), len(times) - 1)
    if switch > 0:
        x = sample_v_iplms(model, x, ts[:switch + 1], callback=callback)
    if switch < len(times) - 1:
        later = None if callback is None else (lambda info: callback({**info, "i": info["i"] + switch}))
        x = sample_dpmpp_2m_sde(model, x, ts[switch:], callback=later, noise_sampler=noise_sampler)
    return x


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "v-iplms": sample_v_iplms,
    "v-ddim": sample_v_ddim,
    "dpmpp-2m": sample_dpmpp_2m,
    "dpmpp-2m-sde": sample_dpmpp_2m_sde,
    "euler": sample_euler,
    "heun": sample_heun,
    "dpmpp-2m-sde-karras": sample_dpmpp_2m_sde,
    # Half the SDE's fresh noise per step: new sounds from the bundled model came out closer to real drums on
    # held-out kits (-0.033 +- 0.013 MMD^2, paired, 32 seeds) and a near-silent render (peak under -24 dBFS) came
    # a third to half as often (docs/benchmarks.md, "The SDE's eta"). Named, so a file's sampler remakes it.
    "dpmpp-2m-sde-karras-eta0.5": functools.partial(sample_dpmpp_2m_sde, eta=0.5),
    "v-iplms-sde": sample_v_iplms_sde,
}

# A sampler walks the crash grid unless its name names another schedule, as k-diffusion's front ends name them
# ("DPM++ 2M SDE Karras"): a file's sampler name is then all it takes to walk the same grid again. Derived from
# the names, so a sampler added with "-karras" in its name walks that grid without a second entry here.
GRIDS: dict[str, Callable[[int, float], torch.Tensor]] = {name: karras_grid for name in SAMPLERS
                                                           if "-karras" in name}


def grid(sampler: str, steps: int, noise: float = 1.0) -> torch.Tensor:
    """The decreasing times ``sampler`` visits from ``noise`` to 0 in ``steps`` steps."""
    return GRIDS.get(sampler, step_grid)(steps, noise)
