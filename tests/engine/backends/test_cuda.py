"""The CUDA fast path's logic, run eagerly on the CPU; the compiled path itself runs on a lent GPU
(tests/engine/test_cuda.py)."""

from __future__ import annotations

import math

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


# The fast path's robustness: compiled graphs only for warmed shapes, eager otherwise, a failed compile survived,
# backend flags per call, the time embedding in fp32.

def _fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)


def _small():
    torch.manual_seed(3)
    return DanceDiffusionUNet(UNetConfig(channels=(16, 16, 32), n_attn_layers=0)).eval()


class _Graph:
    """Stands in for the compiled graph: records the shapes it is called with, answers as the module does."""

    def __init__(self, module, error: Exception | None = None):
        self.module, self.error, self.shapes = module, error, []

    def __call__(self, x, t):
        self.shapes.append((x.shape[0], x.shape[2]))
        if self.error is not None:
            raise self.error
        return self.module(x, t)


@torch.inference_mode()
def test_a_network_never_warmed_never_compiles_and_runs_eagerly(monkeypatch):
    """The one-shot CLI, packs and training's demos never warm up: no torch.compile (minutes a shape on a GPU, and
    a hard error at dynamo's 9th shape), the module run as it is, in the precision asked for."""
    _fake_cuda(monkeypatch)
    compiles = []
    monkeypatch.setattr(torch, "compile", lambda module, **options: compiles.append(options) or _Graph(module))
    model = _small()
    network = cuda.CompiledCudaNetwork(model, torch.bfloat16)
    x, t = torch.randn(3, 2, 32), torch.rand(3)
    v, exact = network(x, t), model(x, t)
    assert v.dtype == torch.float32 and (v - exact).abs().max() < 0.05 * exact.abs().max()
    assert compiles == [] and network.compiled is None
    network.warm_up([(4, 32)])
    assert compiles == [{"mode": "reduce-overhead", "fullgraph": True, "dynamic": False}]
    network(x, t)
    assert network.compiled.shapes[-1] == (4, 32)  # a warmed length: the graph, padded to its batch


@torch.inference_mode()
def test_a_shape_not_warmed_runs_the_module_eagerly(monkeypatch):
    _fake_cuda(monkeypatch)
    model = _small()
    network = cuda.CompiledCudaNetwork(model, torch.float32, compile=False)
    network.warm_up([(4, 64)])
    graph = network.compiled = _Graph(network.module)
    for batch, length in ((2, 64), (4, 64), (5, 64), (2, 32), (1, 96)):
        x, t = torch.randn(batch, 2, length), torch.rand(batch)
        v = network(x, t)
        assert v.shape == (batch, 2, length) and v.dtype == torch.float32
        assert torch.allclose(v, model(x, t), atol=1e-5)
    assert graph.shapes == [(4, 64), (4, 64)]  # the warmed one only; a larger batch or another length: eager


@torch.inference_mode()
def test_a_compile_error_falls_back_to_eager_with_one_log_line(monkeypatch, caplog):
    """A compile that fails (inductor, dynamo's recompile limit under fullgraph=True, a CUDA graph not recorded)
    costs a log line, not the render; the network stays eager from then on."""
    _fake_cuda(monkeypatch)
    model = _small()
    network = cuda.CompiledCudaNetwork(model, torch.float32, compile=False)
    graph = _Graph(network.module, RuntimeError("Hard failure due to fullgraph=True\nmore lines"))
    network.compiled = graph
    with caplog.at_level("WARNING", logger=cuda.__name__):
        network.warm_up([(4, 64), (2, 128)])  # no exception
        x, t = torch.randn(4, 2, 64), torch.rand(4)
        assert torch.allclose(network(x, t), model(x, t), atol=1e-5)
        network.warm_up([(4, 64)])  # not tried again
    assert len(graph.shapes) == 1 and network.compiled is None and network.warmed == set()
    lines = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(lines) == 1 and "eagerly" in lines[0].getMessage() and "more lines" not in lines[0].getMessage()


def test_running_out_of_memory_is_the_renders_error_and_the_graph_stays(monkeypatch):
    """Out of GPU memory in one replay (another program took it) fails that render, as it would eagerly; the
    compiled graph is not given up for the rest of the service's life as a failed compile is (review s43 r6)."""
    _fake_cuda(monkeypatch)
    network = cuda.CompiledCudaNetwork(_small(), torch.float32, compile=False)
    network.warm_up([(4, 64)])
    graph = _Graph(network.module, torch.cuda.OutOfMemoryError("CUDA out of memory"))
    network.compiled = graph
    with pytest.raises(torch.cuda.OutOfMemoryError):
        network(torch.randn(4, 2, 64), torch.rand(4))
    assert network.compiled is graph and network.warmed == {(4, 64)} and not network.failed


