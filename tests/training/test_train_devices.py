"""Training on a device without float64 (a Mac's MPS): no float64 tensor ever reaches the training device.

MPS refuses float64 outright ("Cannot convert a MPS Tensor to float64 dtype"), and `dd-bridge train --device auto`
picks it on Apple silicon; the schedule's float64 maths on the batch's device failed a Mac's run at its first step.
No Mac here: the batch goes to the `meta` device (shapes and dtypes, no values), under a dispatch mode that refuses
every op touching a float64 tensor on any device but the CPU."""

from __future__ import annotations

import contextlib
import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from bridge.engine.schedules import alpha_sigma, crash_schedule
from bridge.engine.unet import DanceDiffusionUNet
from bridge.training import distributed, train
from bridge.training.recipe import Recipe
from bridge.training.train import TrainingSettings, open_run, v_loss


class NoFloat64OffTheCpu(TorchDispatchMode):
    """Raises at the first op whose inputs or outputs hold a float64 tensor that is not on the CPU."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in tree_leaves((args, kwargs, out)):
            if isinstance(value, torch.Tensor) and value.dtype == torch.float64 and value.device.type != "cpu":
                raise AssertionError(f"{func} has a float64 tensor on {value.device}: MPS has no float64")
        return out


def test_the_guard_sees_float64_off_the_cpu():
    with pytest.raises(AssertionError, match="float64 tensor on meta"), NoFloat64OffTheCpu():
        torch.zeros(2, device="meta").double()
    with NoFloat64OffTheCpu():
        torch.zeros(2).double().sin()  # on the CPU it is fine


@pytest.mark.parametrize("loss_recipe", [None, Recipe(gamma=5.0, pre_emphasis=0.5)], ids=["original", "weighted"])
def test_the_loss_takes_no_float64_to_the_training_device(tiny_config, loss_recipe):
    with torch.device("meta"):
        model = DanceDiffusionUNet(tiny_config)
        reals, noise = torch.zeros(2, 2, 512), torch.zeros(2, 2, 512)
    u = torch.tensor([0.2, 0.9])  # as a step passes it: drawn on the CPU
    with NoFloat64OffTheCpu():
        loss = v_loss(model, reals, u, noise, loss_recipe)
        loss.backward()
    assert loss.device.type == "meta" and loss.dtype == torch.float32


def test_one_training_step_takes_no_float64_to_the_training_device(tmp_path, tiny_config, monkeypatch):
    settings = TrainingSettings(data=["drums"], architecture=tiny_config.to_dict(), sample_rate=48000, window=512,
                                steps=1, batch_size=2, lr=1e-3, warmup=1, save_every=2, seed=0,
                                loss_weight="min-snr:5", pre_emphasis=0.5)
    run = open_run(tmp_path / "run", settings, device="meta", precision="fp32")
    monkeypatch.setattr(train, "autocast", lambda device, precision: contextlib.nullcontext())  # none for meta
    monkeypatch.setattr(distributed.Group, "mean", lambda self, value: value)  # a meta loss has no value to read
    with NoFloat64OffTheCpu():
        loss = run.train_step(torch.randn(2, 2, 512))
    assert loss.device.type == "meta" and run.step == 1


def test_on_the_cpu_the_loss_is_the_same_bits_as_with_the_schedule_where_the_batch_is(tiny_config):
    """The schedule moved to the CPU changes nothing there: a run continued after the change goes on as it was."""
    torch.manual_seed(0)
    model = DanceDiffusionUNet(tiny_config)
    generator = torch.Generator().manual_seed(1)
    reals, noise = torch.randn(3, 2, 512, generator=generator), torch.randn(3, 2, 512, generator=generator)
    u = torch.tensor([0.0, 0.37, 1.0])
    t = crash_schedule(u).to(reals.dtype)  # what v_loss computed before, on the batch's device
    alpha, sigma = (w.to(reals.dtype)[:, None, None] for w in alpha_sigma(t))
    before = torch.nn.functional.mse_loss(model(reals * alpha + noise * sigma, t).float(),
                                          noise * alpha - reals * sigma)
    assert torch.equal(v_loss(model, reals, u, noise), before)
    assert math.isfinite(float(before.detach()))
