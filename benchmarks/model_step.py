"""Seconds per sampler step of the full-size Dance Diffusion model (one forward pass = one step for every sampler
but heun's second-order steps), fp32 against bf16, on the machine it runs on.

    .venv/bin/python benchmarks/model_step.py [--length 65536] [--repeats 3] [--device auto]

Prints one line per precision: best and median seconds per step over the repeats, and the speed-up over fp32.
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
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


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

    fp32_best, fp32_median = time_forward(model, x, t, device, None, args.repeats)
    print(f"fp32            {fp32_best:6.2f} s/step best  {fp32_median:6.2f} median  1.00x")
    bf16_best, bf16_median = time_forward(model, x, t, device, torch.bfloat16, args.repeats)
    print(f"bf16 autocast   {bf16_best:6.2f} s/step best  {bf16_median:6.2f} median  {fp32_best / bf16_best:.2f}x")
    model_bf16 = model.to(torch.bfloat16)
    bf16w_best, bf16w_median = time_forward(model_bf16, x.bfloat16(), t, device, None, args.repeats)
    print(f"bf16 weights    {bf16w_best:6.2f} s/step best  {bf16w_median:6.2f} median  {fp32_best / bf16w_best:.2f}x")


if __name__ == "__main__":
    main()
