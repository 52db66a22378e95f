"""Seconds per sampler step of the full-size Dance Diffusion model (one forward pass = one step for every sampler
but heun's second-order steps), fp32 against bf16, on the machine it runs on.

    .venv/bin/python benchmarks/model_step.py [--length 65536] [--repeats 3] [--device auto]

Prints one line per precision: best and median wall seconds per step over the repeats, the speed-up over fp32,
and the CPU seconds the process used per step (on a shared machine wall time counts the neighbours' work too;
CPU time / threads is what the step costs on an idle one).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from bridge.engine.devices import pick_device
from bridge.engine.unet import DanceDiffusionUNet, UNetConfig


def time_forward(model, x, t, device, autocast_dtype, repeats):
    def once():
        with torch.no_grad(), torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            model(x, t)
        if device.type == "cuda":
            torch.cuda.synchronize()

    once()  # warm-up: allocator, kernel selection
    times, cpu_times = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        once()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return min(times), statistics.median(times), min(cpu_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=65536)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    device = pick_device(args.device)
    torch.manual_seed(0)
    model = DanceDiffusionUNet(UNetConfig()).eval().to(device)
    x = torch.randn(1, 2, args.length, device=device)
    t = torch.tensor([0.7], device=device)
    print(f"{model.num_parameters / 1e6:.1f}M parameters, 1 x 2 x {args.length} samples on {device} "
          f"({torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f})")

    fp32_best = None
    for label, autocast_dtype, weights_dtype in (("fp32", None, torch.float32),
                                                 ("bf16 autocast", torch.bfloat16, torch.float32),
                                                 ("bf16 weights", None, torch.bfloat16)):
        model.to(weights_dtype)
        best, median, cpu = time_forward(model, x.to(weights_dtype), t, device, autocast_dtype, args.repeats)
        fp32_best = fp32_best or best
        print(f"{label:14} {best:6.2f} s/step best {median:6.2f} median {fp32_best / best:5.2f}x   "
              f"cpu {cpu:6.2f} s/step")

if __name__ == "__main__":
    main()
