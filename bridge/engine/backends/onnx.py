"""The onnx backend: the U-Net as an ONNX file, run by ONNX Runtime behind the same call as the torch network:
``model(x, t) -> v``.

The export has a dynamic batch and a dynamic length (any multiple of the architecture's length multiple), and
carries the weights' SHA-256 in its metadata, so a cached export is only ever used with the weights it came from.
On CUDA the session takes TensorRT where onnxruntime-gpu has it, else the CUDA provider, and binds torch's own
device buffers (I/O binding): no copy through the host between steps. onnxruntime-gpu lists both providers even
where their libraries are missing (no TensorRT, a cuDNN of another major version) and then falls back, printing
its own banner on stdout: the session is made with stdout sent to the log, and the providers it really got are
checked (OnnxModel.precision: fp16 and bf16 only where TensorRT runs; a CUDA session the CPU took over is refused).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import platformdirs
import torch

from bridge import constants, files
from bridge.constants import MIN_LENGTH_MULTIPLES
from bridge.engine.checkpoints import LoadedModel
from bridge.errors import BridgeError, CheckpointError, ConfigError, described

log = logging.getLogger(__name__)

OPSET = 18
WEIGHTS_KEY = "dd_bridge.weights_sha256"
MAX_BATCH = 1024
MAX_LENGTH_MULTIPLES = 2**16  # lengths up to 65536 x the length multiple: far past any window


def cache_dir() -> Path:
    """Where exports made on demand for ``--backend onnx`` are kept, one per set of weights."""
    return Path(platformdirs.user_cache_dir("dd-bridge")) / "onnx"


def export_onnx(loaded: LoadedModel, path: str | os.PathLike, *, model: torch.nn.Module | None = None) -> Path:
    """Writes the float32 network of ``loaded`` to a new ONNX file ``path`` (never replacing one) and returns it.

    ``model``: the network already built from ``loaded`` (saves building it twice); float32, on the CPU.
    """
    path = Path(path).expanduser()
    files.check_new(path, CheckpointError)
    model = loaded.build() if model is None else model
    multiple = loaded.architecture.length_multiple
    x = torch.zeros(1, loaded.architecture.io_channels, loaded.architecture.shortest_length)
    t = torch.zeros(1)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    # Length as a multiple of `multiple`, so the exporter can prove every halving is exact.
    blocks = torch.export.Dim("blocks", min=MIN_LENGTH_MULTIPLES, max=MAX_LENGTH_MULTIPLES)
    log.info("exporting %s to ONNX (%d parameters); this takes a while for the full-size model",
             loaded.name, loaded.num_parameters)
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model.eval(), (x, t), dynamo=True, opset_version=OPSET, verbose=False,
                                    input_names=["x", "t"], output_names=["v"], optimize=True,
                                    dynamic_shapes=({0: batch, 2: multiple * blocks}, {0: batch}))
    proto = program.model_proto
    for key, value in {WEIGHTS_KEY: loaded.sha256, "dd_bridge.model": loaded.name,
                       "dd_bridge.sample_rate": str(loaded.sample_rate), "dd_bridge.window": str(loaded.window),
                       "dd_bridge.length_multiple": str(multiple)}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    files.create_new(path, proto.SerializeToString(), CheckpointError)
    return path


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter prints its progress on stdout, where the CLI keeps only result paths: send it to the log."""
    # Its optimizer logs every initializer it merges, its registry every torchvision op it skips: nothing a
    # producer can act on.
    loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir", "torch.onnx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logging.ERROR, logger.getEffectiveLevel()))
    try:
        with _printed_to_log(logging.DEBUG):
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextlib.contextmanager
def _printed_to_log(level: int):
    """What is printed on stdout meanwhile goes to the log at ``level`` instead, line by line (the CLI's stdout
    carries the written files' paths and nothing else); lines of decoration alone (ORT's asterisks) are left out."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            yield
    finally:
        for line in printed.getvalue().splitlines():
            if line.strip(" *"):
                log.log(level, "%s", line.strip())


def cached_export(loaded: LoadedModel, model: torch.nn.Module | None = None) -> Path:
    """The ONNX file for these weights in the cache, exported on first use."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{loaded.name}-{loaded.sha256[:16]}.onnx"
    if not path.exists():
        try:
            export_onnx(loaded, path, model=model)
        except CheckpointError:
            if not path.exists():  # another process finishing the same export first is fine
                raise
    return path


