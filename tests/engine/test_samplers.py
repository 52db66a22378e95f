"""Step grids and samplers: exact ends, diffusers' timesteps, convergence to the ODE (and SDE) they solve."""

from __future__ import annotations

import math

import pytest
import torch

from bridge.engine.samplers import (SAMPLERS, grid, sample_dpmpp_2m, sample_dpmpp_2m_sde, sample_euler, sample_v_ddim,
                                    sample_v_iplms, sample_v_iplms_sde)
from bridge.engine.schedules import (KARRAS_RHO, KARRAS_SIGMA_MAX, KARRAS_SIGMA_MIN, SIGMA_MAX, alpha_sigma,
                                     karras_grid, step_grid, t_from_ve_sigma, ve_sigma)
from bridge.engine.seeds import NoiseSampler
from bridge.engine.unet import DanceDiffusionUNet

pytestmark = pytest.mark.usefixtures("one_thread")

ODE_SAMPLERS = ["v-iplms", "v-ddim", "dpmpp-2m", "euler", "heun"]
STEP_COUNTS = (10, 20, 40, 80)
DATA_SCALE = 0.5  # the analytic model's data: x0 ~ N(0, DATA_SCALE^2)


def gaussian_v_model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The exact v-prediction for Gaussian data: its probability-flow ODE has a closed-form solution."""
    alpha, sigma = (f(t * math.pi / 2).to(x.dtype)[:, None, None] for f in (torch.cos, torch.sin))
    denoised = alpha * DATA_SCALE**2 / (alpha**2 * DATA_SCALE**2 + sigma**2) * x
    return (alpha * x - denoised) / sigma


def gaussian_ode_solution(x: torch.Tensor, noise: float) -> torch.Tensor:
    """x(0) from x(noise): each coordinate scales by the ratio of the marginal standard deviations."""
    alpha, sigma = alpha_sigma(torch.tensor(noise))
    return x * DATA_SCALE / (alpha**2 * DATA_SCALE**2 + sigma**2).sqrt()


def errors_by_steps(sampler, model, x, noise, reference, step_counts=STEP_COUNTS, **options):
    return [(sampler(model, x, step_grid(n, noise), **options) - reference).abs().max().item() for n in step_counts]


def assert_converges(errors):
    assert all(later < earlier for earlier, later in zip(errors, errors[1:])), errors
    assert errors[-1] < errors[0] / 4, errors


@pytest.mark.parametrize("noise", [1.0, 0.63, 0.05])
def test_grid_runs_from_exactly_noise_to_zero(noise):
    ts = step_grid(7, noise)
    assert len(ts) == 8 and ts.dtype == torch.float64
    assert ts[0].item() == noise and ts[-1].item() == 0.0
    assert (ts[1:] < ts[:-1]).all()


def test_grid_at_full_noise_is_diffusers_ipndm_timesteps():
    from diffusers import IPNDMScheduler

    scheduler = IPNDMScheduler()
    for steps in (1, 20, 100, 1000):
        scheduler.set_timesteps(steps)
        expected = torch.cat([scheduler.timesteps, torch.zeros(1)]).double()
        # diffusers works in float32, where sqrt(1 - sigma^2) next to t = 1 keeps only ~5 digits.
        assert torch.allclose(step_grid(steps), expected, rtol=0, atol=2e-5)


def test_grid_rejects_bad_arguments():
    for steps, noise in ((0, 1.0), (2.5, 1.0), (10, 0.0), (10, 1.5)):
        with pytest.raises(ValueError):
            step_grid(steps, noise)


@pytest.mark.parametrize("noise", [1.0, 0.63, 0.05])
def test_karras_grid_steps_evenly_in_sigma_to_the_one_over_rho(noise):
    ts = karras_grid(7, noise)
    assert len(ts) == 8 and ts.dtype == torch.float64 and ts[-1].item() == 0.0
    assert (ts[1:] < ts[:-1]).all()
    # From the knob's own time, or from sigma_max where the knob is above it (t = 1: a new sound)
    assert ts[0].item() == (noise if noise < 0.99 else pytest.approx(t_from_ve_sigma(KARRAS_SIGMA_MAX).item()))
    sigmas = ve_sigma(ts[:-1])
    assert sigmas[-1].item() == pytest.approx(KARRAS_SIGMA_MIN)
    spacing = (sigmas ** (1 / KARRAS_RHO)).diff()
    assert torch.allclose(spacing, spacing[0].expand_as(spacing), rtol=1e-9)


def test_karras_grid_below_its_last_sigma_and_bad_arguments():
    low = t_from_ve_sigma(KARRAS_SIGMA_MIN / 2).item()
    ts = karras_grid(3, low)  # a knob under the grid's bottom: down to a tenth of its sigma, then 0
    assert ts[0].item() == low and ts[-1].item() == 0 and (ts[1:] < ts[:-1]).all()
    assert ve_sigma(ts[-2]).item() == pytest.approx(KARRAS_SIGMA_MIN / 20)
    for steps, noise in ((0, 1.0), (2.5, 1.0), (10, 0.0), (10, 1.5)):
        with pytest.raises(ValueError):
            karras_grid(steps, noise)


def test_a_samplers_name_picks_its_grid():
    karras = {"dpmpp-2m-sde-karras", "dpmpp-2m-sde-karras-eta0.5"}
    for name in karras:
        assert torch.equal(grid(name, 9, 0.7), karras_grid(9, 0.7))
    for name in set(SAMPLERS) - karras:
        assert torch.equal(grid(name, 9, 0.7), step_grid(9, 0.7))
    assert SAMPLERS["dpmpp-2m-sde-karras"] is sample_dpmpp_2m_sde  # the same solver: only the grid differs


def test_the_half_noise_sde_is_the_sde_at_eta_one_half(tiny_unet):
    """dpmpp-2m-sde-karras-eta0.5 is sample_dpmpp_2m_sde with eta 0.5, to the bit, and not the eta-1 sampler: the name
    alone remakes a file (its noise from the same per-output generators)."""
    ts = grid("dpmpp-2m-sde-karras-eta0.5", 6, 1.0)
    x = torch.randn(1, 2, 24, generator=torch.Generator().manual_seed(3))

    def run(sample, **options):
        noise = NoiseSampler([5], x)
        return sample(tiny_unet, x, ts, noise_sampler=noise, **options)

    named = run(SAMPLERS["dpmpp-2m-sde-karras-eta0.5"])
    assert torch.equal(named, run(sample_dpmpp_2m_sde, eta=0.5))
    assert not torch.allclose(named, run(sample_dpmpp_2m_sde))


def test_the_loop_sampler_is_v_iplms_down_to_its_switch_then_the_sde(tiny_unet):
    """v-iplms-sde: v-iplms over the grid's times above 0.02, dpmpp-2m-sde from the first time at or under it, to
    the bit (the name alone remakes a file); its ends are each sampler alone."""
    ts = step_grid(12, 0.5)
    switch = next(i for i, t in enumerate(ts.tolist()) if t <= 0.02)
    assert 0 < switch < len(ts) - 1  # the grid crosses the switch: both parts run
    x = torch.randn(1, 2, 24, generator=torch.Generator().manual_seed(3))

    def noise():
        return NoiseSampler([5], x)

    named = SAMPLERS["v-iplms-sde"](tiny_unet, x, ts, noise_sampler=noise())
    by_hand = sample_dpmpp_2m_sde(tiny_unet, sample_v_iplms(tiny_unet, x, ts[:switch + 1]), ts[switch:],
                                  noise_sampler=noise())
    assert torch.equal(named, by_hand)
    assert not torch.allclose(named, sample_v_iplms(tiny_unet, x, ts), atol=1e-4)
    assert torch.equal(sample_v_iplms_sde(tiny_unet, x, ts, below=0.0), sample_v_iplms(tiny_unet, x, ts))
    assert torch.equal(sample_v_iplms_sde(tiny_unet, x, ts, noise_sampler=noise(), below=1.0),
                       sample_dpmpp_2m_sde(tiny_unet, x, ts, noise_sampler=noise()))
    with pytest.raises(ValueError, match="below"):
        sample_v_iplms_sde(tiny_unet, x, ts, below=-0.1)


def test_ve_sigma_round_trip_and_cap():
    ts = torch.tensor([0.0, 0.1, 0.5, 0.9, 0.999], dtype=torch.float64)
    assert torch.allclose(t_from_ve_sigma(ve_sigma(ts)), ts, atol=1e-12)
    assert ve_sigma(torch.tensor(1.0)).item() == SIGMA_MAX
    assert ve_sigma(torch.tensor(0.5)).item() == pytest.approx(1.0)


@pytest.mark.parametrize("noise", [1.0, 0.6])
@pytest.mark.parametrize("name", ODE_SAMPLERS)
def test_ode_samplers_converge_to_the_exact_solution(name, noise):
    x = torch.randn(2, 2, 32, dtype=torch.float64)
    exact = gaussian_ode_solution(x, noise)
    assert_converges(errors_by_steps(SAMPLERS[name], gaussian_v_model, x, noise, exact))


@pytest.fixture(scope="module")
def tiny_unet():
    from tests.conftest import TINY

    torch.manual_seed(1)
    return DanceDiffusionUNet(TINY).eval()


@pytest.fixture(scope="module")
def unet_reference(tiny_unet):
    """A many-step solution of the network's probability-flow ODE from one starting noise."""
    x = torch.randn(1, 2, 24, generator=torch.Generator().manual_seed(5))
    return x, SAMPLERS["heun"](tiny_unet, x, step_grid(160))


