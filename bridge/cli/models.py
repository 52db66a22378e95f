"""`dd-bridge models` (the known models) and `dd-bridge convert` (any layout to the project's own)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from bridge.cli.arguments import positive_int
from bridge.engine.checkpoints import load_model, save_model
from bridge.engine.modelcard import list_models, model_folders
from bridge.engine.unet import DanceDiffusionUNet

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    models = subparsers.add_parser("models", help="list the known models",
                                   description="List the models that --model accepts by name: the bundled ones "
                                               "and those in your model folder.")
    models.set_defaults(run=run_models)

    convert = subparsers.add_parser(
        "convert", help="convert a .ckpt or diffusers folder to the project's format",
        description="Write SRC (a Harmonai .ckpt or a diffusers UNet1DModel folder) as DST.safetensors plus the "
                    "model card DST.yaml. Put them in your model folder to use them by name.")
    convert.add_argument("src", metavar="SRC", help="the model to convert: a path, or the name of a known model")
    convert.add_argument("dst", type=Path, metavar="DST",
                         help="output path (with or without .safetensors), or an existing folder")
    convert.add_argument("--half", action="store_true", help="store fp16 weights (half the size)")
    convert.add_argument("--sample-rate", type=positive_int, default=None, metavar="R",
                         help="sample rate the model was trained at, for a .ckpt that is not a released model "
                              "(default: 48000)")
    convert.add_argument("--window", type=positive_int, default=None, metavar="W",
                         help="training window in samples, for a .ckpt that is not a released model "
                              "(default: 65536)")
    convert.add_argument("--name", default=None, metavar="N", help="model name in the card (default: DST's name)")
    convert.set_defaults(run=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    loaded = load_model(args.src, sample_rate=args.sample_rate, window=args.window)
    log.info("%s: %s, %.1fM parameters, %d Hz, window %d", loaded.source, loaded.name,
             loaded.num_parameters / 1e6, loaded.sample_rate, loaded.window)
    for path in save_model(loaded, args.dst, half=args.half, name=args.name):
        print(path)
    return 0


def run_models(args: argparse.Namespace) -> int:
    cards = list_models()
    if not cards:
        log.info("no models yet: convert one into %s", model_folders()[-1])
        return 0
    rows = [("NAME", "SAMPLE RATE", "WINDOW", "PARAMETERS", "PATH")]
    for card in cards:
        where = str(card.weights_path) + ("" if card.weights_path.is_file() else " (weights missing)")
        rows.append((card.name, str(card.sample_rate), str(card.window),
                     f"{_parameter_count(card.architecture) / 1e6:.1f}M", where))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    return 0


def _parameter_count(architecture) -> int:
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        return DanceDiffusionUNet(architecture).num_parameters
