"""`dd-bridge bench --only train`: seconds per training step of one model, fp32 beside bf16 autocast,
torch.compile and the weighted recipe losses, timed interleaved on the same weights and batch.

What the recipe table in docs/benchmarks.md takes its seconds per step from: a faster step is worth having only
if it keeps the held-out figure, which `dd-bridge eval` of a run trained with it says.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch

from bridge.bench.tables import Row, Table
from bridge.bench.timing import time_side_by_side
from bridge.training.train import Run, TrainingSettings

log = logging.getLogger(__name__)

# Rows beyond fp32: (name, precision, compiled, recipe knobs)
CANDIDATES = (
    ("fp32 (the original recipe)", "fp32", False, {}),
    ("bf16 autocast", "bf16", False, {}),
    ("torch.compile, fp32", "fp32", True, {}),
    ("fp32, min-snr:5 + pre-emphasis 0.9", "fp32", False, {"loss_weight": "min-snr:5", "pre_emphasis": 0.9}),
)


def train_step_table(loaded, *, device: torch.device, batch: int, repeats: int, compile_: bool = True) -> Table:
    """One AdamW step (forward, backward, clipping, EMA) per row on the same starting weights and batch."""
    windows = torch.randn(batch, 2, loaded.window, generator=torch.Generator().manual_seed(0)) * 0.3
    start = loaded.build()
    runs, rows = {}, []
    for name, precision, compiled, knobs in CANDIDATES:
        if compiled and not compile_:
            continue
        settings = TrainingSettings(data=[], architecture=loaded.architecture.to_dict(), sample_rate=loaded.sample_rate,
                                    window=loaded.window, steps=1 << 30, batch_size=batch, warmup=1,
                                    base_model="bench", **knobs)
        run = Run(Path("unused"), settings, copy.deepcopy(start).train().requires_grad_(True), device, precision)
        if compiled:
            run.model = torch.compile(run.model)  # the EMA zips the same parameters
        runs[name] = run
    best, peaks, losses = time_side_by_side({name: (lambda run=run: run.train_step(windows)) for name, run in
                                             runs.items()}, repeats, device)
    base = next(iter(runs))
    for name, run in runs.items():
        same_loss = run.recipe.is_original  # a weighted loss is another number: no difference to show
        rows.append(Row(name, seconds=best[name], ratio=best[base] / best[name], peak_mib=peaks[name],
                        max_abs_diff=abs(losses[name] - losses[base]) if same_loss and name != base else None))
    parameters = sum(p.numel() for p in start.parameters()) / 1e6
    table = Table(f"Training: seconds per step, batch {batch} x {loaded.window} samples, {loaded.card.name} "
                  f"({parameters:.1f} M parameters), AdamW + EMA, best of {repeats} interleaved rounds", rows)
    table.notes.append("max|diff|: the first step's loss against fp32's (same weights, batch, noise and times)")
    if compile_:
        table.notes.append("torch.compile's first step (its compilation) is the untimed warm-up")
    return table
