"""Same weights, same seed: our v-iplms render equals diffusers' DanceDiffusionPipeline with IPNDMScheduler."""

from __future__ import annotations

import pytest
import torch

from bridge.bench import reference as bench_reference
from bridge.engine.checkpoints import load_model
from bridge.engine.engine import Engine
from tests.support.model_files import SMALL_DIFFUSERS, dance_diffusion_unet1d, write_diffusers_folder

pytestmark = pytest.mark.usefixtures("one_thread")

PIPELINE_TOLERANCE = 2e-3
RATE = 16000
LENGTH = 1000  # not a multiple of the model's 16: both sides pad to 1008 and trim back
STEPS = 20


@pytest.fixture(scope="module")
def reference():
    return dance_diffusion_unet1d(*SMALL_DIFFUSERS, sample_rate=RATE, sample_size=2048, seed=4)


@pytest.fixture(scope="module")
def folder(reference, tmp_path_factory):
    return write_diffusers_folder(reference, tmp_path_factory.mktemp("parity") / "dd-parity")


def pipeline_render(reference, generator) -> torch.Tensor:
    return bench_reference.pipeline_render(reference, count=2, steps=STEPS, seconds=LENGTH / RATE,
                                           generator=generator)


def assert_matches(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert ours.shape == theirs.shape == (2, 2, LENGTH)
    # The comparison means something only where the clamp to [-1, 1] did not decide both sides.
    assert (theirs.abs() < 0.99).float().mean() > 0.2
    difference = (ours - theirs).abs().max().item()
    print(f"v-iplms {STEPS} steps vs DanceDiffusionPipeline: max abs difference {difference:.2e}")
    assert difference <= PIPELINE_TOLERANCE


def test_generate_equals_dance_diffusion_pipeline(reference, folder):
    engine = Engine(load_model(folder), device="cpu")
    ours = engine.generate(2, LENGTH, steps=STEPS, sampler="v-iplms", seed=1234)
    assert_matches(ours, pipeline_render(reference, torch.Generator("cpu").manual_seed(1234)))


def test_seed_list_equals_the_pipeline_with_one_generator_per_output(reference, folder):
    engine = Engine(load_model(folder), device="cpu")
    ours = engine.generate(2, LENGTH, steps=STEPS, sampler="v-iplms", seed=[5, 6])
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in (5, 6)]
    assert_matches(ours, pipeline_render(reference, generators))
