"""Printed benchmark: does RePaint's resampling make the seams of loops, repaints and extensions better?

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python -m tests.engine.bench_resampling loop|repaint|extend [1,2,3]

On the bundled dd-drums-small (CPU), one bar at 120 BPM, 48 kHz, of each held-out kit (tests/support/beat_loops.py,
HELD_OUT_KITS), the grid a quarter beat early so every seam falls in a sounding open hat. For each kit and each U
(--resample) it prints the seam over the local median step (beat_loops.wrap_jump, the loop tests' measure): mean
± standard error and median over the outputs; for loops also the level step over the wrap (dB). The figures and
the defaults they set are in docs/loops.md, "Resampling".

- loop: `vary_loop`, noise 0.5, 6 steps, 4 outputs: the wrap.
- repaint: 0.5-1.0 s new, 8 steps, 4 outputs, both edges with the 5 ms fade taken away: the render's own seam,
  what the fade would otherwise hide (8 values a kit).
- extend: 0.5 s after the loop cut 50 ms into the open hat, 6 steps, 3 outputs: the join.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bridge.engine import clips
from bridge.engine.audio import Clip
from bridge.engine.engine import Engine
from bridge.engine.tempo import Bars
from tests.support.beat_loops import HELD_OUT_KITS, beat_loop, wrap_jump, wrap_level_step

RATE = 48000
SPAN = RATE // 100  # 10 ms either side of a seam


def seam(before: np.ndarray, after: np.ndarray) -> float:
    """The step from ``before``'s last sample to ``after``'s first, measured as a loop's wrap."""
    joined = np.concatenate([before[-SPAN:], after[:SPAN]])
    return wrap_jump(np.roll(joined, -SPAN, axis=0), RATE)


def measure(engine, operation: str, loop: Clip, resample: int) -> tuple[list[float], list[float]]:
    if operation == "loop":
        outs = clips.vary_loop(engine, loop, 4, Bars(1, 120), noise=0.5, steps=6, seed=7, resample=resample)
        return [wrap_jump(o.samples, RATE) for o in outs], [wrap_level_step(o.samples, RATE) for o in outs]
    if operation == "repaint":
        clips.FADE_SECONDS = 0.0  # the render itself at the edges
        outs = clips.repaint_clip(engine, loop, 4, 0.5, 1.0, steps=8, seed=11, resample=resample)
        first, stop = RATE // 2, RATE
        return ([seam(loop.samples[:first], o.samples[first:]) for o in outs]
                + [seam(o.samples[:stop], loop.samples[stop:]) for o in outs]), []
    cut = 80400  # 50 ms into the open hat
    outs = clips.extend_clip(engine, Clip(loop.samples[:cut], RATE), 3, 0.5, steps=6, seed=9, resample=resample)
    return [seam(o.samples[:cut], o.samples[cut:]) for o in outs], []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("operation", choices=("loop", "repaint", "extend"))
    parser.add_argument("resample", nargs="?", default="1,2,3", help="the U values, comma-separated")
    args = parser.parse_args()
    torch.set_num_threads(1)
    engine = Engine("dd-drums-small", device="cpu")
    for kit in HELD_OUT_KITS:
        loop = beat_loop(1, 120, RATE, kit=kit, offset=0.25)
        for resample in (int(u) for u in args.resample.split(",")):
            began = time.perf_counter()
            seams, levels = (np.array(v) for v in measure(engine, args.operation, loop, resample))
            line = (f"{args.operation} {kit:18s} U={resample}: seam {seams.mean():.2f} ± "
                    f"{seams.std(ddof=1) / np.sqrt(len(seams)):.2f} (median {np.median(seams):.2f}, n={len(seams)})")
            if len(levels):
                line += (f", level step {levels.mean():.2f} ± {levels.std(ddof=1) / np.sqrt(len(levels)):.2f} dB "
                         f"(source {wrap_level_step(loop.samples, RATE):.2f})")
            print(f"{line}  [{time.perf_counter() - began:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
