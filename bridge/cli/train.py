"""`dd-bridge train` (fine-tune or train from scratch), `dd-bridge eval` and `dd-bridge check-memorization`."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

from bridge.training.train import SIZES

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train", help="train a model on your samples (fine-tune, or from scratch)",
        description="Train on the audio files under DATA_DIR (recursively, any format). Everything lives in RUN_DIR: "
                    "the same command continues an interrupted run. Progress goes to stderr; loss.csv, loss.png "
                    "and demos/ (renders and spectrograms) show it learn. At the end the model is written to "
                    "RUN_DIR in the project's format and its path printed.")
    train.add_argument("data", nargs="+", type=Path, metavar="DATA_DIR", help="folders (or files) of one-shots")
    train.add_argument("--out", required=True, type=Path, metavar="RUN_DIR", help="the run's folder")
    start = train.add_mutually_exclusive_group()
    start.add_argument("--from", dest="base_model", default=None, metavar="M",
                       help="fine-tune this model (a name or a path in any layout)")
    start.add_argument("--size", choices=list(SIZES), default=None,
                       help="train from scratch with this architecture (default: small)")
    train.add_argument("--sample-rate", type=_positive_int, default=None, metavar="R",
                       help="training rate (default: the model's; 48000 from scratch)")
    train.add_argument("--window", type=_positive_int, default=None, metavar="W",
                       help="training window in samples (default: the model's; 32768 from scratch)")
    train.add_argument("--steps", type=_positive_int, default=2000, metavar="N",
                       help="train until this step (a continued run may raise it; default: 2000)")
    train.add_argument("--batch-size", type=_positive_int, default=8, metavar="B")
    train.add_argument("--lr", type=float, default=None, help="learning rate (default: 2e-4, fine-tuning 4e-5)")
    train.add_argument("--held-out", type=float, default=0.1, metavar="F",
                       help="fraction of files kept out of training for `dd-bridge eval` (default: 0.1)")
    train.add_argument("--save-every", type=_positive_int, default=50, metavar="N", help="steps between saves")
    train.add_argument("--demo-every", type=int, default=250, metavar="N",
                       help="steps between demo renders (0: none)")
    train.add_argument("--demo-count", type=int, default=4, metavar="N", help="sounds per demo")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")
    train.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                       help="autocast precision (auto: bf16/fp16 on a GPU, fp32 on the CPU)")
    train.add_argument("--name", default=None, help="name of the exported model (default: RUN_DIR's name + step)")
    train.add_argument("--licence", default=None,
                       help="licence of the exported model (default: the base model's, else 'unknown')")
    train.set_defaults(run=run_train)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _stop_on_terminate() -> None:
    """SIGTERM (a closed terminal, a service manager) saves the run like Ctrl-C does."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def run_train(args: argparse.Namespace) -> int:
    from bridge.training import session

    _stop_on_terminate()
    options = {"batch_size": args.batch_size, "held_out": args.held_out, "save_every": args.save_every,
               "demo_every": args.demo_every, "demo_count": args.demo_count, "seed": args.seed}
    if args.lr is not None:
        options["lr"] = args.lr
    run = session.train(args.data, args.out, size=args.size or "small", base_model=args.base_model,
                        sample_rate=args.sample_rate, window=args.window, steps=args.steps, device=args.device,
                        precision=args.precision, **options)
    licence = args.licence
    if licence is None and args.base_model:
        from bridge.engine.checkpoints import load_model
        licence = load_model(args.base_model).card.licence
    for path in session.export(run, name=args.name, licence=licence or "unknown"):
        print(path)
    return 0
