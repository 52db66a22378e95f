"""Which device the model runs on and in which precision, from the names users type."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from bridge.constants import DEFAULT_PRECISION, DEVICES, PRECISIONS
from bridge.errors import ConfigError

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
assert tuple(DTYPES) == PRECISIONS  # the names are offered in constants; every one has its dtype here


def _mps_available() -> bool:
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` takes the fastest present: an NVIDIA GPU, then Apple silicon, then the CPU."""
    if name not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build of PyTorch" if torch.version.cuda is None else "no usable NVIDIA GPU"
        raise ConfigError(f"device cuda asked for, but this machine has {build}; use --device auto or cpu")
    if name == "mps" and not _mps_available():
        raise ConfigError("device mps asked for, but Apple's Metal backend is not available here; "
                          "use --device auto or cpu")
    return torch.device(name)


def pick_dtype(name: str = DEFAULT_PRECISION) -> torch.dtype:
    if name not in DTYPES:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    return DTYPES[name]


def hardware(device: torch.device) -> str:
    """What ``device`` is, for model cards and benchmark headers: the GPU's name, or the CPU's model and the
    threads torch uses on it."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads"


def made_on(device: torch.device) -> dict:
    """What a file's recreating command must name to render the same bytes as the render that made it, on
    ``device`` (called in the thread that rendered, whose torch thread count is the one used): on the CPU, the
    device and the thread count, {} elsewhere (``auto`` takes the GPU there is, and a command naming cuda would
    fail on a machine without one).

    Why: torch's CPU kernels split their sums by thread (and one thread takes bridge.engine.backends.cpu's
    Winograd convolutions), so 1 and 2 threads differ in the last bits; a plain render then differs 77-106 dB
    under its peak, but a guided one (a class, a decay target) can come out another sound: each step's
    classifier gradient on a blurred estimate turns those bits into a different edit (docs/guidance.md, "The
    same sound again")."""
    return {"device": "cpu", "threads": torch.get_num_threads()} if device.type == "cpu" else {}
