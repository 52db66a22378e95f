"""`dd-bridge models` (installed and downloadable models), `models get` (download one) and `convert`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from bridge.cli.arguments import positive_int
from bridge.constants import DEFAULT_SAMPLE_RATE, DEFAULT_WINDOW
from bridge.engine.catalogue import MIRROR_ENV, Release, find_release, releases
from bridge.engine.checkpoints import load_model, save_model
from bridge.engine.modelcard import list_models, user_models_dir
from bridge.engine.unet import DanceDiffusionUNet
from bridge.errors import BridgeError
from bridge.progress import Bar

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    models = subparsers.add_parser("models", help="list the installed models and those to download",
                                   description="List the models that --model accepts by name (the bundled ones "
                                               "and those in your model folder), then the released models that "
                                               "`dd-bridge models get NAME` downloads.")
    models.set_defaults(run=run_models)
    actions = models.add_subparsers(dest="action", metavar="ACTION")
    get = actions.add_parser(
        "get", help="download a released model into your model folder",
        description="Download a released Harmonai model, verify it, convert it into your model folder and say how "
                    "to use it. Shows its licence and asks once (--yes accepts it). An interrupted download "
                    f"continues where it stopped when you run the same command again. {MIRROR_ENV}=URL downloads "
                    "the same files from a mirror.")
    get.add_argument("name", metavar="NAME", help="a name from `dd-bridge models`, e.g. gwf-440k")
    get.add_argument("--yes", action="store_true", help="accept the model's licence without asking")
    get.add_argument("--half", action="store_true", help="store fp16 weights (half the size)")
    get.set_defaults(run=run_get, command="models get")  # errors read "dd-bridge models get: ..."

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
                              f"(default: {DEFAULT_SAMPLE_RATE})")
    convert.add_argument("--window", type=positive_int, default=None, metavar="W",
                         help="training window in samples, for a .ckpt that is not a released model "
                              f"(default: {DEFAULT_WINDOW})")
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
    if cards:
        rows = [("NAME", "SAMPLE RATE", "WINDOW", "PARAMETERS", "PATH")]
        for card in cards:
            where = str(card.weights_path) + ("" if card.weights_path.is_file() else " (weights missing)")
            rows.append((card.name, str(card.sample_rate), str(card.window),
                         f"{_parameter_count(card.architecture) / 1e6:.1f}M", where))
        _print_table(rows)
    else:
        log.info("no models installed yet")
    installed = {card.name for card in cards}
    print(f"\nTo download (`dd-bridge models get NAME`, into {user_models_dir()}):")
    rows = [("NAME", "SAMPLE RATE", "WINDOW", "STATE", "TRAINED ON")]
    for release in releases():
        rows.append((release.name, str(release.sample_rate), str(release.window),
                     "installed" if release.name in installed else "-", release.trained_on))
    _print_table(rows)
    return 0


def _print_table(rows: list[tuple[str, ...]]) -> None:
    """Columns padded to their widest cell; the last one is left as it is (paths, sentences)."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])


def run_get(args: argparse.Namespace) -> int:
    from bridge.download import install  # only this command needs the network code

    release = find_release(args.name)
    installed = next((card for card in list_models() if card.name == release.name), None)
    if installed is not None:
        log.info("%s is installed already (%s): use it with --model %s", release.name, installed.path, release.name)
        print(installed.weights_path)
        return 0
    _accept_licence(release, args.yes)
    with Bar(release.name, unit="B", unit_scale=True, counts="{n_fmt}B/{total_fmt}B") as progress:
        weights, card = install(release, user_models_dir(), half=args.half, progress=progress)
    print(weights)
    print(card)
    log.info("installed %s (%d Hz, %.2f s window). Use it by name: `dd-bridge vary kick.wav --model %s`, "
             "`dd-bridge serve --model %s`, or `model: %s` in the service's config", release.name,
             release.sample_rate, release.window / release.sample_rate, release.name, release.name, release.name)
    return 0


def _accept_licence(release: Release, yes: bool) -> None:
    """Asks once on a terminal; --yes accepts; with neither, stops before anything is downloaded."""
    terms = f"{release.name} ({release.address()}): licence {release.licence_terms}"
    if yes:
        log.info("%s; accepted with --yes", terms)
        return
    if not sys.stdin.isatty():
        raise BridgeError(f"{release.name} is under the licence {release.licence_terms}: pass --yes to accept it "
                          "(no terminal to ask on)")
    sys.stderr.write(f"{terms}\nDownload {release.name} and accept its licence? [y/N] ")
    sys.stderr.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise BridgeError("licence not accepted; nothing downloaded")


def _parameter_count(architecture) -> int:
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        return DanceDiffusionUNet(architecture).num_parameters
