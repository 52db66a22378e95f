"""The torch backend on CUDA: weights in the precision asked for; ``torch.compile`` with CUDA graphs only for the
fixed (batch, length) shapes that were warmed up (the service's), everything else eagerly in the same precision.

Why not compile every shape as it comes: a compile (inductor plus a CUDA graph record) takes minutes a shape on a
GPU (gpu/README.md), and dynamo gives up after 8 shapes of one function (``recompile_limit``), which with
``fullgraph=True`` is a hard error, not a fallback. So a shape is compiled only by ``warm_up``, ahead of any key
press; the one-shot CLI (``generate``, ``vary``, ``pack``, training's demos) never warms, so it never compiles: a
fresh process would spend minutes on a graph it replays a few dozen times. Lengths are not bucketed (padded up
to a warmed length): the network's attention sees the whole state, so extra padding would change the sound.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator

import torch

from bridge.engine import unet
from bridge.errors import one_line

log = logging.getLogger(__name__)


def _twin(module: unet.DanceDiffusionUNet, dtype: torch.dtype) -> unet.DanceDiffusionUNet:
    """A copy of ``module`` in ``dtype`` on its device, without a transient full-precision copy; the time embedding's
    weights stay in fp32, as the embedding itself is computed (unet.FourierFeatures)."""
    device = next(module.parameters()).device
    with torch.device("meta"):
        twin = unet.DanceDiffusionUNet(module.config)
    twin = twin.to_empty(device=device).to(dtype)
    twin.timestep_embed.float()
    twin.load_state_dict(module.state_dict())
    return twin.eval()


@contextlib.contextmanager
def backend_flags(dtype: torch.dtype) -> Iterator[None]:
    """cuDNN's benchmark (fixed shapes: the fastest kernels picked once) and TF32 for fp32 work, set for one call
    and restored after: set for good, the last network built would decide them for every other one and for the
    rest of the process (the bench's fp32 rows, a training run around its demos)."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark
    tf32 = dtype == torch.float32
    matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark = tf32, tf32, True
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark = saved


class CompiledCudaNetwork:
    """The module in fp16/bf16 (or fp32) weights; the shapes ``warm_up`` was given compiled by inductor with CUDA
    graphs, any other shape run eagerly with the same weights.

    ``warm_up`` compiles and records a graph for each (batch, length) the service will use, so no request pays for
    it; a smaller batch of a warmed length is padded up to the nearest warmed batch, keeping to the recorded graphs
    (on a GPU a partly empty batch costs about what a full one does; padded rows do not change the others: each
    item is normalised on its own). Results are copied out of the graph's memory pool, which the next replay
    reuses. A compile that fails (at warm-up or later) is said in one log line, and the network runs eagerly from
    then on. CUDA graphs belong to the thread that recorded them: warm up on the thread that renders.

    ``compile=False``: the warmed shapes run the module itself, with the same padding (the tests' stand-in on a
    CPU).
    """

    def __init__(self, module: unet.DanceDiffusionUNet, dtype: torch.dtype, compile: bool = True):
        if not torch.cuda.is_available():
            raise RuntimeError("CompiledCudaNetwork needs a CUDA device")
        self.dtype = dtype
        # A low-precision twin: the module itself stays as it is (training may own it); fp32 uses it directly.
        self.module = module if dtype == torch.float32 else _twin(module, dtype)
        self._compile = compile
        self.compiled = None  # made by the first warm_up: a network never warmed never compiles
        self.failed = False  # a compile failed: eager for good
        self.warmed: set[tuple[int, int]] = set()

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        batch, length = x.shape[0], x.shape[2]
        t = t.reshape(-1).expand(batch).float()  # the time embedding is computed in fp32 (unet.FourierFeatures)
        padded = min((b for b, n in self.warmed if n == length and b >= batch), default=batch)
        with torch.inference_mode(), backend_flags(self.dtype):
            if self.compiled is not None and (padded, length) in self.warmed:
                v = self._graph(x, t, batch, padded)
                if v is not None:
                    return v
            v = self.module(x.to(self.dtype), t)
            return v.float() if v.dtype != torch.float32 else v

    def _graph(self, x: torch.Tensor, t: torch.Tensor, batch: int, padded: int) -> torch.Tensor | None:
        """The compiled graph's result for ``x`` padded to ``padded`` rows; None when the compile failed (said once,
        and the graph dropped: eager from now on)."""
        # New contiguous tensors made here, under inference mode: the graph's guards then hold whether the caller's
        # came from inside inference mode or not, or t from one number (the warm-up's match the presses').
        x = x.to(self.dtype, memory_format=torch.contiguous_format, copy=True)
        t = t.to(torch.float32, memory_format=torch.contiguous_format, copy=True)
        if padded > batch:
            x = torch.cat([x, x.new_zeros(padded - batch, *x.shape[1:])])
            t = torch.cat([t, t.new_full((padded - batch,), 0.5)])
        try:
            torch.compiler.cudagraph_mark_step_begin()
            v = self.compiled(x, t)[:batch]
        except torch.cuda.OutOfMemoryError:  # this render's, not the graph's: the fast path stays for the next
            raise
        except Exception as error:  # inductor, dynamo's recompile limit, a CUDA graph that could not be recorded
            log.warning("torch.compile failed for batch %d x %d samples (%s: %s): the network runs eagerly from "
                        "now on", padded, x.shape[2], type(error).__name__, one_line(error))
            self.compiled, self.failed = None, True
            self.warmed.clear()
            return None
        return v.float() if v.dtype != torch.float32 else v.clone()

    def warm_up(self, shapes: Iterable[tuple[int, int]]) -> None:
        """Compiles and records each (batch, length) now, on this thread: three calls, the last one replays the
        graph. Called again (another thread), it records that thread's graphs; the compile itself is reused."""
        if self.failed:
            return
        if self.compiled is None:
            self.compiled = torch.compile(self.module, mode="reduce-overhead", fullgraph=True, dynamic=False) \
                if self._compile else self.module
        device = next(self.module.parameters()).device
        with _room_to_compile() if self._compile else contextlib.nullcontext():
            for batch, length in shapes:
                self.warmed.add((batch, length))
                x = torch.zeros(batch, self.module.config.io_channels, length, device=device)
                t = torch.full((batch,), 0.5, device=device)
                for _ in range(3):
                    self(x, t)
                if self.compiled is None:  # the compile failed (said): nothing more to warm
                    break
                log.info("compiled for batch %d x %d samples", batch, length)
        torch.cuda.synchronize(device)


def _room_to_compile():
    """Dynamo counts the graphs of every network in the process on one function (the module's forward), and stops
    at ``recompile_limit`` (8): a service's fourth model (two shapes each), or the bench's precisions, would reach
    it. Each network compiles its few warmed shapes only, all here, so the limit is raised for the warm-up alone."""
    import torch._dynamo.config as dynamo

    return dynamo.patch(recompile_limit=max(dynamo.recompile_limit, 64))
