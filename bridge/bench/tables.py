"""The tables of `dd-bridge bench`: speed side by side, in one run, on the same weights and inputs, ours (torch,
onnxruntime) against diffusers; quality per step; batched renders on a GPU.

Every table times its rows interleaved (each repeat runs every row once) and keeps each row's best, so a load
that comes and goes on a shared machine hits all rows alike. diffusers is a test-only dependency: without it its
rows say so and the ratios are to our plain torch module instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from bridge.bench import gpus, reference as diffusers_reference
from bridge.bench.timing import forward_gmacs, snr_db, time_side_by_side
from bridge.engine.backends import fast_network
from bridge.engine.checkpoints import LoadedModel
from bridge.engine.engine import Engine
from bridge.engine.unet import DanceDiffusionUNet, UNetConfig

log = logging.getLogger(__name__)

FULL_SIZE = UNetConfig()
PIPELINE_STEPS = 100  # DanceDiffusionPipeline's default, with IPNDM
REFERENCE_STEPS = 200  # the "exact" render the quality figure compares against
SEED = 1234


@dataclass
class Row:
    name: str
    seconds: float | None = None  # best over the repeats
    ratio: float | None = None  # speed relative to the table's baseline row (> 1: faster)
    peak_mib: float | None = None  # memory the run added at its peak (CPU: resident set; GPU: allocated)
    max_abs_diff: float | None = None  # against the baseline's output
    quality: float | None = None  # section 2: closeness to the 200-step render, dB (higher is better)
    mmd2: float | None = None  # section 2: distance to real drums (bridge.training.evaluate; lower is better)
    mmd2_change: float | None = None  # mmd2 minus the first row's, on the same seeds
    mmd2_change_error: float | None = None  # its standard error
    tflops: float | None = None
    peak_fraction: float | None = None
    note: str = ""


@dataclass
class Table:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"title": self.title, "rows": [asdict(row) for row in self.rows], "notes": self.notes}


def forward_table(loaded: LoadedModel, network: DanceDiffusionUNet, reference, *, batch: int, length: int,
                  device: torch.device, repeats: int, onnx: bool = True) -> Table:
    """One forward pass per backend and precision, as ratios to diffusers' UNet1DModel in fp32 (section 1 and 3;
    on a GPU also section 4: FLOP/s reached)."""
    config = loaded.architecture
    gmacs = forward_gmacs(config, batch, length)
    title = (f"one forward pass (= one sampler step): {loaded.num_parameters / 1e6:.1f} M parameters, "
             f"batch {batch} x {length} samples, {device}, {gmacs:.3g} GMAC")
    table = Table(title)
    generator = torch.Generator("cpu").manual_seed(SEED)
    x = torch.randn(batch, config.io_channels, length, generator=generator).to(device)
    t = torch.rand(batch, generator=generator).to(device)
    network = network.to(device)
    candidates: dict[str, Callable[[], torch.Tensor]] = {}
    if reference is not None:
        reference = reference.to(device)
        candidates["diffusers UNet1DModel fp32"] = lambda: _no_grad(lambda: reference(x, t).sample)
        if device.type == "cuda":
            half = diffusers_reference.diffusers_twin(loaded).to(device).half()
            candidates["diffusers UNet1DModel fp16"] = lambda: _no_grad(lambda: half(x.half(), t.half()).sample)
    candidates["ours, torch fp32 (plain module)"] = lambda: _no_grad(lambda: network(x, t))
    fast = {"fp32": fast_network(network, device, "fp32")}
    candidates["ours, torch fp32 (fast path)"] = _bound(fast["fp32"], x, t)
    if onnx:
        try:
            from bridge.engine.backends import onnx
            candidates["ours, onnxruntime fp32"] = _bound(onnx.load_network(loaded, device, "fp32",
                                                                            model=network.to("cpu")), x, t)
        except Exception as error:  # no onnxruntime, no CUDA provider: the row says why
            table.rows.append(Row("ours, onnxruntime fp32", note=f"not run: {error}"))
        finally:
            network.to(device)
    low = "fp16" if device.type == "cuda" else "bf16"
    if device.type != "mps":
        fast[low] = fast_network(network, device, low)
        candidates[f"ours, torch {low} (fast path)"] = _bound(fast[low], x, t)
    if device.type == "cuda":
        fast["bf16"] = fast_network(network, device, "bf16")
        candidates["ours, torch bf16 (fast path)"] = _bound(fast["bf16"], x, t)
        # The fast path as the service runs it: its shape compiled and its CUDA graph recorded (only what is warmed
        # compiles: bridge.engine.backends.cuda), after the module's last move (the onnx export's round trip)
        for path in fast.values():
            _warmed(path, batch, length)
        for run in candidates.values():  # every candidate run once before anything is timed
            run()
    seconds, peaks, outputs = time_side_by_side(candidates, repeats, device)
    baseline = next(iter(candidates))
    if reference is None:
        table.notes.append(f"{diffusers_reference.MISSING}: ratios are to our plain torch module instead"
                           if not diffusers_reference.diffusers_available() else
                           "diffusers' UNet1DModel cannot express this architecture: ratios are to our plain module")
    for name in candidates:
        row = Row(name, seconds[name], seconds[baseline] / seconds[name], peaks[name],
                  float((outputs[name].float().cpu() - outputs[baseline].float().cpu()).abs().max()))
        if device.type == "cuda":
            dtype = torch.float32 if "fp32" in name else torch.float16
            row.tflops = 2 * gmacs / 1e3 / seconds[name]
            peak = gpus.peak_tflops(device, dtype)
            row.peak_fraction = row.tflops / peak if peak else None
        table.rows.append(row)
    table.rows.sort(key=lambda row: list(candidates).index(row.name) if row.name in candidates else len(candidates))
    return table


def variation_table(loaded: LoadedModel, *, device: torch.device, steps: int, sampler: str, judge=None,
                    sounds: int = 8, reference_steps: int = REFERENCE_STEPS,
                    pipeline_steps: int = PIPELINE_STEPS) -> Table:
    """One sound end to end: our default sampler and steps against DanceDiffusionPipeline's default (100 IPNDM
    steps), same weights, same starting noise. Quality, twice: closeness to a 200-step render of the same noise
    (SNR), and, given a ``judge`` (bridge.training.evaluate.Judge on real drums), MMD^2 of ``sounds`` renders per
    row from the same seeds, with each row's difference to the first and that difference's standard error."""
    length = loaded.window
    table = Table(f"one sound end to end: {loaded.name}, {length} samples at {loaded.sample_rate} Hz, {device}; "
                  f"quality = SNR against a {reference_steps}-step render of the same noise (dB, higher is better)"
                  + (f" and MMD^2 to real drums over {sounds} sounds (lower is better)" if judge else ""))
    engine = Engine(loaded, device=device.type)
    exact = engine.generate(1, length, steps=reference_steps, sampler="v-iplms", seed=SEED)
    low = "fp16" if device.type == "cuda" else "bf16"
    low_engine = Engine(loaded, device=device.type, precision=low)
    for timed in (engine, low_engine):  # the fast path as the service runs it: this shape compiled beforehand
        _warmed(timed.network, timed.batch_size(length), timed.padded_length(length))

    def ours(engine: Engine) -> Callable[[list[int]], torch.Tensor]:
        return lambda seeds: engine.generate(len(seeds), length, steps=steps, sampler=sampler, seed=seeds)

    renders = {f"ours: {sampler}, {steps} steps (fast path)": ours(engine),
               f"ours: {sampler}, {steps} steps, {low} (fast path)": ours(low_engine)}
    reference = diffusers_reference.diffusers_twin(loaded)
    if reference is not None:
        reference = reference.to(device)

        def pipeline_run(seeds: list[int]) -> torch.Tensor:
            return diffusers_reference.pipeline_render(
                reference, count=len(seeds), steps=pipeline_steps, seconds=length / loaded.sample_rate,
                generator=[torch.Generator("cpu").manual_seed(s) for s in seeds])

        renders = {f"DanceDiffusionPipeline: IPNDM, {pipeline_steps} steps": pipeline_run, **renders}
    else:
        table.notes.append(f"{diffusers_reference.MISSING}: no pipeline row"
                           if not diffusers_reference.diffusers_available() else
                           "diffusers cannot express this model: no pipeline row")
    candidates = {name: (lambda render=render: render([SEED])) for name, render in renders.items()}
    # Each row takes long: on a CPU (nothing to compile) the first run is the timed one; a GPU compiles first.
    seconds, _, outputs = time_side_by_side(candidates, 1, device, warm_up=device.type == "cuda")
    baseline = next(iter(candidates))
    for name in candidates:
        table.rows.append(Row(name, seconds[name], seconds[baseline] / seconds[name],
                              quality=snr_db(outputs[name], exact)))
    if judge is not None:
        _judge_rows(table, renders, judge, sounds)
    return table


def _judge_rows(table: Table, renders: dict[str, Callable[[list[int]], torch.Tensor]], judge, sounds: int) -> None:
    """MMD^2 to real drums per row, and the paired difference to the first row (same seeds, so the choice of
    seeds cancels): "equal quality" reads as a difference within about two standard errors of zero."""
    seeds = list(range(SEED, SEED + sounds))
    clips = {}
    for name, render in renders.items():
        with torch.inference_mode():
            clips[name] = render(seeds).float().cpu()
        log.info("%s: %d sounds rendered for the MMD^2 column", name, sounds)
    first = next(iter(renders))
    for row in table.rows:
        score = judge.score(row.name, clips[row.name], baseline=clips[first] if row.name != first else None)
        row.mmd2, row.mmd2_change, row.mmd2_change_error = score.mmd2, score.change, score.change_error
    table.notes.append(f"MMD^2 change: this row minus the first on the same {sounds} seeds, +- its jackknife "
                       "standard error; within about two errors of zero is equal quality")


def batch_table(loaded: LoadedModel, *, device: torch.device, count: int, steps: int, sampler: str) -> Table:
    """GPU: ``count`` new sounds at the model's window in one request, per precision, compiled beforehand."""
    table = Table(f"{count} sounds of {loaded.window} samples in one request, {sampler}, {steps} steps, {device}")
    runs = {}
    for precision in ("fp16", "bf16"):
        engine = Engine(loaded, device=device.type, precision=precision)
        warm_up = getattr(engine.network, "warm_up", None)
        if warm_up is not None:
            warm_up([(engine.batch_size(loaded.window), engine.padded_length(loaded.window))])
        runs[f"ours, torch {precision} (fast path)"] = \
            lambda engine=engine: engine.generate(count, steps=steps, sampler=sampler, seed=SEED)
    seconds, peaks, _ = time_side_by_side(runs, 1, device)
    for name in runs:
        table.rows.append(Row(name, seconds[name], peak_mib=peaks[name]))
    return table


