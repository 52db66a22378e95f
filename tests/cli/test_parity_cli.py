"""End to end: `dd-bridge generate` on a diffusers folder writes what DanceDiffusionPipeline renders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile
import torch

from tests.engine.test_pipeline_parity import LENGTH, PIPELINE_TOLERANCE, RATE, STEPS, pipeline_render
from tests.support.model_files import SMALL_DIFFUSERS, dance_diffusion_unet1d, write_diffusers_folder

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[2]


def test_cli_generate_equals_dance_diffusion_pipeline(tmp_path):
    reference = dance_diffusion_unet1d(*SMALL_DIFFUSERS, sample_rate=RATE, sample_size=2048, seed=4)
    folder = write_diffusers_folder(reference, tmp_path / "dd-parity")
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, "-m", "bridge", "generate", "--model", str(folder), "--seed", "1234",
               "--steps", str(STEPS), "--sampler", "v-iplms", "--count", "2", "--seconds", str(LENGTH / RATE),
               "--out", str(out), "--format", "float", "--device", "cpu", "--finish", "off"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    paths = [Path(line) for line in result.stdout.splitlines()]
    assert len(paths) == 2 and all(path.parent == out for path in paths), result.stdout

    ours = torch.stack([torch.from_numpy(soundfile.read(path, dtype="float32")[0].T) for path in paths])
    theirs = pipeline_render(reference, torch.Generator("cpu").manual_seed(1234))
    assert ours.shape == theirs.shape == (2, 2, LENGTH)
    assert (theirs.abs() < 0.99).float().mean() > 0.2
    assert (ours - theirs).abs().max().item() <= PIPELINE_TOLERANCE
