"""Device and precision names as users type them."""

from __future__ import annotations

import argparse

import pytest
import torch

from bridge import constants
from bridge.cli import build_parser
from bridge.engine import devices
from bridge.engine.devices import pick_device, pick_dtype
from bridge.errors import ConfigError


def test_cpu_is_always_there():
    assert pick_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(devices, "_mps_available", lambda: mps)
    assert pick_device("auto") == torch.device(expected)


def test_auto_on_this_machine_matches_what_torch_sees():
    expected = "cuda" if torch.cuda.is_available() else "mps" if devices._mps_available() else "cpu"
    assert pick_device() == torch.device(expected)


def test_asking_for_a_missing_accelerator_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    for name in ("cuda", "mps"):
        with pytest.raises(ConfigError) as excinfo:
            pick_device(name)
        message = str(excinfo.value)
        assert "\n" not in message and name in message and "--device auto or cpu" in message


def test_unknown_names():
    with pytest.raises(ConfigError, match="device must be one of auto, cuda, mps, cpu, got 'gpu'"):
        pick_device("gpu")
    with pytest.raises(ConfigError, match="precision must be one of fp32, fp16, bf16, got 'float64'"):
        pick_dtype("float64")


def test_precisions():
    assert [pick_dtype(name) for name in ("fp32", "fp16", "bf16")] == [torch.float32, torch.float16, torch.bfloat16]


def test_every_command_offers_the_choices_of_constants():
    """One spelling of the devices, precisions and backends: every command's choices are the constants' tuples."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    allowed = {"device": (constants.DEVICES,), "precision": (constants.PRECISIONS, constants.AUTO_PRECISIONS),
               "backend": (constants.BACKENDS,)}
    offered = [(name, action.dest, tuple(action.choices)) for name, command in commands.items()
               for action in command._actions if action.dest in allowed and action.choices is not None]
    assert {dest for _, dest, _ in offered} == set(allowed) and len(offered) >= 15
    for name, dest, choices in offered:
        assert choices in allowed[dest], (name, dest)
    assert tuple(devices.DTYPES) == constants.PRECISIONS and constants.DEFAULT_PRECISION in constants.PRECISIONS