def _providers(device: torch.device, precision: str, available: list[str], cache: Path) -> list:
    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    if device.type != "cuda":
        raise ConfigError(f"the onnx backend runs on cpu or cuda, not {device.type}; use --backend torch")
    if "CUDAExecutionProvider" not in available:
        raise ConfigError("this onnxruntime has no CUDA provider (install onnxruntime-gpu) or use --backend torch")
    index = device.index if device.index is not None else torch.cuda.current_device()
    providers: list = []
    if "TensorrtExecutionProvider" in available:
        providers.append(("TensorrtExecutionProvider", {
            "device_id": index, "trt_fp16_enable": precision == "fp16", "trt_bf16_enable": precision == "bf16",
            "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache / "tensorrt")}))
    providers.append(("CUDAExecutionProvider", {"device_id": index}))
    providers.append("CPUExecutionProvider")
    return providers


GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def _precision_used(device: torch.device, precision: str, used: list[str]) -> str:
    """The precision a session with the providers ``used`` (its get_providers(), after any fallback) runs at:
    ``precision`` where TensorRT runs it, else fp32 (only TensorRT is given the half flags; the CUDA and CPU
    providers run the float32 export as it is), said in one log line. ConfigError where a CUDA session got no
    GPU provider at all: the CPU would run it, slowly, with torch's CUDA buffers bound to it."""
    if device.type == "cuda" and not any(provider in used for provider in GPU_PROVIDERS):
        raise ConfigError(f"onnxruntime could not start its CUDA provider (a missing or mismatched CUDA or cuDNN "
                          f"library; the session fell back to {', '.join(used) or 'nothing'}): use --backend torch")
    if precision != "fp32" and "TensorrtExecutionProvider" not in used:
        where = "TensorRT, which onnxruntime could not use here" if device.type == "cuda" else "TensorRT on a GPU"
        log.warning("%s on the onnx backend needs %s: running fp32", precision, where)
        return "fp32"
    return precision


class OnnxModel:
    """An ONNX Runtime session with the network's call: ``model(x, t) -> v``, torch tensors in and out.

    ``x`` and ``v`` stay on ``device``. ``weights_sha256``, when given, must match the export's metadata.
    """

    def __init__(self, path: str | os.PathLike, device: torch.device | str = "cpu", precision: str = "fp32",
                 weights_sha256: str | None = None):
        try:
            import onnxruntime
        except ImportError:
            raise ConfigError(f"the onnx backend needs onnxruntime: {constants.install_command('cpu')} (or "
                              "'.[gpu]' on a CUDA machine), or use --backend torch") from None
        self.path = Path(path)
        self.device = torch.device(device)
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if self.device.type == "cpu":
            options.intra_op_num_threads = torch.get_num_threads()
        providers = _providers(self.device, precision, onnxruntime.get_available_providers(), self.path.parent)
        try:
            # A provider that fails to start is printed on stdout ("EP Error ... Falling back"): to the log.
            with _printed_to_log(logging.WARNING):
                self.session = onnxruntime.InferenceSession(str(self.path), options, providers=providers)
        except Exception as error:  # onnxruntime raises its own exception types, one per failure kind
            raise CheckpointError(f"{self.path}: not a usable ONNX model ({described(error)})") from None
        metadata = self.session.get_modelmeta().custom_metadata_map
        if weights_sha256 is not None and metadata.get(WEIGHTS_KEY) != weights_sha256:
            raise CheckpointError(f"{self.path}: exported from other weights than the model loaded")
        inputs = [arg.name for arg in self.session.get_inputs()]
        if inputs != ["x", "t"]:
            raise CheckpointError(f"{self.path}: inputs {inputs}, expected a DD Bridge export with inputs x, t")
        self.providers = self.session.get_providers()  # what it runs with, after any fallback
        self.precision = _precision_used(self.device, precision, self.providers)  # Engine.precision: the file's
        self._binding = self.session.io_binding() if self.device.type == "cuda" else None
        log.debug("onnxruntime session on %s with %s", self.device, ", ".join(self.providers))

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, torch.float32).contiguous()
        t = t.to(self.device, torch.float32).reshape(-1).expand(x.shape[0]).contiguous()
        if self._binding is None:
            (v,) = self.session.run(["v"], {"x": x.numpy(), "t": t.numpy()})
            return torch.from_numpy(v)
        return self._run_bound(x, t)

    def _run_bound(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v = torch.empty_like(x)
        index = self.device.index if self.device.index is not None else torch.cuda.current_device()
        binding = self._binding
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        for name, tensor in (("x", x), ("t", t)):
            binding.bind_input(name, "cuda", index, np.float32, list(tensor.shape), tensor.data_ptr())
        binding.bind_output("v", "cuda", index, np.float32, list(v.shape), v.data_ptr())
        # ONNX Runtime runs on its own stream: wait for torch's work on the inputs, and make torch wait for v.
        torch.cuda.current_stream(self.device).synchronize()
        self.session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return v


def load_network(loaded: LoadedModel, device: torch.device | str = "cpu", precision: str = "fp32",
                 model: torch.nn.Module | None = None) -> OnnxModel:
    """The onnx backend for ``loaded``: its cached export (made now if missing) in an ONNX Runtime session."""
    try:
        path = cached_export(loaded, model=model)
    except BridgeError:
        raise
    except Exception as error:  # the exporter's many failure types: one line for the user
        raise CheckpointError(f"{loaded.name}: ONNX export failed ({described(error)})") from None
    return OnnxModel(path, device=device, precision=precision, weights_sha256=loaded.sha256)
