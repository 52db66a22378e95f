"""Variations per minute for a sample pack, side by side in one run: 1 and 2 local workers, 1 and 2 Ray actors
on a local Ray instance, on the bundled model and real one-shots it never trained on.

    python -m tests.pack.bench_pack [--model M] [--steps S] [--per-source N] [--rounds R] [--device cpu|cuda]

Each round renders the same pack once per row (into a fresh folder), rows interleaved, so a load that comes and
goes hits all alike; the best round counts. "rendering" is variations per minute from the moment every worker
holds a warm engine to the last file written (what a long pack runs at); "wall" is the whole command's rate, engine
start-up and contact sheets included (what this small pack took). Every CPU worker and actor runs --threads torch
threads (default 1: on a shared, busy machine torch's extra threads spin; 0: the cores shared out, 1 worker
taking all of them).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bridge import constants
from bridge.pack import cluster, local
from bridge.pack.driver import make_pack
from bridge.pack.plan import make_plan

DRUMKITS = Path("/usr/share/hydrogen/data/drumkits")
SOURCES = [DRUMKITS / "BJA_Pacific/BD_01.aiff", DRUMKITS / "BJA_Pacific/HH_01.aiff"]  # held out: docs/training-data.md


class Timed:
    """Workers, with the moment they were all warm and the moment the last result came back."""

    def __init__(self, workers):
        self.workers, self.warm, self.last = workers, None, None

    def describe(self):
        described = self.workers.describe()
        if isinstance(self.workers, cluster.RayWorkers):  # every actor warm, not just the first
            self.workers.ray.get([actor.describe.remote() for actor in self.workers.actors])
        self.warm = time.perf_counter()
        return described

    def results(self, jobs):
        for done in self.workers.results(jobs):
            self.last = time.perf_counter()
            yield done

    def close(self):
        self.workers.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=constants.DEFAULT_MODEL)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--per-source", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of every CPU worker and actor (default 1); 0: the cores shared out")
    args = parser.parse_args()
    settings = {"model": args.model, "steps": args.steps, "sampler": constants.DEFAULT_SAMPLER, "shape": 1.0,
                "finish": "on", "format": "pcm24", "precision": "fp32", "backend": "torch", "sample_rate": None,
                "window": None, "guide": [], "guide_mode": "auto", "loop": False, "bars": None, "bpm": None,
                "resample": None}
    plan = make_plan([(path, None) for path in SOURCES], per_source=args.per_source, noises=[0.5], seed=1,
                     settings=settings)
    cores = os.cpu_count() or 1
    one, two = (args.threads, args.threads) if args.threads else (cores, max(1, cores // 2))
    ray = cluster.require()
    ray.init(num_cpus=2 * two, include_dashboard=False, log_to_driver=False, object_store_memory=200 << 20)
    rows = {
        "1 local worker": lambda: local.open_workers(settings, local.plan_workers(args.device, 1, one)),
        "2 local workers": lambda: local.open_workers(settings, local.plan_workers(args.device, 2, two)),
        "Ray, 1 actor": lambda: cluster.RayWorkers(settings, device=args.device, threads=one, actors=1),
        "Ray, 2 actors": lambda: cluster.RayWorkers(settings, device=args.device, threads=two, actors=2),
    }
    best: dict[str, tuple[float, float]] = {}
    for round_ in range(args.rounds):
        for name, open_workers in rows.items():
            timed = []
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                make_pack(plan, Path(folder), lambda: timed.append(Timed(open_workers())) or timed[0])
                wall = time.perf_counter() - started
            rendering = timed[0].last - timed[0].warm
            n = len(plan.tasks)
            rates = (60 * n / rendering, 60 * n / wall)
            best[name] = max(best.get(name, (0.0, 0.0)), rates)
            print(f"  (round {round_ + 1}: {name}: {rates[0]:.1f} rendering, {rates[1]:.1f} wall /min)", flush=True)
    ray.shutdown()
    print(f"pack of {len(plan.tasks)} variations ({len(SOURCES)} one-shots x {args.per_source}), {args.model}, "
          f"{args.steps} steps, {args.device}, {cores} cores, threads per worker {one} (1 worker) / {two} (2); "
          f"best of {args.rounds} rounds, rows interleaved")
    print(f"  {'':20s}{'rendering /min':>16s}{'x':>7s}{'wall /min':>12s}")
    first = best[next(iter(rows))][0]
    for name, (rendering, wall) in best.items():
        print(f"  {name:20s}{rendering:16.1f}{rendering / first:7.2f}{wall:12.1f}")


if __name__ == "__main__":
    main()
