"""`dd-bridge bench-latency`: key press -> file on disk -> /dd/done, with and without prefetch, on a warm service.

Runs a real service in this process (OSC on a free loopback port, a temporary sample folder) and presses the
key over OSC as the Max device does: `/dd/vary` of the selected clip. "With prefetch" presses at a producer's
pace (after the prefetch has refilled), which is what prefetch is for; "without" renders on every press.
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bridge import constants
from bridge.daemon.config import Config
from bridge.daemon.settings import Settings, validate
from bridge.errors import BridgeError

log = logging.getLogger(__name__)

TARGET_P95_S = 0.020


def register(subparsers) -> None:
    bench = subparsers.add_parser(
        "bench-latency", help="measure key press -> file -> /dd/done, with and without prefetch",
        description="Start a service in this process and time variation requests over loopback OSC: p50 and p95 "
                    "of press -> file written and press -> /dd/done received, with prefetch and without, and the "
                    "render time of one variation. Target with prefetch: p95 under 20 ms, whatever the model.")
    bench.add_argument("--model", default=None, metavar="M", help="model card name or path (default: the bundled "
                                                                  "model, or a random stand-in where it is missing)")
    bench.add_argument("--device", default="auto", choices=("auto", "cuda", "mps", "cpu"))
    bench.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"))
    bench.add_argument("--clip", type=Path, default=None, metavar="FILE",
                       help="the clip to vary (default: a 1-second synthetic drum hit)")
    bench.add_argument("--presses", type=lambda v: validate("count", v), default=10, metavar="N",
                       help="key presses per mode (default: %(default)s)")
    bench.add_argument("--steps", type=lambda v: validate("steps", v), default=constants.DEFAULT_STEPS,
                       metavar="S", help="sampler steps (default: %(default)s)")
    bench.add_argument("--prefetch", type=lambda v: validate("prefetch", v), default=4, metavar="D",
                       help="prefetch depth (default: %(default)s)")
    bench.set_defaults(run=run_bench)


def synthetic_hit(path: Path, sample_rate: int = 48000) -> Path:
    """A kick-like hit: a falling sine with a noisy click, 1 s, stereo."""
    from bridge.engine.audio import Clip, write_audio
    t = np.arange(sample_rate) / sample_rate
    body = np.sin(2 * np.pi * (50 + 100 * np.exp(-t * 30)) * t) * np.exp(-t * 6)
    click = np.random.default_rng(0).standard_normal(t.size) * np.exp(-t * 200) * 0.3
    mono = (0.8 * (body + click)).astype(np.float32)
    return write_audio(path, Clip(np.stack([mono, mono], axis=1), sample_rate), "pcm24")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def run_bench(args) -> int:
    from bridge.daemon.renderer import Renderer
    from bridge.daemon.service import Service
    from bridge.transports.osc.client import OscClient
    from bridge.transports.osc.server import OscServer

    renderer = Renderer.load(args.model, args.device, args.precision)
    with tempfile.TemporaryDirectory(prefix="dd-bridge-bench-") as scratch:
        scratch = Path(scratch)
        clip = args.clip.resolve() if args.clip else synthetic_hit(scratch / "hit.wav")
        config = replace(Config(), folder=scratch / "samples", allowed_folders=(scratch,), osc_port=0,
                         reply_port=None, midi_port=None, render=Settings(steps=args.steps, prefetch=0))
        service = Service(config, renderer).start()
        server = OscServer(service.handle, "127.0.0.1", 0).start()
        try:
            with OscClient("127.0.0.1", server.port) as client:
                results = _measure(client, service, str(clip), args)
        finally:
            service.stop()
            server.stop()
    _report(renderer.info, clip, args, results)
    return 0


def _ask(client, address: str, *args, timeout: float = 600.0):
    reply = client.request(address, list(args), timeout=timeout)
    if reply is None or not reply.ok:
        raise BridgeError(f"{address} failed: {reply.args if reply else 'no reply'}")
    return reply


def _prefetched(client, clip: str) -> int:
    return json.loads(_ask(client, "/dd/status").args[0])["prefetched"].get(clip, 0)


def _press(client, service) -> tuple[float, float]:
    """One key press: seconds until the file was written and until /dd/done arrived."""
    began_wall, began = time.time(), time.perf_counter()
    reply = _ask(client, "/dd/vary")
    done = time.perf_counter() - began
    written = service.recent[0]
    if written["path"] != reply.args[1] or not Path(written["path"]).is_file():
        raise BridgeError("the announced file is not on disk")
    return written["at"] - began_wall, done


def _measure(client, service, clip: str, args) -> dict:
    _ask(client, "/dd/select", clip)
    _ask(client, "/dd/vary")  # warm-up: first-call costs are not latency a producer sees twice
    log.info("without prefetch: %d presses, each rendering %d steps ...", args.presses, args.steps)
    cold = [_press(client, service) for _ in range(args.presses)]
    renders = [entry["render_s"] for entry in list(service.recent)[: args.presses]]

    _ask(client, "/dd/set", "prefetch", args.prefetch)
    warm = []
    log.info("with prefetch %d: %d presses at a producer's pace ...", args.prefetch, args.presses)
    for _ in range(args.presses):
        deadline = time.monotonic() + 600
        while _prefetched(client, clip) < args.prefetch:
            if time.monotonic() > deadline:
                raise BridgeError("the prefetch did not fill in 10 minutes")
            time.sleep(0.02)
        warm.append(_press(client, service))
        if not service.recent[0]["prefetched"]:
            raise BridgeError("a press with a full prefetch was rendered, not taken from the prefetch")
    return {"cold": cold, "warm": warm, "render": renders}


def _report(info, clip: Path, args, results: dict) -> None:
    def row(name: str, pairs) -> float:
        files, dones = [p[0] for p in pairs], [p[1] for p in pairs]
        cells = [percentile(values, q) * 1e3 for values in (files, dones) for q in (50, 95)]
        print(f"{name:<22}" + "".join(f"{cell:>14.1f}" for cell in cells))
        return percentile(dones, 95)

    print(f"model {info.name} ({info.parameters:,} parameters) on {info.device}, {info.precision}; "
          f"{args.steps} steps; clip {clip.name}; {args.presses} presses per mode")
    print(f"render of one variation: median {statistics.median(results['render']):.3f} s")
    print(f"{'ms, from the press':<22}" + "".join(f"{h:>14}" for h in ("file p50", "file p95", "/dd/done p50",
                                                                           "/dd/done p95")))
    cold = row("without prefetch", results["cold"])
    warm = row(f"with prefetch ({args.prefetch})", results["warm"])
    print(f"with prefetch / without (p95 /dd/done): 1 : {cold / warm:.0f}")
    verdict = "met" if warm < TARGET_P95_S else "NOT met"
    print(f"target p95 with prefetch < {TARGET_P95_S * 1e3:.0f} ms: {verdict}")
