"""Training's demos on a GPU: rendered eagerly, with no torch.compile (minutes a shape, CUDA graph memory taken
from training) and no backend flag changed for the run around them. The CUDA network is built on the CPU, as
tests/engine/backends/test_cuda.py does."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from bridge.engine import backends
from bridge.engine.backends import cuda
from bridge.engine.devices import pick_dtype
from bridge.engine.unet import DanceDiffusionUNet, UNetConfig
from bridge.training import session


def test_demos_on_cuda_render_eagerly_and_leave_the_flags(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    built = []

    def cuda_network(module, device, precision="fp32"):  # the network a CUDA device gets, here on the CPU
        built.append(cuda.CompiledCudaNetwork(module, pick_dtype(precision)))
        return built[-1]

    monkeypatch.setattr(backends, "fast_network", cuda_network)
    monkeypatch.setattr(torch, "compile", lambda *a, **k: pytest.fail("a demo compiled the network"))
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark
    matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark = False, False, False
    try:
        torch.manual_seed(0)
        ema = DanceDiffusionUNet(UNetConfig(channels=(8, 8, 16, 16), n_attn_layers=0)).eval().requires_grad_(False)
        settings = SimpleNamespace(sample_rate=48000, window=2048, demo_count=2, demo_steps=2)
        run = SimpleNamespace(settings=settings, dir=tmp_path / "run", step=250, ema=ema)
        run.dir.mkdir()
        paths = session.render_demos(run)
        assert len(built) == 1 and built[0].compiled is None and not built[0].warmed  # eager: never warmed
        assert (matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark) == (False, False, False)
        assert [p.name for p in paths if p.suffix == ".wav"] == ["step0000250-1.wav", "step0000250-2.wav"]
    finally:
        matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark = saved
