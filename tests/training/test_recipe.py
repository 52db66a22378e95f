"""The training recipe's knobs: each loss against a hand computation, the noise-level draw, run.yaml and resume."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from bridge.engine.schedules import crash_schedule
from bridge.engine.unet import DanceDiffusionUNet
from bridge.errors import ConfigError
from bridge.training import data, recipe, session
from bridge.training.recipe import Recipe
from bridge.training.train import fit, open_run, v_loss

from .test_train import assert_continued_exactly, assert_differs_from_a_plain_run, settings_for

KNOBS = dict(loss_weight="min-snr:5", pre_emphasis=0.9, t_sampling="low:0.3:0.6")


@pytest.fixture(scope="module")
def windows(drumkits):
    files = sorted((drumkits / "Audiophob").glob("*.wav"))[:6]
    return data.OneShots.load(files, 48000, 512).windows


def tiny_case():
    predicted = torch.tensor([[[1.0, 2.0, 0.0]], [[0.5, -1.0, 1.0]]])
    target = torch.tensor([[[0.0, 1.0, 1.0]], [[0.5, 0.0, -1.0]]])
    alpha = torch.tensor([0.8, 0.1])[:, None, None]
    sigma = torch.tensor([0.6, math.sqrt(0.99)])[:, None, None]
    return predicted, target, alpha, sigma


def test_min_snr_weights_each_clips_v_error_by_min_snr_gamma_over_snr_plus_one():
    predicted, target, alpha, sigma = tiny_case()
    # errors: clip 1 (1, 1, -1): mean square 1; clip 2 (0, -1, 2): mean square 5/3
    snr1, snr2 = 0.64 / 0.36, 0.01 / 0.99
    gamma = 1.5
    expected = (min(snr1, gamma) / (snr1 + 1) * 1 + min(snr2, gamma) / (snr2 + 1) * 5 / 3) / 2
    got = Recipe(gamma=gamma).loss(predicted, target, alpha, sigma)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # at t = 0 (sigma = 0) the weight is 0, not nan: SNR is infinite there
    assert float(recipe.min_snr_weight(torch.tensor([1.0]), torch.tensor([0.0]), 5.0)) == 0.0


def test_pre_emphasis_is_a_first_order_high_pass_of_the_error_over_its_white_noise_gain():
    predicted, target, alpha, sigma = tiny_case()
    c = 0.5
    # clip 1 error (1, 1, -1) -> (1, 1 - 0.5, -1 - 0.5) = (1, 0.5, -1.5); clip 2 (0, -1, 2) -> (0, -1, 2.5)
    expected = ((1 + 0.25 + 2.25) / 3 + (0 + 1 + 6.25) / 3) / 2 / (1 + c * c)
    got = Recipe(pre_emphasis=c).loss(predicted, target, alpha, sigma)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # linear: filtering the v error is filtering the x0 error (x0 error = -sigma * v error), sample by sample
    error = torch.randn(2, 2, 64)
    assert torch.allclose(recipe.pre_emphasise(-0.6 * error, c), -0.6 * recipe.pre_emphasise(error, c))
    # a constant error (the lowest frequency) loses nearly everything, alternating signs (the highest) gain
    assert float(recipe.pre_emphasise(torch.ones(1, 1, 64), 0.9)[..., 1:].abs().max()) < 0.1
    assert float(recipe.pre_emphasise(torch.tensor([[[1.0, -1.0] * 32]]), 0.9)[..., 1:].abs().min()) > 1.3


def test_the_original_recipe_is_the_plain_mse_to_the_bit(tiny_config):
    torch.manual_seed(0)
    model = DanceDiffusionUNet(tiny_config)
    reals, noise, u = torch.randn(3, 2, 512), torch.randn(3, 2, 512), torch.tensor([0.1, 0.5, 0.9])
    plain = v_loss(model, reals, u, noise)
    assert torch.equal(v_loss(model, reals, u, noise, Recipe()), plain)
    # and the generic path agrees with it when nothing is weighted (the shortcut only saves time)
    t = crash_schedule(u).float()
    alpha, sigma = (w.float()[:, None, None] for w in (torch.cos(t * math.pi / 2), torch.sin(t * math.pi / 2)))
    generic = Recipe().loss(model(reals * alpha + noise * sigma, t), noise * alpha - reals * sigma, alpha, sigma)
    assert float(generic.detach()) == pytest.approx(float(plain.detach()), rel=1e-5)


def test_low_t_sampling_puts_the_asked_fraction_at_or_below_t_and_keeps_the_order():
    u = (torch.arange(1000) + 0.5) / 1000
    assert torch.equal(Recipe().times(u), u)  # uniform: untouched
    warped = Recipe.from_settings(settings_for_text(t_sampling="low:0.3:0.6")).times(u)
    t = crash_schedule(warped)
    assert float((t <= 0.3).double().mean()) == pytest.approx(0.6, abs=0.002)
    assert float((crash_schedule(u) <= 0.3).double().mean()) == pytest.approx(0.471, abs=0.002)  # before
    assert bool((warped[1:] > warped[:-1]).all()) and 0 <= float(warped.min()) and float(warped.max()) < 1


def settings_for_text(**knobs):
    class Settings:
        pass
    settings = Settings()
    settings.__dict__.update(knobs)
    return settings


@pytest.mark.parametrize("knob, value, says", [
    ("loss_weight", "min-snr", "min-snr:GAMMA"), ("loss_weight", "min-snr:0", "GAMMA > 0"),
    ("loss_weight", "snr", "flat"), ("t_sampling", "low:1.5:0.5", "0 < T < 1"),
    ("t_sampling", "low:0.3", "low:T:FRACTION"), ("t_sampling", "low:a:b", "low:T:FRACTION"),
    ("pre_emphasis", 1.0, r"\[0, 1\)"), ("ema_decay", 1.0, "EMA decay")])
def test_a_bad_knob_is_one_clear_error_before_anything_loads(knob, value, says):
    with pytest.raises(ConfigError, match=says):
        session.prepare(["drums"], size="tiny", steps=10, **{knob: value})


def test_the_knobs_are_recorded_in_run_yaml_and_a_continued_run_keeps_them(tmp_path, tiny_config, windows):
    straight = open_run(tmp_path / "straight", settings_for(tiny_config, 4, **KNOBS))
    fit(straight, windows)
    written = yaml.safe_load((tmp_path / "straight" / "run.yaml").read_text())
    assert {k: written[k] for k in KNOBS} == KNOBS

    first = open_run(tmp_path / "resumed", settings_for(tiny_config, 2, **KNOBS))
    fit(first, windows)
    # continued with other (or no) knobs on the command line: the run keeps what it started with
    resumed = open_run(tmp_path / "resumed", settings_for(tiny_config, 4), model=DanceDiffusionUNet(tiny_config))
    assert {k: getattr(resumed.settings, k) for k in KNOBS} == KNOBS and resumed.recipe.gamma == 5
    fit(resumed, windows)
    assert_continued_exactly(straight, resumed)
    assert_differs_from_a_plain_run(straight, tmp_path, tiny_config, windows)

    card = yaml.safe_load(session.export(straight)[1].read_text())
    assert {k: card["training"][k] for k in KNOBS} == KNOBS


def test_an_old_run_yaml_without_the_knobs_continues_with_the_original_loss(tmp_path, tiny_config):
    run = open_run(tmp_path / "old", settings_for(tiny_config, 4))
    path = run.dir / "run.yaml"
    old = yaml.safe_load(path.read_text())
    assert (old["loss_weight"], old["pre_emphasis"], old["t_sampling"]) == ("flat", 0.0, "uniform")
    for key in KNOBS:
        del old[key]  # as a run.yaml written before they existed
    path.write_text(yaml.safe_dump(old, sort_keys=False))
    continued = open_run(tmp_path / "old", settings_for(tiny_config, 8, **KNOBS))
    assert continued.recipe == Recipe() and continued.recipe.is_original
