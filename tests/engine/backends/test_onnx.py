"""ONNX export and the ONNX Runtime backend: parity with the torch path, dynamic batch and length, safety."""

from __future__ import annotations

import pytest
import torch

from bridge.engine.backends import onnx as onnx_backend
from bridge.engine.engine import Engine
from bridge.errors import CheckpointError, ConfigError


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def cache(exported, monkeypatch):
    monkeypatch.setattr(onnx_backend, "cache_dir", lambda: exported[2].parent)


@torch.inference_mode()
def test_parity_with_torch_at_any_batch_and_length(exported):
    loaded, network, path = exported
    model = onnx_backend.OnnxModel(path, weights_sha256=loaded.sha256)
    multiple = loaded.architecture.length_multiple
    # Neither the batch nor the length of the export's example (1 x 3 multiples): both are really dynamic.
    for batch, length in ((2, 4 * multiple), (5, 3 * multiple), (1, 100 * multiple)):
        x, t = torch.randn(batch, 2, length), torch.rand(batch)
        v = model(x, t)
        assert v.shape == x.shape and v.dtype == torch.float32
        # The bound the backend promises is 1e-3; on this network it is float32 rounding, ~1e-6.
        assert (v - network(x, t)).abs().max() <= 1e-4


def test_export_records_its_weights_and_never_overwrites(exported, tmp_path):
    loaded, _, path = exported
    import onnx

    metadata = {entry.key: entry.value for entry in onnx.load(str(path), load_external_data=False).metadata_props}
    assert metadata[onnx_backend.WEIGHTS_KEY] == loaded.sha256
    assert metadata["dd_bridge.window"] == "64"
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="already exists"):
        onnx_backend.export_onnx(loaded, path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_an_export_of_other_weights_is_refused(exported):
    _, _, path = exported
    with pytest.raises(CheckpointError, match="other weights"):
        onnx_backend.OnnxModel(path, weights_sha256="0" * 64)


def test_a_file_that_is_not_onnx_is_one_clear_error(tmp_path):
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"not a protobuf at all")
    with pytest.raises(CheckpointError, match="not a usable ONNX model"):
        onnx_backend.OnnxModel(bogus)


def test_gpu_providers_prefer_tensorrt_then_cuda(tmp_path):
    available = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    providers = onnx_backend._providers(torch.device("cuda", 1), "fp16", available, tmp_path)
    names = [p[0] if isinstance(p, tuple) else p for p in providers]
    assert names == available
    assert providers[0][1]["device_id"] == 1 and providers[0][1]["trt_fp16_enable"] is True
    assert onnx_backend._providers(torch.device("cpu"), "fp32", available, tmp_path) == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match="onnxruntime-gpu"):
        onnx_backend._providers(torch.device("cuda", 0), "fp32", ["CPUExecutionProvider"], tmp_path)


def test_engine_renders_the_same_with_either_backend(exported, cache):
    loaded, _, _ = exported
    torch_engine = Engine(loaded, device="cpu", backend="torch")
    onnx_engine = Engine(loaded, device="cpu", backend="onnx")
    assert isinstance(onnx_engine.network, onnx_backend.OnnxModel)
    a = torch_engine.generate(2, 128, steps=4, sampler="v-ddim", seed=5)
    b = onnx_engine.generate(2, 128, steps=4, sampler="v-ddim", seed=5)
    assert (a - b).abs().max() < 1e-3
