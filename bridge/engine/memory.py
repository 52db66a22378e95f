"""How much memory a render needs, how much there is, and so the longest clip a model renders here.

The U-Net is convolutional and takes any length, at a memory cost that grows linearly with it (attention runs
through scaled_dot_product_attention, whose kernels do not hold the length-squared matrix). One request longer
than the memory allows would get the service killed with no reply, so every render is checked first, after
resampling and before any work, against what is free now: the machine's available memory, and the limits a
cgroup (a container, a service manager) or setrlimit puts on this process; on a GPU, its free memory.

The cost per sample is an estimate from the architecture, fitted with room to spare to peak resident memory
measured on the CPU with `python -m bridge.bench.memory MODEL SECONDS`:
``4 bytes x (FIXED_CHANNELS + ACTIVATION_FACTOR x sum over levels of channels / 2**(level - 1))`` per sample of
padded length and per output in a batch. Measured peaks (bytes per sample, 5 to 40 s clips): the bundled
dd-drums-small 450 to 1240, against 1250 estimated; the service's stand-in 540 against 1270; the full 221
M-parameter model 2400 against 3140. Only USABLE_FRACTION of the free memory is planned for, the rest is margin.

The full guide mode (bridge.engine.guidance: a loss's gradient taken back through the U-Net at every guided step,
what ``--guide-mode auto`` picks on CUDA with the torch backend) keeps every layer's activations for the backward
pass, so the activation term grows from ACTIVATION_FACTOR to FULL_ACTIVATION_FACTOR (``bytes_per_sample(...,
full=True)``): 7.5 times the inference estimate for the bundled model, 25 times for the full one. Measured as the
peak resident memory of one such call on the CPU (one process per model and length L, a multiple of 8192)::

    OMP_NUM_THREADS=1 python - <<'EOF'
    import resource, torch; from bridge.engine.checkpoints import load_model; from bridge.engine.unet import *
    torch.set_num_threads(1); L = 8192 * 48
    m = load_model("dd-drums-small").build().eval()  # or DanceDiffusionUNet(UNetConfig()) for the full model
    x = (0.3 * torch.randn(1, 2, L)).requires_grad_(True); peak = lambda: resource.getrusage(0).ru_maxrss * 1024
    before = peak(); v = m(x, torch.full((1,), 0.5))
    torch.autograd.grad(((0.9 * x - 0.4 * v) ** 2).sum(), x); print((peak() - before) / L, "bytes/sample")
    EOF

The bundled model at 131072 / 393216 / 786432 samples: 7117 / 7391 / 7917 bytes per sample (one forward under
``torch.inference_mode()`` instead: 538 / 606 / 822); the full 221 M-parameter model at 131072 / 262144: 60693 /
60038 (4485 / 3224). That is 42 to 47 bytes per weighted channel and sample: FULL_ACTIVATION_FACTOR 56 estimates
9309 and 79858 bytes per sample, 18 and 32 % above the peaks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

try:
    import resource  # POSIX only: Windows has no rlimits to weigh
except ImportError:
    resource = None

if TYPE_CHECKING:
    import torch

FLOAT_BYTES = 4
FIXED_CHANNELS = 256  # level-one inputs (audio + 16 timestep features), the sampler's history, the noise
ACTIVATION_FACTOR = 1.5  # live activations per channel and sample of each level, skips included
FULL_ACTIVATION_FACTOR = 56.0  # the same, for the full guide mode: every layer's activations kept for the backward
OUTPUT_BYTES = 16  # per output and sample, on the host: the result at the model's rate and back at the clip's
USABLE_FRACTION = 0.8  # of what is free: allocator slack, the resampler, other threads


def bytes_per_sample(channels: tuple[int, ...], *, full: bool = False) -> float:
    """Estimated peak memory of one output's render per sample of its padded length; ``full``: with a guide in
    the full mode, whose backward pass through the network keeps every activation."""
    weighted = sum(c / 2 ** level for level, c in enumerate(channels))
    return FLOAT_BYTES * (FIXED_CHANNELS + (FULL_ACTIVATION_FACTOR if full else ACTIVATION_FACTOR) * weighted)


def free_bytes(device: "torch.device") -> int:
    """Memory this process may still take on device: a GPU's free memory, or for the CPU the smallest of the
    machine's available memory, the cgroup's headroom and the setrlimit headroom."""
    if device.type in ("cuda", "mps"):
        import torch  # here: reading the host's memory (a long file's decode, playback's) must not load torch
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type == "mps":
        return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
    return host_free_bytes()


def host_free_bytes() -> int:
    candidates = [_available_memory(), _cgroup_headroom(), _rlimit_headroom()]
    return min(value for value in candidates if value is not None)


def _available_memory() -> int:
    meminfo = _read("/proc/meminfo")
    found = re.search(r"^MemAvailable:\s+(\d+) kB", meminfo or "", re.MULTILINE)
    if found:
        return int(found.group(1)) * 1024
    try:  # macOS and other systems without /proc: half the physical memory, a guess on the safe side
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _cgroup_headroom() -> int | None:
    """limit - usage of this process's memory cgroup (v2, else v1); None where there is none."""
    text = _read("/proc/self/cgroup")
    if not text:
        return None
    for line in text.splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0":  # v2
            base = Path("/sys/fs/cgroup") / path.lstrip("/")
            limit, usage = _read(base / "memory.max"), _read(base / "memory.current")
        elif "memory" in controllers.split(","):
            base = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            limit, usage = _read(base / "memory.limit_in_bytes"), _read(base / "memory.usage_in_bytes")
        else:
            continue
        if limit and usage and limit.strip().isdigit() and int(limit) < 1 << 60:
            return max(0, int(limit) - int(usage))
    return None


def _rlimit_headroom() -> int | None:
    """What setrlimit still allows: the address-space and data limits less what this process already has."""
    if resource is None:
        return None
    status = _read("/proc/self/status") or ""
    headroom = []
    for limit_kind, field in ((resource.RLIMIT_AS, "VmSize"), (getattr(resource, "RLIMIT_DATA", None), "VmData")):
        if limit_kind is None:
            continue
        soft, _ = resource.getrlimit(limit_kind)
        found = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
        if soft != resource.RLIM_INFINITY and found:
            headroom.append(max(0, soft - int(found.group(1)) * 1024))
    return min(headroom, default=None)


def _read(path) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def gib(count: float) -> str:
    return f"{count / (1 << 30):.1f} GiB"
