"""`dd-bridge bench`: model speed side by side with diffusers; `dd-bridge export-onnx`: the ONNX file of a model.

(The service's key-press latency is `dd-bridge bench-latency`.)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from bridge import constants
from bridge.engine.devices import DEVICES, pick_device
from bridge.errors import BridgeError

log = logging.getLogger(__name__)

STEP_SAMPLERS = ("v-iplms", "dpmpp-2m", "v-ddim")
STEP_COUNTS = (10, 15, 20, 30, 50, 100)
# The smallest layout diffusers' UNet1DModel can also express (attention levels as wide as their parents).
QUICK = dict(channels=(32, 64, 64, 64, 64), n_attn_layers=1, length=256, repeats=1)


def register(subparsers) -> None:
    bench = subparsers.add_parser(
        "bench", help="time the model: ours (torch, onnxruntime) against diffusers, side by side",
        description="One forward pass of the full-size (221 M) model at the service's window, per backend and "
                    "precision, as ratios to diffusers' UNet1DModel; then one sound end to end, our default "
                    "sampler and steps against DanceDiffusionPipeline's 100 IPNDM steps, with the quality of each. "
                    "Rows are timed interleaved on the same weights and inputs. Takes minutes on a CPU.")
    bench.add_argument("--json", action="store_true", help="print the tables as JSON")
    bench.add_argument("--quick", action="store_true", help="a tiny random model and short inputs: checks that "
                                                            "everything runs, in seconds; the figures mean nothing")
    bench.add_argument("--model", default=None, metavar="M",
                       help=f"model for the end-to-end table (default: {constants.DEFAULT_MODEL} if installed)")
    bench.add_argument("--device", default="auto", choices=DEVICES)
    bench.add_argument("--length", type=int, default=constants.DEFAULT_WINDOW, metavar="N",
                       help=f"samples per forward pass (default {constants.DEFAULT_WINDOW}, the service's window)")
    bench.add_argument("--batch", type=int, default=None, metavar="B",
                       help="forward-pass batch (default: what the Engine uses on this device for that length)")
    bench.add_argument("--repeats", type=int, default=3, metavar="R", help="timed rounds; the best counts")
    bench.add_argument("--no-compile", action="store_true",
                       help="run the fast-path rows without torch.compile (on CUDA: the half-precision weights, eager "
                            "and without CUDA graphs). Compiling takes minutes a row on a GPU: this gives figures "
                            "in seconds, and every table says it ran so")
    bench.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime rows (the first run exports "
                                                             "the model to ONNX, minutes at full size)")
    bench.add_argument("--real", nargs="+", type=Path, default=None, metavar="DIR",
                       help="real one-shots for the end-to-end table's MMD^2 column (default: the held-out files "
                            "the model card names, where they are on this machine)")
    bench.add_argument("--sounds", type=int, default=8, metavar="N",
                       help="sounds per row for the MMD^2 column (default 8; at least 3)")
    bench.add_argument("--only", choices=("forward", "sound", "steps", "batch", "train"), default=None,
                       help="one table: forward, sound, steps (quality per step of each sampler on --model, "
                            "what the defaults are chosen from; not part of the default run) or batch (a GPU's "
                            "batched renders; part of the default run on CUDA) or train (seconds per training "
                            "step of --model: fp32, bf16 autocast, torch.compile, the weighted losses; --batch, "
                            "default 4; not part of the default run)")
    bench.set_defaults(run=run_bench)

    export = subparsers.add_parser(
        "export-onnx", help="write a model as an ONNX file (dynamic batch and length) for ONNX Runtime",
        description="Writes the float32 network of M to a new file F.onnx with a dynamic batch and length. "
                    "`--backend onnx` does this by itself on first use; this is for using the file elsewhere.")
    export.add_argument("--model", default=None, metavar="M", help="model card name or path (default: bundled)")
    export.add_argument("--out", required=True, type=Path, metavar="F.onnx", help="the new file (never replaced)")
    export.set_defaults(run=run_export)


def run_export(args) -> int:
    from bridge.engine.checkpoints import load_model
    from bridge.engine.backends.onnx import export_onnx

    out = args.out.expanduser()
    if out.suffix.lower() != ".onnx":
        raise BridgeError(f"{out}: the output must be named .onnx")
    path = export_onnx(load_model(args.model), out)
    print(path)
    return 0


def run_bench(args) -> int:
    from bridge.bench import reference, tables
    from bridge.engine.unet import UNetConfig

    device = pick_device(args.device)
    for name in ("length", "repeats", "batch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise BridgeError(f"--{name} must be at least 1, got {value}")
    if args.sounds < 3:
        raise BridgeError(f"--sounds must be at least 3 (the error estimate leaves one out), got {args.sounds}")
    if args.only == "batch" and (device.type != "cuda" or args.quick):
        raise BridgeError("--only batch times a CUDA device's batched renders of the full model: needs CUDA, "
                          "without --quick")
    if args.quick:
        config = UNetConfig(channels=QUICK["channels"], n_attn_layers=QUICK["n_attn_layers"])
        length, repeats = QUICK["length"], QUICK["repeats"]
    else:
        config, length, repeats = tables.FULL_SIZE, args.length, args.repeats
    if length % config.length_multiple:
        raise BridgeError(f"--length must be a multiple of {config.length_multiple} samples, got {length}")
    if not reference.diffusers_available():
        log.warning("%s: no diffusers rows", reference.MISSING)
    if not args.no_compile:
        return _run_tables(args, device, config, length, repeats)
    import torch._dynamo.config

    # Every torch.compile while the tables run (the CUDA fast path) runs its module as it is; restored after, for
    # a caller in the same process (the tests).
    with torch._dynamo.config.patch(disable=True):
        return _run_tables(args, device, config, length, repeats)


def _run_tables(args, device, config, length: int, repeats: int) -> int:
    from bridge.bench import reference, tables
    from bridge.bench.timing import machine
    from bridge.engine.engine import batch_size

    sampler, steps = constants.DEFAULT_SAMPLER, constants.DEFAULT_STEPS
    log.info("%s", machine(device))
    done = []
    if args.only in (None, "forward"):
        loaded, network, diffusers_unet = reference.reference_pair(config, constants.DEFAULT_SAMPLE_RATE, length)
        batch = args.batch or batch_size(device, config.padded_length(length))
        done.append(tables.forward_table(loaded, network, diffusers_unet, batch=batch, length=length,
                                         device=device, repeats=repeats, onnx=not args.no_onnx))
        del loaded, network, diffusers_unet
    if args.only == "steps":
        loaded = reference.reference_pair(config, constants.DEFAULT_SAMPLE_RATE, length, seed=1)[0] \
            if args.quick else _quality_model(args.model)
        done.append(tables.steps_table(loaded, device=device, samplers=STEP_SAMPLERS,
                                       steps=(4, 8) if args.quick else STEP_COUNTS, seeds=1 if args.quick else 2))
    if args.only == "train":
        from bridge.bench.training import train_step_table
        loaded = reference.reference_pair(config, constants.DEFAULT_SAMPLE_RATE, length, seed=1)[0] \
            if args.quick else _quality_model(args.model)
        done.append(train_step_table(loaded, device=device, batch=args.batch or 4, repeats=repeats,
                                     compile_=not (args.quick or args.no_compile)))
    if args.only in (None, "sound"):
        if args.quick:
            loaded = reference.reference_pair(config, constants.DEFAULT_SAMPLE_RATE, length, seed=1)[0]
        else:
            loaded = _quality_model(args.model)
        judge = _judge(loaded, args.real)
        done.append(tables.variation_table(loaded, device=device, steps=steps, sampler=sampler, judge=judge,
                                           sounds=args.sounds))
        if judge is None:
            done[-1].notes.append("no MMD^2 column: no real one-shots (--real, or held-out files named by the "
                                  "model card) on this machine")
    if args.only in (None, "batch") and device.type == "cuda" and not args.quick:
        loaded = reference.reference_pair(config, constants.DEFAULT_SAMPLE_RATE, length)[0]
        done.append(tables.batch_table(loaded, device=device, count=16, steps=steps, sampler=sampler))
    if args.no_compile:
        for table in done:
            table.notes.append("--no-compile: torch.compile was off, so the fast-path rows ran eagerly (on CUDA "
                               "without CUDA graphs): a lower bound on what the service reaches")
    if args.json:
        json.dump({"machine": machine(device), "tables": [table.to_dict() for table in done]}, sys.stdout,
                  indent=2)
        print()
    else:
        print(f"dd-bridge bench: {machine(device)}")
        for table in done:
            print()
            print(tables.format_table(table))
    return 0


def _judge(loaded, folders: list[Path] | None):
    """A Judge on real one-shots: --real, else the files the model's training held out, when they are here."""
    from bridge.training.data import OneShots, scan
    from bridge.training.evaluate import Judge

    if folders:
        files = scan(folders)
    else:
        files = [path for path in loaded.card.held_out_files if path.is_file()]
    shots = OneShots.load(files, loaded.sample_rate, loaded.window)
    if len(shots) < 3:
        if folders:
            raise BridgeError(f"--real: need at least 3 readable audio files, found {len(shots)}")
        return None
    return Judge(shots.windows, loaded.sample_rate)


def _quality_model(spec: str | None):
    from bridge.bench.reference import reference_pair
    from bridge.engine.checkpoints import load_model
    from bridge.errors import CheckpointError

    try:
        return load_model(spec)
    except CheckpointError:
        if spec is not None:
            raise
    log.warning("no bundled model %s: the end-to-end table uses random weights of the small architecture",
                constants.DEFAULT_MODEL)
    from bridge.engine.unet import UNetConfig

    small = UNetConfig(channels=(32, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64), n_attn_layers=4)
    return reference_pair(small, constants.DEFAULT_SAMPLE_RATE, constants.DEFAULT_WINDOW, seed=1)[0]
