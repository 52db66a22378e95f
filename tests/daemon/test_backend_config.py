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
