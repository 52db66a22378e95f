"""Printed benchmark: `dd-bridge models get` on a checkpoint of the released size, from a server on loopback.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python -m tests.cli.bench_models_get [--work DIR]

Builds a Lightning checkpoint of the full 221 M-parameter architecture (both copies of the network, as released;
the optimizer state of four tensors only, so the file is about 1.8 GB rather than the releases' unpublished
size), serves it with byte ranges, cuts the first transfer at half, then runs `dd-bridge models get` twice as a
user would: the interrupted run and the resumed one. Prints the bytes each asked for, the seconds each took and
the peak memory of the process that verified and converted the model.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from bridge import constants
from bridge.engine.unet import UNetConfig
from tests.cli.test_models_get import FileServer
from tests.support.model_files import random_native_state, write_lightning_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        run(Path(scratch))


def run(work: Path) -> None:
    began = time.monotonic()
    ema = random_native_state(UNetConfig())
    online = {key: value + 0.01 for key, value in ema.items()}  # its own storage, as in a real training run
    ckpt = write_lightning_checkpoint(work / "bench-release.ckpt", ema, online=online)
    del ema, online
    data = ckpt.read_bytes()
    ckpt.unlink()
    print(f"checkpoint: {len(data) / 1e9:.2f} GB, built in {time.monotonic() - began:.0f} s")
    env = {**os.environ, "XDG_DATA_HOME": str(work / "data"), "XDG_CACHE_HOME": str(work / "cache"),
           "DD_BRIDGE_CATALOGUE": str(work / "catalogue.yaml"), "PYTHONPATH": str(constants.REPO_DIR)}
    with FileServer({"/bench-release.ckpt": data}) as server:
        (work / "catalogue.yaml").write_text(yaml.safe_dump([{
            "name": "bench-release", "url": f"{server.url}/bench-release.ckpt", "sample_rate": 48000,
            "window": 65536, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}]))
        server.cut_after = len(data) // 2
        for label in ("interrupted", "resumed"):
            start = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "bridge", "models", "get", "bench-release", "--yes"],
                                  env=env, capture_output=True, text=True)
            seconds = time.monotonic() - start
            last = (done.stderr.strip().splitlines() or [""])[-1]
            print(f"{label}: exit {done.returncode}, asked {server.requests[-1][1] or 'the whole file'}, "
                  f"received {server.sent[-1] / 1e9:.2f} GB, {seconds:.1f} s; {last[:150]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6  # kB on Linux
    weights = work / "data" / "dd-bridge" / "models" / "bench-release.safetensors"
    print(f"installed: {weights.stat().st_size / 1e9:.2f} GB safetensors; peak memory of a models get run "
          f"{peak:.2f} GB; torch {torch.__version__}, {os.environ.get('OMP_NUM_THREADS', 'all')} threads")


if __name__ == "__main__":
    main()
