"""The onnx backend's tests share one tiny network exported once (the export is the slow part)."""

from __future__ import annotations

import pytest
import torch

from bridge.engine.backends import onnx as onnx_backend
from bridge.engine.checkpoints import LoadedModel
from bridge.engine.unet import DanceDiffusionUNet
from tests.conftest import TINY


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(loaded, network, path): one tiny network exported once, into a cache folder of its own."""
    pytest.importorskip("onnxruntime")
    torch.manual_seed(3)
    network = DanceDiffusionUNet(TINY).eval()
    loaded = LoadedModel.from_network(network, name="tiny", sample_rate=48000, window=64)
    folder = tmp_path_factory.mktemp("onnx-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(onnx_backend, "cache_dir", lambda: folder)
        path = onnx_backend.cached_export(loaded, model=network)
    assert path.parent == folder
    return loaded, network, path
