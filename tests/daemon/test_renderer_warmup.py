"""The service's warm-up (CUDA: torch.compile and CUDA graphs): the shapes a default press runs at, warmed on the
render thread (the thread that replays the graphs) before the service says it is ready, and for a new model before
it takes a press. The CUDA network is the CPU stand-in of tests/engine/backends/test_cuda.py."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest
import torch

from bridge.daemon.renderer import Renderer, warm_shapes
from bridge.engine import engine as engine_module
from bridge.engine.audio import Clip
from bridge.engine.backends import cuda
from bridge.engine.checkpoints import LoadedModel, save_model
from bridge.engine.unet import DanceDiffusionUNet, UNetConfig
from tests.support.service import micro_model, running_service, service_config


class _Graph:
    """Stands in for the compiled graph: records the shapes it runs, answers as the module does."""

    def __init__(self, module):
        self.module, self.shapes = module, []

    def __call__(self, x, t):
        self.shapes.append((x.shape[0], x.shape[2]))
        return self.module(x, t)


def test_the_warmed_shapes_are_those_of_default_presses(monkeypatch):
    """A new sound of the window (generate's default) and variations of a window-long clip and of a short one-shot
    all run on warmed shapes, at the GPU's batch rule (the silence before and after a finished render included:
    the one shape warmed before ran almost no press)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(engine_module, "GPU_BATCH_SAMPLES", 4 * 9216)  # a small GPU: batches of 4 windows here
    monkeypatch.setattr(engine_module, "batch_size", lambda device, padded, share=1.0: max(
        1, int(engine_module.GPU_BATCH_SAMPLES * share) // padded))
    torch.manual_seed(0)  # the micro model's layout, deep enough for the bundled model's length multiple (1024 here)
    deep = LoadedModel.from_network(DanceDiffusionUNet(UNetConfig(channels=(8,) * 11, n_attn_layers=0)), name="deep",
                                    sample_rate=48000, window=8192, provenance="random weights made by the tests")
    renderer = Renderer(deep, "deep", device="cpu")
    engine = renderer.engine
    network = cuda.CompiledCudaNetwork(engine._module, torch.float32, compile=False)
    engine.network = network
    renderer.warm_up()
    shapes = warm_shapes(engine)
    assert network.warmed == set(shapes) and [n for _, n in shapes] == [3072, 9216]  # 0.2 s runs at 1.5 windows
    assert renderer.batch_size == engine.batch_size(shapes[-1][1])
    graph = network.compiled = _Graph(network.module)
    calls = []
    engine.network = lambda x, t: calls.append((x.shape[0], x.shape[2])) or network(x, t)
    rate = engine.sample_rate
    renderer.generate([1], None, steps=2)
    renderer.generate([1, 2, 3], None, steps=2)
    window = Clip(np.random.default_rng(0).standard_normal((engine.window, 2)).astype(np.float32) * 0.1, rate)
    renderer.vary(window, [4, 5], noise=0.5, steps=2)
    short = Clip(np.random.default_rng(1).standard_normal((1000, 1)).astype(np.float32) * 0.1, 44100)
    renderer.vary(short, [6], noise=0.5, steps=2)
    assert calls and len(graph.shapes) == len(calls)  # every call on a compiled graph, none eager
    assert set(graph.shapes) <= set(shapes) and {n for _, n in graph.shapes} == {n for _, n in shapes}


def test_the_warm_up_runs_on_the_render_thread_before_the_service_is_ready(tmp_path, renderer, drum, monkeypatch):
    """CUDA graphs belong to the thread that records them: warmed on the thread that built the service, the render
    thread recorded them again at the first press. Ready (the port answering) still means warm."""
    seen = []

    def warm_up(self):
        time.sleep(0.3)
        seen.append((threading.current_thread().name, self.info.name))

    monkeypatch.setattr(Renderer, "warm_up", warm_up)
    (tmp_path / "models").mkdir()
    weights, _card = save_model(micro_model(seed=5), tmp_path / "models" / "other")
    with running_service(service_config(tmp_path, device="cpu"), renderer) as svc:
        assert seen == [("render", "micro")]
        assert svc.ask("/dd/set", "model", str(weights)).args == ("set", "model", str(weights))
        assert seen == [("render", "micro"), ("render", "other")]  # the new model warmed before it answers


def test_a_failed_warm_up_is_said_and_the_service_renders(tmp_path, renderer, monkeypatch, caplog):
    def warm_up(self):
        raise RuntimeError("no CUDA graph today\nand a long story")

    monkeypatch.setattr(Renderer, "warm_up", warm_up)
    with caplog.at_level(logging.WARNING), running_service(service_config(tmp_path), renderer) as svc:
        reply = svc.ask("/dd/generate", 1, 0.25, "seed=3")
        assert reply.address != "/dd/error", reply.args
    assert any("warm-up failed" in r.getMessage() and "long story" not in r.getMessage() for r in caplog.records)


def test_a_stop_during_the_warm_up_ends_the_service_without_waiting_for_it(tmp_path, renderer, monkeypatch):
    """Ctrl-C or a service manager's SIGTERM while the render thread compiles (minutes a shape on a GPU): the
    service stops, never says it is ready, and opens no port to requests (before: the stop waited for the whole
    warm-up, then the service said it was ready, then it stopped)."""
    from bridge.daemon.app import App

    release = threading.Event()
    monkeypatch.setattr(Renderer, "warm_up", lambda self: release.wait(30))
    app = App(service_config(tmp_path), renderer)
    stopping = threading.Event()
    threading.Timer(0.3, stopping.set).start()
    started = time.monotonic()
    assert app._start(stopping) is False
    assert time.monotonic() - started < 5 and app.door._thread is None  # no requests taken
    release.set()
    app.stop()