@torch.inference_mode()
def test_backend_flags_hold_for_the_call_only(monkeypatch):
    """TF32 for fp32 work and cuDNN's benchmark are set around each call and restored after: building an fp16
    network after the fp32 one used to turn TF32 off for both, and for the rest of the process."""
    _fake_cuda(monkeypatch)
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark
    matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark = False, False, False
    try:
        _flags_per_call(matmul, cudnn)
    finally:
        matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark = saved


def _flags_per_call(matmul, cudnn):
    model = _small()
    fp32 = cuda.CompiledCudaNetwork(model, torch.float32, compile=False)
    bf16 = cuda.CompiledCudaNetwork(model, torch.bfloat16, compile=False)
    assert (matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark) == (False, False, False)  # built: nothing set
    seen = []
    for network in (fp32, bf16):
        network.module.register_forward_pre_hook(
            lambda *_: seen.append((matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark)))
    x, t = torch.randn(1, 2, 32), torch.rand(1)
    fp32(x, t)
    bf16(x, t)
    fp32(x, t)
    assert seen == [(True, True, True), (False, False, True), (True, True, True)]
    assert (matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark) == (False, False, False)


def _old_embedding(features, t):
    f = 2 * math.pi * t @ features.weight.T
    return torch.cat([f.cos(), f.sin()], dim=-1)


@torch.inference_mode()
def test_the_time_embedding_in_fp32_is_unchanged():
    model = _small()
    t = torch.rand(5, 1)
    assert torch.equal(model.timestep_embed(t), _old_embedding(model.timestep_embed, t))
    x = torch.randn(5, 2, 32)
    captured = []
    model.timestep_embed.register_forward_hook(lambda module, args, out: captured.append((args[0], out)))
    model(x, t.reshape(-1))
    assert captured[0][0].dtype == torch.float32 and torch.equal(captured[0][1], _old_embedding(model.timestep_embed,
                                                                                                 t))


@torch.inference_mode()
def test_half_precision_no_longer_rounds_the_time(monkeypatch):
    """bf16 rounded t = 0.98991 to 0.98828 (a noise level 14 % off, two Karras steps told the same t): the embedding
    is computed from t in fp32, with the weights in fp32, and only then cast to the network's dtype."""
    _fake_cuda(monkeypatch)
    model = _small()
    network = cuda.CompiledCudaNetwork(model, torch.bfloat16, compile=False)
    assert network.module.timestep_embed.weight.dtype == torch.float32
    assert torch.equal(network.module.timestep_embed.weight, model.timestep_embed.weight)
    captured = []
    network.module.timestep_embed.register_forward_hook(lambda module, args, out: captured.append((args[0], out)))
    t = torch.tensor([0.99204, 0.98991])
    network(torch.randn(2, 2, 32), t)
    assert captured[0][0].dtype == torch.float32 and torch.equal(captured[0][0].reshape(-1), t)
    assert torch.equal(captured[0][1], _old_embedding(model.timestep_embed, t.reshape(-1, 1)))


@torch.inference_mode()
def test_autocast_leaves_the_time_embedding_in_fp32():
    """The CPU's bf16 and MPS run the fp32 module under autocast, which cast the embedding's product to bf16."""
    model = _small()
    t = torch.tensor([[0.98991], [0.5]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        embed = model.timestep_embed(t)
    assert embed.dtype == torch.float32 and torch.equal(embed, _old_embedding(model.timestep_embed, t))


def test_the_bench_waits_for_mps_work(monkeypatch):
    """bench's timings on a Mac: MPS runs asynchronously like CUDA, so each timed run waits for its work."""
    from bridge.bench import timing
    calls = []
    monkeypatch.setattr(torch.mps, "synchronize", lambda: calls.append("mps"))
    timing._sync(torch.device("mps"))
    timing._sync(torch.device("cpu"))
    assert calls == ["mps"]


def test_presses_replay_the_warmed_graph_without_a_compile(monkeypatch):
    """The graph compiled at warm-up must be the one a press replays: the engine's x comes from inside inference
    mode (the warm-up's did not, a guard mismatch: another compile of minutes at the first press), its t from one
    number or one a row, its batch smaller than the warmed one. dynamo itself here (the eager backend), counting
    graphs."""
    import torch._dynamo

    graphs = []

    def count(graph, inputs):
        graphs.append(graph)
        return graph.forward

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile",
                        lambda module, mode, **options: real_compile(module, backend=count, **options))
    with monkeypatch.context() as fake:  # only while building: dynamo believing in CUDA would look for it
        _fake_cuda(fake)
        network = cuda.CompiledCudaNetwork(_small(), torch.float32)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    torch._dynamo.reset()
    try:
        network.warm_up([(3, 32)])
        assert len(graphs) == 1 and not network.failed
        for inference in (False, True):
            with torch.inference_mode(inference):
                x, one, each = torch.randn(3, 2, 32), torch.rand(()), torch.rand(3)
            with torch.inference_mode():
                for t in (one, one.reshape(1), each):
                    network(x, t)
                    network(x[:2], t if t is not each else t[:2])
        assert len(graphs) == 1 and not network.failed
    finally:
        torch._dynamo.reset()
