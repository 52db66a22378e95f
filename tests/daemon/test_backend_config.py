"""The service's backend choice: the config key and the serve flag."""

import pytest
import yaml

from bridge.cli import build_parser
from bridge.daemon.config import DEFAULT_YAML, parse_config
from bridge.errors import ConfigError


def test_backend_defaults_to_torch_and_reads_onnx():
    assert parse_config(yaml.safe_load(DEFAULT_YAML)).backend == "torch"
    assert parse_config({"backend": "onnx"}).backend == "onnx"
    assert parse_config({"backend": "onnx"}).with_overrides(backend="torch").backend == "torch"


def test_unknown_backend_is_one_clear_error():
    with pytest.raises(ConfigError, match="backend must be one of torch, onnx"):
        parse_config({"backend": "tensorflow"})


def test_serve_takes_backend():
    args = build_parser().parse_args(["serve", "--backend", "onnx"])
    assert args.backend == "onnx"


def test_a_file_the_service_renders_with_onnx_names_the_backend_in_its_command():
    """onnx and torch differ in the last bits: a file's recreating command must name --backend onnx to make the
    same bytes again (review s41 F8: packs and the CLI named it, the service did not)."""
    from bridge.daemon.renderer import Made, ModelInfo

    def made(backend: str) -> dict:
        info = ModelInfo(name="m", reference="m", hash="0" * 64, device="cpu", precision="fp32", sample_rate=48000,
                         window=65536, parameters=1, recreatable=True, backend=backend)
        return Made(info, "cheap", ()).metadata("vary", ["/k.wav"], {"seed": 1, "noise": 0.5})

    assert "--backend onnx" in made("onnx")["command"] and made("onnx")["backend"] == "onnx"
    assert "--backend" not in made("torch")["command"] and "backend" not in made("torch")
