"""`dd-bridge bench-latency`: key press -> file -> /dd/done, with and without prefetch, on a warm service; the
measuring is bridge.bench.latency."""

from __future__ import annotations

from pathlib import Path

from bridge import constants
from bridge.cli.arguments import bounded_int
from bridge.daemon.settings import validate


def register(subparsers) -> None:
    bench = subparsers.add_parser(
        "bench-latency", help="measure key press -> file -> /dd/done, with and without prefetch",
        description="Start a service in this process and time variation requests over loopback OSC: p50 and p95 "
                    "of press -> file written and press -> /dd/done received, with prefetch and without, and the "
                    "render time of one variation. Target with prefetch: p95 under 20 ms, whatever the model.")
    bench.add_argument("--model", default=None, metavar="M", help="model card name or path (default: the bundled "
                                                                  "model, or a random stand-in where it is missing)")
    bench.add_argument("--device", default="auto", choices=constants.DEVICES)
    bench.add_argument("--precision", default="auto", choices=constants.AUTO_PRECISIONS)
    bench.add_argument("--clip", type=Path, default=None, metavar="FILE",
                       help="the clip to vary (default: a 1-second synthetic drum hit)")
    bench.add_argument("--presses", type=bounded_int(0, constants.MAX_COUNT), default=10, metavar="N",
                       help="key presses per mode (default: %(default)s; 0: skip the two modes)")
    bench.add_argument("--burst", type=bounded_int(0, 1000), default=20, metavar="N",
                       help="quick presses sent together right after /dd/select (default: %(default)s; 0: none)")
    bench.add_argument("--steps", type=lambda v: validate("steps", v), default=constants.DEFAULT_STEPS,
                       metavar="S", help="sampler steps (default: %(default)s)")
    bench.add_argument("--prefetch", type=lambda v: validate("prefetch", v), default=constants.DEFAULT_PREFETCH, metavar="D",
                       help="prefetch depth (default: %(default)s)")
    bench.set_defaults(run=run_bench)


def run_bench(args) -> int:
    from bridge.bench import latency
    return latency.run(args)