def steps_table(loaded: LoadedModel, *, device: torch.device, samplers: tuple[str, ...], steps: tuple[int, ...],
                seeds: int = 2, reference_steps: int = REFERENCE_STEPS) -> Table:
    """Quality per step, for choosing the defaults: each sampler's closeness to a ``reference_steps`` render of
    the same noise (v-iplms, 4th order: converged), averaged over ``seeds`` sounds, and its seconds per sound."""
    length = loaded.window
    table = Table(f"quality per step: {loaded.name}, {length} samples, {device}, {seeds} sounds; SNR against a "
                  f"{reference_steps}-step render of the same noise (dB, higher is better)")
    engine = Engine(loaded, device=device.type)
    seed_list = list(range(SEED, SEED + seeds))
    exact = engine.generate(seeds, length, steps=reference_steps, sampler="v-iplms", seed=seed_list)
    for sampler in samplers:
        for count in steps:
            started = time.perf_counter()
            audio = engine.generate(seeds, length, steps=count, sampler=sampler, seed=seed_list)
            seconds = (time.perf_counter() - started) / seeds
            quality = sum(snr_db(audio[i], exact[i]) for i in range(seeds)) / seeds
            table.rows.append(Row(f"{sampler}, {count} steps", seconds, quality=quality))
            log.info("%s, %d steps: %.1f dB, %.2f s per sound", sampler, count, quality, seconds)
    return table


