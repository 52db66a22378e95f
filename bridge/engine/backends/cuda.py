"""The torch backend on CUDA: weights in the precision asked for, ``torch.compile`` with CUDA graphs for the fixed
(batch, length) shapes the service uses, compiled at warm-up."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch

from bridge.engine import unet

log = logging.getLogger(__name__)


def _twin(module: unet.DanceDiffusionUNet, dtype: torch.dtype) -> unet.DanceDiffusionUNet:
    """A copy of ``module`` in ``dtype`` on its device, without a transient full-precision copy."""
    device = next(module.parameters()).device
    with torch.device("meta"):
        twin = unet.DanceDiffusionUNet(module.config)
    twin = twin.to_empty(device=device).to(dtype)
    twin.load_state_dict(module.state_dict())
    return twin.eval()


class CompiledCudaNetwork:
    """The module in fp16/bf16 (or fp32) weights, compiled by inductor with CUDA graphs.

    ``warm_up`` compiles and records a graph for each (batch, length) the service will use, so no request pays
    for it; a smaller batch of a warmed length is padded up to the nearest warmed batch, keeping to the recorded
    graphs (on a GPU a partly empty batch costs about what a full one does). Results are copied out of the
    graph's memory pool, which the next replay reuses.
    """

    def __init__(self, module: unet.DanceDiffusionUNet, dtype: torch.dtype, compile: bool = True):
        if not torch.cuda.is_available():
            raise RuntimeError("CompiledCudaNetwork needs a CUDA device")
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = dtype == torch.float32
        self.dtype = dtype
        # A low-precision twin: the module itself stays as it is (training may own it); fp32 uses it directly.
        self.module = module if dtype == torch.float32 else _twin(module, dtype)
        self.compiled = torch.compile(self.module, mode="reduce-overhead", fullgraph=True, dynamic=False) \
            if compile else self.module
        self.warmed: set[tuple[int, int]] = set()

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        batch, length = x.shape[0], x.shape[2]
        t = t.reshape(-1).expand(batch)
        padded = min((b for b, n in self.warmed if n == length and b >= batch), default=batch)
        if padded > batch:
            x = torch.cat([x, x.new_zeros(padded - batch, *x.shape[1:])])
            t = torch.cat([t, t.new_full((padded - batch,), 0.5)])
        with torch.inference_mode():
            torch.compiler.cudagraph_mark_step_begin()
            v = self.compiled(x.to(self.dtype), t.to(self.dtype))[:batch]
            return v.float() if v.dtype != torch.float32 else v.clone()

    def warm_up(self, shapes: Iterable[tuple[int, int]]) -> None:
        """Compiles and records each (batch, length) now: three calls, the last one replays the graph."""
        device = next(self.module.parameters()).device
        for batch, length in shapes:
            x = torch.zeros(batch, self.module.config.io_channels, length, device=device)
            t = torch.full((batch,), 0.5, device=device)
            for _ in range(3):
                self(x, t)
            self.warmed.add((batch, length))
            log.info("compiled for batch %d x %d samples", batch, length)
        torch.cuda.synchronize(device)