@pytest.mark.parametrize("name", ODE_SAMPLERS)
def test_ode_samplers_converge_on_a_random_unet(name, tiny_unet, unet_reference):
    x, reference = unet_reference
    errors = errors_by_steps(SAMPLERS[name], tiny_unet, x, 1.0, reference, step_counts=(4, 8, 16, 32))
    print(f"{name}: max abs error at 4, 8, 16, 32 steps: {', '.join(f'{e:.1e}' for e in errors)}")
    assert_converges(errors)


class BrownianNoise:
    """One Brownian path, in the time 1 / sigma^2 of the variance-exploding SDE, shared by every grid nested in
    ``fine``: returns the normalised increment between two of its times, so coarse and fine solvers see the same
    noise and their solutions can be compared path by path."""

    def __init__(self, fine: torch.Tensor, like: torch.Tensor, seed: int = 0):
        self.ts = fine
        tau = ve_sigma(fine[:-1]) ** -2
        steps = torch.randn(len(tau) - 1, *like.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
        self.tau = tau
        self.path = torch.cat([torch.zeros(1, *like.shape, dtype=torch.float64),
                               (steps * tau.diff().sqrt()[:, None, None, None]).cumsum(0)])

    def _index(self, t):
        return int((self.ts - t).abs().argmin())

    def __call__(self, t, t_next):
        i, j = self._index(t), self._index(t_next)
        return (self.path[j] - self.path[i]) / (self.tau[j] - self.tau[i]).sqrt()


@pytest.mark.parametrize("noise", [1.0, 0.7])
@pytest.mark.parametrize("sampler, options", [(sample_dpmpp_2m_sde, {"eta": 1.0}), (sample_v_ddim, {"eta": 1.0})])
def test_sde_samplers_converge_along_one_brownian_path(sampler, options, noise):
    x = torch.randn(2, 2, 32, dtype=torch.float64)
    fine = step_grid(STEP_COUNTS[-1] * 8, noise)
    brownian = BrownianNoise(fine, x)
    reference = sampler(gaussian_v_model, x, fine, noise_sampler=brownian, **options)
    errors = errors_by_steps(sampler, gaussian_v_model, x, noise, reference, noise_sampler=brownian, **options)
    assert_converges(errors)


def test_ddim_is_euler_and_sde_without_noise_is_dpmpp_2m(tiny_unet, unet_reference):
    x, _ = unet_reference
    ts = step_grid(12, 0.8)
    assert torch.allclose(sample_v_ddim(tiny_unet, x, ts), sample_euler(tiny_unet, x, ts), atol=1e-5)
    assert torch.allclose(sample_dpmpp_2m_sde(tiny_unet, x, ts, eta=0.0), sample_dpmpp_2m(tiny_unet, x, ts), atol=1e-5)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_starts_at_the_grid_top_and_reports_each_step(name, tiny_unet):
    seen, reports = [], []

    def model(x, t):
        seen.append(t.clone())
        return tiny_unet(x, t)

    ts = step_grid(6, 0.37)
    out = SAMPLERS[name](model, torch.randn(3, 2, 24), ts, callback=reports.append)
    assert out.shape == (3, 2, 24) and torch.isfinite(out).all()
    assert seen[0].shape == (3,) and torch.allclose(seen[0], torch.full((3,), 0.37), rtol=0, atol=1e-7)
    assert all(0 < t.min() and t.max() <= 0.37 + 1e-7 for t in seen)
    assert [report["i"] for report in reports] == list(range(6))


@pytest.mark.parametrize("name", ["v-ddim", "dpmpp-2m-sde"])
def test_stochastic_samplers_use_the_noise_they_are_given(name, tiny_unet):
    x, ts = torch.randn(1, 2, 24), step_grid(5, 0.9)
    zeros = SAMPLERS[name](tiny_unet, x, ts, noise_sampler=lambda t, t_next: torch.zeros_like(x), eta=1.0)
    ones = SAMPLERS[name](tiny_unet, x, ts, noise_sampler=lambda t, t_next: torch.ones_like(x), eta=1.0)
    again = SAMPLERS[name](tiny_unet, x, ts, noise_sampler=lambda t, t_next: torch.ones_like(x), eta=1.0)
    assert not torch.allclose(zeros, ones) and torch.equal(ones, again)


def test_bad_eta_is_refused():
    with pytest.raises(ValueError, match="eta"):
        sample_v_ddim(gaussian_v_model, torch.randn(1, 2, 8), step_grid(3), eta=1.5)
    with pytest.raises(ValueError, match="eta"):
        sample_dpmpp_2m_sde(gaussian_v_model, torch.randn(1, 2, 8), step_grid(3), eta=-1)