def _no_grad(run: Callable[[], torch.Tensor]) -> torch.Tensor:
    with torch.inference_mode():
        return run()


def _bound(network, x: torch.Tensor, t: torch.Tensor) -> Callable[[], torch.Tensor]:
    return lambda: _no_grad(lambda: network(x, t))


def _warmed(network, batch: int, length: int):
    """``network`` with (batch, length) compiled, where it compiles (the CUDA fast path compiles only the shapes it
    is warmed for, as the service warms them: bridge.engine.backends.cuda); as it is elsewhere."""
    warm_up = getattr(network, "warm_up", None)
    if warm_up is not None:
        warm_up([(batch, length)])
    return network


# Text -------------------------------------------------------------------------------------------------------------

def format_table(table: Table) -> str:
    columns = [("seconds", "seconds", "{:.3f}"), ("ratio", "x", "{:.2f}"), ("peak_mib", "peak MiB", "{:.0f}"),
               ("max_abs_diff", "max|diff|", "{:.1e}"), ("quality", "SNR dB", "{:.1f}"),
               ("mmd2", "MMD^2", "{:.4f}"), ("mmd2_change", "change", "{:+.4f}"),
               ("mmd2_change_error", "+- se", "{:.4f}"),
               ("tflops", "TFLOP/s", "{:.1f}"), ("peak_fraction", "of peak", "{:.0%}")]
    shown = [c for c in columns if any(getattr(row, c[0]) is not None for row in table.rows)]
    width = max([len(row.name) for row in table.rows] + [4])
    lines = [table.title, f"  {'':{width}}" + "".join(f"  {header:>9}" for _, header, _ in shown)]
    for row in table.rows:
        cells = "".join(f"  {(fmt.format(getattr(row, key)) if getattr(row, key) is not None else '-'):>9}"
                        for key, _, fmt in shown)
        lines.append(f"  {row.name:{width}}{cells}" + (f"  {row.note}" if row.note else ""))
    lines += [f"  note: {note}" for note in table.notes]
    return "\n".join(lines)
