"""What runs the network for the Engine: a callable ``network(x, t) -> v``, picked by backend name.

``torch`` is the module itself, made fast for the device it is on: ``cpu`` (channels-last, Winograd), ``cuda``
(half weights, torch.compile, CUDA graphs) or, on Apple's MPS, the module under autocast. ``onnx`` is an ONNX
Runtime session on an export of the same weights (``onnx``). The samplers only ever see the callable.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from bridge.constants import BACKENDS
from bridge.engine.backends import cpu, cuda
from bridge.engine.checkpoints import LoadedModel
from bridge.engine.devices import pick_dtype
from bridge.engine.unet import DanceDiffusionUNet
from bridge.errors import ConfigError

Network = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def load_network(backend: str, loaded: LoadedModel, device: torch.device, precision: str,
                 module: DanceDiffusionUNet | None = None) -> Network:
    """The network of ``loaded`` on ``device`` in ``precision`` through ``backend`` (one of BACKENDS).

    ``module``: the network already built from ``loaded`` (training's, which keeps changing in place); the torch
    backend runs it itself, the onnx backend exports it instead of building its own."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "onnx":
        # Imported here: the onnx backend brings its own runtime, which torch renders never need.
        from bridge.engine.backends import onnx
        return onnx.load_network(loaded, device=device, precision=precision, model=module)
    module = loaded.build() if module is None else module
    return fast_network(module.eval().to(device), device, precision)


def fast_network(module: DanceDiffusionUNet, device: torch.device, precision: str = "fp32") -> Network:
    """The fastest way this device runs ``module`` (already on ``device``) in ``precision``: fp32, fp16 or bf16."""
    dtype = pick_dtype(precision)
    if device.type == "cuda":
        return cuda.CompiledCudaNetwork(module, dtype)
    if device.type == "cpu":
        return _autocast(cpu.ChannelsLastUNet(module, winograd=cpu.uses_winograd(dtype)), "cpu", dtype)
    return _autocast(module, device.type, dtype)


def _autocast(module: nn.Module, device_type: str, dtype: torch.dtype) -> Network:
    def network(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(device_type, dtype=dtype, enabled=dtype != torch.float32):
            return module(x, t).float()

    network.module = module
    return network
