"""The CUDA fast path's logic, run eagerly on the CPU; the compiled path itself runs on a lent GPU
(tests/engine/test_cuda.py)."""

from __future__ import annotations

import pytest
import torch

from bridge.engine.backends import cuda
from bridge.engine.unet import DanceDiffusionUNet, UNetConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@torch.inference_mode()
def test_cuda_network_pads_small_batches_to_a_warmed_shape(monkeypatch):
    """The CUDA path's logic, run eagerly on the CPU (no GPU here): a bf16 twin leaves the module alone, and a
    batch smaller than a warmed one runs padded to it, each output as if alone."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    model = DanceDiffusionUNet(UNetConfig(channels=(32, 32, 64, 64), n_attn_layers=2)).eval()
    network = cuda.CompiledCudaNetwork(model, torch.bfloat16, compile=False)
    assert next(model.parameters()).dtype == torch.float32 and network.module is not model
    shapes = []
    original = network.module.forward
    network.module.forward = lambda x, t: shapes.append(tuple(x.shape)) or original(x, t)
    network.warm_up([(4, 64)])
    x, t = torch.randn(2, 2, 64), torch.rand(2)
    v = network(x, t)
    assert v.shape == (2, 2, 64) and v.dtype == torch.float32
    assert shapes[-1] == (4, 2, 64)
    alone = torch.cat([network(x[i:i + 1], t[i:i + 1]) for i in range(2)])
    assert torch.allclose(v, alone, atol=1e-2)
    assert (v - model(x, t)).abs().max() < 0.1 * model(x, t).abs().max()
