"""Training speed with 1, 2, ... processes under torchrun, side by side in one run: seconds per step, sounds per
second and sounds per second per process (per GPU on a GPU machine), at the same global batch.

Each setting is a real `dd-bridge train` in a fresh folder (rounds interleave the settings, so a load that comes
and goes on a shared machine hits all alike; each keeps its best round). A step's time is read from the run's
loss.csv, after the first steps (warm-up, allocator, cuDNN's choices). The last loss of each is printed too: the
runs see the same batches, so it must agree across settings to float tolerance.

    python gpu/bench_train.py DATA_DIR... --size full --batch-size 16 --steps 12 --processes 1,2,4,8
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARM_UP = 2  # steps left out of the timing


def train(data, folder: Path, processes: int, args) -> tuple[float, float]:
    """(seconds per step after the warm-up, last loss) of one `dd-bridge train` under torchrun."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "bridge", "--quiet", "train", *data, "--out", str(folder), "--size", args.size,
               "--batch-size", str(args.batch_size), "--steps", str(args.steps), "--device", args.device,
               "--demo-every", "0", "--save-every", str(args.steps), "--held-out", "0", "--seed", "0"]
    if args.window:
        command += ["--window", str(args.window)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    # One thread a process unless told: torchrun sets this for 2 processes and more but not for 1, and a lone
    # process's extra threads spinning on a shared CPU made 1 process 14x slower than 2 (17.4 vs 1.2 s/step).
    env.setdefault("OMP_NUM_THREADS", "1")
    done = subprocess.run(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"{processes} processes: exit {done.returncode}\n{done.stderr[-2000:]}")
    with (folder / "loss.csv").open() as f:
        rows = [(int(r["step"]), float(r["loss"]), float(r["seconds"])) for r in csv.DictReader(f)]
    (first, _, start), (last, loss, end) = rows[WARM_UP - 1], rows[-1]
    return (end - start) / (last - first), loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="+", help="folders of one-shots")
    parser.add_argument("--size", default="small")
    parser.add_argument("--window", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8, help="the global batch (default: 8)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--processes", default="1,2", help="process counts, separated by commas (default: 1,2)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.steps <= WARM_UP + 1:
        parser.error(f"--steps must be more than {WARM_UP + 1}")
    counts = [int(n) for n in args.processes.split(",")]
    best: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="dd-bench-train-") as work:
        for round_ in range(args.rounds):
            for n in counts:
                seconds, loss = train(args.data, Path(work) / f"r{round_}-p{n}", n, args)
                if n not in best or seconds < best[n][0]:
                    best[n] = (seconds, loss)
                print(f"round {round_ + 1}: {n} processes {seconds:.3f} s/step", file=sys.stderr, flush=True)
    print(f"{args.size}, global batch {args.batch_size}, window {args.window or 'default'}, {args.device}; best of "
          f"{args.rounds} rounds, steps {WARM_UP + 1}..{args.steps}")
    print("| processes | s/step | sounds/s | sounds/s per process | last loss |")
    print("|---|---|---|---|---|")
    for n in counts:
        seconds, loss = best[n]
        rate = args.batch_size / seconds
        print(f"| {n} | {seconds:.3f} | {rate:.1f} | {rate / n:.1f} | {loss:.6f} |")


if __name__ == "__main__":
    main()
