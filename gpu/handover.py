"""A `dd-bridge train` run folder cut into files the device tool returns, and put back together here.

The lent GPU machine returns at most 8 files of 16 MiB each, 64 MiB together. A run's state.pt holds the network,
its EMA copy and AdamW's two moments, four copies of the weights (110 MB for the 6.9 M bundled model), so it cannot
come back whole. What comes back: the exported model (the EMA weights, what inference uses, with its card), the
training weights when they fit, run.yaml, loss.csv and loss.png, as one tar cut into parts (results.tar.00, ...).
`unpack` rebuilds a state.pt that the same `dd-bridge train` command continues; AdamW's moments start afresh (they
do not fit), which the first steps of the continued run re-estimate.

    python gpu/handover.py pack RUN_DIR OUT_DIR --budget BYTES --parts N   # there, at the end of gpu/session.sh
    python gpu/handover.py unpack FILES_DIR [RUN_DIR]                       # here: RUN_DIR defaults to gpu/state
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.engine.checkpoints import load_model  # noqa: E402
from bridge.training import session  # noqa: E402
from bridge.training.train import LOSS_FILE, SETTINGS_FILE, open_run, read_settings  # noqa: E402

PART_BYTES = 15 * 1024 * 1024  # under the tool's 16 MiB per file
PARTS = "results.tar"
RESUME_FILE = "resume.pt"  # the training weights, step, seconds and random state: state.pt less EMA and optimiser


def open_existing(run_dir: Path):
    settings = read_settings(run_dir)
    if settings is None:
        raise SystemExit(f"{run_dir}: no run here ({SETTINGS_FILE} missing)")
    return open_run(run_dir, settings, device="cpu")


def candidate(run) -> tuple[Path, Path]:
    """The run's exported model at its current step; exported now if training was stopped before it could."""
    # run.yaml records the base's licence: its base_model, a path on the machine that started the run, may not be here
    return session.export(run, licence=session.base_licence(run.settings))


def pack(run_dir: Path, out_dir: Path, budget: int, parts: int) -> list[Path]:
    """The run as results.tar.NN parts in out_dir, at most `parts` files and `budget` bytes together."""
    run = open_existing(run_dir)
    limit = min(budget, parts * PART_BYTES)
    members = [*candidate(run), run_dir / SETTINGS_FILE, run_dir / session.DATA_FILES, run_dir / LOSS_FILE,
               run_dir / "loss.png"]
    members = [path for path in members if path.exists()]
    resume = io.BytesIO()
    torch.save({"model": run.model.state_dict(), "step": run.step, "elapsed": run.elapsed,
                "generator": run.generator.get_state()}, resume)
    size = sum(path.stat().st_size for path in members) + 1024 * (len(members) + 2)
    if size > limit:
        raise SystemExit(f"pack: the exported model alone ({size / 2**20:.1f} MiB) is over the {limit / 2**20:.1f} "
                         "MiB that can come back; train a smaller --size")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in members:
            tar.add(path, arcname=path.name)
        if size + resume.getbuffer().nbytes <= limit:
            info = tarfile.TarInfo(RESUME_FILE)
            info.size = resume.getbuffer().nbytes
            resume.seek(0)
            tar.addfile(info, resume)
        else:
            print(f"pack: the training weights do not fit in {limit / 2**20:.1f} MiB: a continued run starts them "
                  "from the EMA weights", file=sys.stderr)
    data = buffer.getvalue()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for number, start in enumerate(range(0, len(data), PART_BYTES)):
        path = out_dir / f"{PARTS}.{number:02d}"
        path.write_bytes(data[start:start + PART_BYTES])
        written.append(path)
    return written


def unpack(files_dir: Path, run_dir: Path) -> Path:
    """Rebuild run_dir (new or empty) from the parts: state.pt the same `dd-bridge train` command continues."""
    parts = sorted(files_dir.glob(f"{PARTS}.[0-9][0-9]"))
    if not parts:
        raise SystemExit(f"{files_dir}: no {PARTS}.NN parts")
    if run_dir.exists() and any(run_dir.iterdir()):
        raise SystemExit(f"{run_dir}: not empty; unpack into a new folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts))) as tar:
        tar.extractall(run_dir, filter="data")  # plain files only, nothing outside run_dir
    settings = read_settings(run_dir)
    run = open_run(run_dir, settings, device="cpu")
    exported = sorted(run_dir.glob("*.safetensors"), key=lambda p: p.stat().st_mtime)[-1]
    run.ema.load_state_dict(load_model(exported).build().state_dict())
    resume_path = run_dir / RESUME_FILE
    if resume_path.exists():
        resume = torch.load(resume_path, map_location="cpu", weights_only=True)
        run.model.load_state_dict(resume["model"])
        run.step, run.elapsed = int(resume["step"]), float(resume["elapsed"])
        run.generator.set_state(resume["generator"])
        resume_path.unlink()
    else:
        run.model.load_state_dict(run.ema.state_dict())
        run.step = int(load_model(exported).card.extra["training"]["steps"])
    run.save()
    return run_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("pack")
    p.add_argument("run_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--budget", type=int, default=60 * 1024 * 1024, help="bytes the parts may take together")
    p.add_argument("--parts", type=int, default=4, help="files the parts may take")
    u = commands.add_parser("unpack")
    u.add_argument("files_dir", type=Path)
    u.add_argument("run_dir", type=Path, nargs="?", default=ROOT / "gpu" / "state")
    args = parser.parse_args(argv)
    if args.command == "pack":
        for path in pack(args.run_dir, args.out_dir, args.budget, args.parts):
            print(path)
    else:
        print(unpack(args.files_dir, args.run_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
