"""The onnx backend checks the providers its session really got (the GPU review, /work/s43, finding 5).

onnxruntime-gpu lists TensorRT and CUDA as available even where their libraries are missing or of another major
version; the session then falls back (to CUDA without TensorRT's fp16, or to the CPU), and onnxruntime's Python
wrapper prints an "EP Error ... Falling back" banner on stdout, the stream where the CLI writes only the paths of
its files. Simulated here as the review did (r1/onnx_fallback.py): onnxruntime told CUDA and TensorRT are
available, and the session's get_providers() answering what a fallback leaves.
"""

from __future__ import annotations

import logging

import pytest
import torch

from bridge.engine.backends import onnx as onnx_backend
from bridge.engine.engine import Engine
from bridge.errors import ConfigError

onnxruntime = pytest.importorskip("onnxruntime")

pytestmark = [pytest.mark.usefixtures("one_thread"),
              # this CPU build's answer to being asked for the GPU providers it was told it has
              pytest.mark.filterwarnings("ignore:Specified provider:UserWarning")]

BANNER = ("*************** EP Error ***************\n"
          "EP Error /onnxruntime/core/providers/tensorrt/tensorrt_execution_provider.h:121 "
          "libnvinfer.so.10: cannot open shared object file when using ['TensorrtExecutionProvider', "
          "'CUDAExecutionProvider', 'CPUExecutionProvider']\n"
          "Falling back to ['CUDAExecutionProvider', 'CPUExecutionProvider'] and retrying.\n"
          "****************************************")


@pytest.fixture
def gpu_runtime(monkeypatch):
    """onnxruntime as onnxruntime-gpu reports itself: TensorRT and CUDA listed; torch's current device 0."""
    real = onnxruntime.get_available_providers()
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", *real])
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


def falling_back(monkeypatch, providers: list[str] | None, banner: str | None = BANNER):
    """Sessions made from now on print ``banner`` as onnxruntime's wrapper does when a provider fails to start,
    and report ``providers`` (None: what this CPU build really gives)."""
    real = onnxruntime.InferenceSession

    def session(*args, **kwargs):
        if banner is not None:
            print(banner)
        made = real(*args, **kwargs)
        if providers is not None:
            made.get_providers = lambda: list(providers)
        return made
    monkeypatch.setattr(onnxruntime, "InferenceSession", session)


def test_a_cuda_session_the_cpu_took_over_is_refused_in_one_line(exported, gpu_runtime, monkeypatch, capsys):
    loaded, _, path = exported
    falling_back(monkeypatch, None, banner=None)  # this build: CPU only, what a cuDNN mismatch leaves
    with pytest.raises(ConfigError) as caught:
        onnx_backend.OnnxModel(path, device="cuda", precision="fp16", weights_sha256=loaded.sha256)
    message = str(caught.value)
    assert "\n" not in message
    assert "could not start its CUDA provider" in message and "CPUExecutionProvider" in message
    assert message.endswith("use --backend torch")
    assert capsys.readouterr().out == ""


def test_the_fallback_banner_goes_to_the_log_not_stdout(exported, gpu_runtime, monkeypatch, capsys, caplog):
    """TensorRT missing, CUDA there: the session runs, its banner is in the log, stdout stays empty."""
    loaded, _, path = exported
    falling_back(monkeypatch, ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with caplog.at_level(logging.WARNING, logger=onnx_backend.__name__):
        model = onnx_backend.OnnxModel(path, device="cuda", precision="fp32", weights_sha256=loaded.sha256)
    assert capsys.readouterr().out == ""
    assert any("Falling back to ['CUDAExecutionProvider'" in record.getMessage() for record in caplog.records)
    assert not any(set(record.getMessage()) <= {"*", " "} for record in caplog.records)  # no rows of asterisks
    assert model.providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert model.precision == "fp32" and model._binding is not None


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_without_tensorrt_says_so_and_records_fp32(exported, gpu_runtime, monkeypatch, capsys,
                                                                  caplog, precision):
    loaded, _, path = exported
    falling_back(monkeypatch, ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with caplog.at_level(logging.WARNING, logger=onnx_backend.__name__):
        model = onnx_backend.OnnxModel(path, device="cuda", precision=precision, weights_sha256=loaded.sha256)
    assert model.precision == "fp32"
    said = [record.getMessage() for record in caplog.records if "running fp32" in record.getMessage()]
    assert said == [f"{precision} on the onnx backend needs TensorRT, which onnxruntime could not use here: "
                    "running fp32"]
    assert capsys.readouterr().out == ""


def test_tensorrt_in_use_keeps_the_precision_asked(exported, gpu_runtime, monkeypatch, caplog):
    loaded, _, path = exported
    falling_back(monkeypatch, ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
                 banner=None)
    with caplog.at_level(logging.WARNING, logger=onnx_backend.__name__):
        model = onnx_backend.OnnxModel(path, device="cuda", precision="fp16", weights_sha256=loaded.sha256)
    assert model.precision == "fp16"
    assert not [record for record in caplog.records if "running fp32" in record.getMessage()]


def test_the_precision_rule():
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    trt = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_backend._precision_used(cuda, "bf16", trt) == "bf16"
    assert onnx_backend._precision_used(cuda, "fp16", trt[1:]) == "fp32"
    assert onnx_backend._precision_used(cuda, "fp32", trt[1:]) == "fp32"
    assert onnx_backend._precision_used(cuda, "fp32", ["TensorrtExecutionProvider"]) == "fp32"
    assert onnx_backend._precision_used(cpu, "fp16", ["CPUExecutionProvider"]) == "fp32"
    with pytest.raises(ConfigError, match="--backend torch"):
        onnx_backend._precision_used(cuda, "fp32", ["CPUExecutionProvider"])


def test_the_engine_reports_the_precision_the_session_runs(exported, monkeypatch):
    """What a file's metadata and status take from Engine.precision: fp16 asked of the onnx backend on the CPU
    runs (and so is recorded as) fp32; the torch backend's is the one asked."""
    loaded, _, path = exported
    monkeypatch.setattr(onnx_backend, "cache_dir", lambda: path.parent)
    assert Engine(loaded, device="cpu", precision="fp16", backend="onnx").precision == "fp32"
    assert Engine(loaded, device="cpu", precision="fp32", backend="onnx").precision == "fp32"
    assert Engine(loaded, device="cpu", precision="bf16", backend="torch").precision == "bf16"


def test_a_files_recipe_and_command_say_the_precision_it_ran_at(tiny_model_path, tmp_path, capsys):
    """`generate --backend onnx --precision fp16` where onnxruntime cannot run fp16 (no TensorRT; the CPU here): the
    file says fp32, so its recreating command makes these bytes again."""
    from bridge.cli import main
    from bridge.engine.audio import read_metadata

    assert main(["generate", "--model", str(tiny_model_path), "--backend", "onnx", "--precision", "fp16",
                 "--device", "cpu", "--steps", "2", "--seconds", "0.1", "--count", "1", "--out", str(tmp_path)]) == 0
    metadata = read_metadata(capsys.readouterr().out.strip())
    assert metadata["precision"] == "fp32" and "--precision fp32" in metadata["command"]
