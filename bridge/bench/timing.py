"""Timing and measuring for the benchmark tables: rows timed side by side, peak memory, multiply-accumulates,
closeness to a reference render, and the line that says what machine the figures come from."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from bridge.engine.devices import hardware
from bridge.engine.unet import DanceDiffusionUNet, UNetConfig

log = logging.getLogger(__name__)


def _sync(device: torch.device) -> None:
    """Waits for the work queued on ``device``: CUDA and MPS run asynchronously, so a time taken without this
    measures the launches, not the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _rss_kib(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def measure_peak(run: Callable[[], object], device: torch.device) -> tuple[object, float | None]:
    """Runs once; returns its result and the memory it added at its peak, in MiB (None where unknown)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        result = run()
        torch.cuda.synchronize(device)
        return result, (torch.cuda.max_memory_allocated(device) - before) / 2**20
    before = _rss_kib("VmRSS")
    try:  # Linux: writing 5 resets the peak resident set size (VmHWM) to the current one
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        before = None
    result = run()
    peak = _rss_kib("VmHWM")
    return result, None if before is None or peak is None else (peak - before) / 1024


def time_side_by_side(candidates: dict[str, Callable[[], object]], repeats: int, device: torch.device,
                      warm_up: bool = True) -> tuple[dict[str, float], dict[str, float | None], dict[str, object]]:
    """Best seconds per candidate over ``repeats`` interleaved rounds, after one warm-up that also measures peak
    memory and keeps each one's output. Without ``warm_up`` (long runs of warm models) that first run is the
    first timed round."""
    outputs, peaks, best = {}, {}, {}
    for name, run in candidates.items():
        log.info("%s: %s", "warming up" if warm_up else "timing", name)
        _sync(device)
        started = time.perf_counter()
        outputs[name], peaks[name] = measure_peak(run, device)
        _sync(device)  # measure_peak waits on CUDA only
        best[name] = math.inf if warm_up else time.perf_counter() - started
    if not warm_up:
        repeats -= 1
    for round_ in range(repeats):
        for name, run in candidates.items():
            _sync(device)
            started = time.perf_counter()
            run()
            _sync(device)
            best[name] = min(best[name], time.perf_counter() - started)
        log.info("round %d/%d: %s", round_ + 1, repeats, ", ".join(f"{n} {s:.3f}s" for n, s in best.items()))
    return best, peaks, outputs


def forward_gmacs(config: UNetConfig, batch: int, length: int) -> float:
    """Multiply-accumulates of one forward pass, counted on shapes alone (no memory, no time)."""
    with torch.device("meta"):
        model = DanceDiffusionUNet(config)
        x, t = torch.zeros(batch, config.io_channels, length), torch.zeros(batch)
    with FlopCounterMode(display=False) as counter:
        model(x, t)
    return counter.get_total_flops() / 2e9


def snr_db(audio: torch.Tensor, exact: torch.Tensor) -> float:
    error = (audio.float().cpu() - exact.float().cpu()).pow(2).mean()
    return float(10 * torch.log10(exact.float().pow(2).mean() / error.clamp(min=1e-20)))


def machine(device: torch.device) -> str:
    """torch's version and what ``device`` is (bridge.engine.devices.hardware)."""
    return f"torch {torch.__version__}, {hardware(device)}"
