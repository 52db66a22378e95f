"""The engine and training on a real CUDA device: the fast path (half weights, torch.compile, CUDA graphs) and a
bf16 training step, against the CPU in float32 on the same weights and noise.

On a machine without CUDA these are skipped; gpu/session.sh sets DD_REQUIRE_CUDA=1 on a lent GPU, where a skip
would hide that the CUDA paths never ran, so there they fail instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.engine.audio import read_audio, read_metadata
from bridge.engine.engine import Engine
from bridge.engine.unet import DanceDiffusionUNet
from bridge.training.train import Run, TrainingSettings
from tests.conftest import TINY

if not torch.cuda.is_available():
    if os.environ.get("DD_REQUIRE_CUDA") == "1":
        raise RuntimeError("DD_REQUIRE_CUDA=1 but torch sees no CUDA device")
    pytest.skip("no CUDA device (these run on a lent GPU: gpu/session.sh)", allow_module_level=True)

RATE, WINDOW = 48000, 8192


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.double() - ref.double()).norm() / ref.double().norm())


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(5)
    return DanceDiffusionUNet(TINY).eval()


def _copy(unet):
    copy = DanceDiffusionUNet(TINY).eval()
    copy.load_state_dict(unet.state_dict())
    return copy


@pytest.fixture(scope="module")
def cpu_reference(unet):
    return Engine.from_module(_copy(unet), RATE, WINDOW, device="cpu", precision="fp32").generate(
        3, steps=8, seed=[1, 2, 3])


@pytest.fixture(scope="module")
def cuda_fp32(unet):
    """One compiled engine for the fp32 tests: each compile (inductor, CUDA graphs) costs tens of seconds. Warmed
    for the window, as the service warms its shapes (an engine never warmed runs eagerly: backends/cuda.py), so
    these tests check the compiled graph; other shapes (vary's) run eagerly beside it."""
    engine = Engine.from_module(_copy(unet), RATE, WINDOW, device="cuda", precision="fp32")
    engine.network.warm_up([(engine.batch_size(WINDOW), engine.padded_length(WINDOW))])
    return engine


# fp32 is the engine's default; fp16 the half-precision twin. bf16 is left to the training test: each precision
# is a compile of its own, and the session's time on the GPU is short.
@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-2), ("fp16", 5e-2)])
def test_generate_on_cuda_matches_the_cpu(unet, cpu_reference, cuda_fp32, precision, tolerance):
    engine = cuda_fp32 if precision == "fp32" else Engine.from_module(_copy(unet), RATE, WINDOW, device="cuda",
                                                                        precision=precision)
    assert engine.device.type == "cuda"
    out = engine.generate(3, steps=8, seed=[1, 2, 3])
    assert out.device.type == "cpu" and out.dtype == torch.float32 and out.shape == cpu_reference.shape
    assert torch.isfinite(out).all()
    error = relative_error(out, cpu_reference)
    print(f"{precision}: relative error to the CPU in float32 {error:.2e}")
    assert error < tolerance


def test_vary_on_cuda_keeps_the_seed_rule(cuda_fp32):
    clip = torch.randn(2, WINDOW, generator=torch.Generator().manual_seed(4)) * 0.3
    batch = cuda_fp32.vary(clip, count=3, noise=0.5, steps=6, seed=[11, 12, 13])
    alone = cuda_fp32.vary(clip, count=1, noise=0.5, steps=6, seed=[12])
    assert relative_error(alone[0], batch[1]) < 1e-3  # any one output is recreated alone, on the GPU too


def test_a_bf16_training_step_on_cuda_moves_the_weights(tmp_path):
    settings = TrainingSettings(data=[], architecture=TINY.to_dict(), sample_rate=RATE, window=WINDOW, steps=3,
                                batch_size=4)
    run = Run(tmp_path, settings, DanceDiffusionUNet(TINY), torch.device("cuda"))
    assert run.precision in ("bf16", "fp16")
    before = [p.detach().clone() for p in run.model.parameters()]
    reals = torch.randn(4, 2, WINDOW, generator=torch.Generator().manual_seed(1)) * 0.3
    losses = [run.train_step(reals) for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert any(not torch.equal(b, p.detach()) for b, p in zip(before, run.model.parameters()))
    run.save()
    assert (tmp_path / "state.pt").exists()


def test_a_guided_sound_is_made_again_in_another_process(tmp_path, tiny_model_path):
    """On a GPU a file's command names no device (``auto`` takes the GPU; one naming cuda would fail elsewhere), so
    the same command in a new process, with its own compile and cuDNN's own choice of kernels, must give the same
    samples: a guided render turns a last-bit difference into another sound (docs/guidance.md, "The same sound
    again"). Eager, so what it checks is cuDNN's choice of kernels (``benchmark``), not inductor's. If this fails,
    the CUDA backend needs deterministic kernels (bridge/engine/backends/cuda.py)."""
    renders = []
    for run in ("first", "again"):
        out = tmp_path / run
        result = subprocess.run([sys.executable, "-m", "bridge", "--quiet", "generate", "--model", str(tiny_model_path),
                                 "--count", "2", "--seconds", "0.2", "--steps", "6", "--seed", "3",
                                 "--guide", "class=1:tom", "--guide", "decay=1:0.1s", "--out", str(out)],
                                capture_output=True, text=True, timeout=300,
                                # eager: a compile costs minutes on a lent GPU (gpu/README.md); cuDNN still chooses
                                # the path kept: on the lent GPU the carried wheels lie on it (/tmp/dd-site)
                                env=dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
                                    str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH")])),
                                         TORCH_COMPILE_DISABLE="1"))
        assert result.returncode == 0, result.stderr
        renders.append(sorted(out.glob("*.wav")))
    assert len(renders[0]) == 2 and "--device" not in read_metadata(renders[0][0])["command"]
    for first, again in zip(*renders):
        assert np.array_equal(read_audio(first).samples, read_audio(again).samples), first.name
