"""Peak resident memory of one variation on the CPU, against bridge.engine.memory's estimate: how the figures in
that module's docstring were measured.

    python -m bridge.bench.memory MODEL SECONDS [SAMPLER]
"""

from __future__ import annotations

import resource
import sys

import torch

from bridge.engine.engine import Engine
from bridge.engine.memory import bytes_per_sample, gib, host_free_bytes


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def measure(argv: list[str]) -> None:
    """MODEL SECONDS [SAMPLER]: one variation of that many seconds of silence, 2 steps."""
    engine = Engine(argv[0], device="cpu")
    length = int(float(argv[1]) * engine.sample_rate)
    before = _peak_rss()
    engine.vary(torch.zeros(2, length), 1, noise=0.5, steps=2, sampler=argv[2] if len(argv) > 2 else "v-iplms",
                seed=1)
    peak = _peak_rss()
    padded = engine.padded_length(length)
    print(f"{engine.card.name}: {argv[1]} s, peak {gib(peak)} ({(peak - before) / padded:.0f} bytes per sample over "
          f"the loaded model; estimated {bytes_per_sample(engine.card.architecture.channels):.0f}); the longest clip "
          f"with the {gib(host_free_bytes())} free now: {engine.longest_length() / engine.sample_rate:.1f} s")


if __name__ == "__main__":
    measure(sys.argv[1:])
