"""`dd-bridge bench-latency`'s measuring: key press -> file on disk -> /dd/done, with and without prefetch, on a
warm service.

Runs a real service in this process (bridge.daemon.app: OSC on a free loopback port, a temporary sample folder) and
presses the key over OSC as the Max device does: `/dd/vary` of the selected clip. "With prefetch" presses at a
producer's pace (after the prefetch has refilled), which is what prefetch is for; "without" renders on every press.
Then what a producer meets right after selecting a clip: how long until the first prefetched variation is ready
(a press would be answered at once), and a burst of quick presses sent together: when the first and the last
reply came, and whether every press got exactly one.
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

from bridge.daemon.config import Config
from bridge.daemon.settings import Settings
from bridge.errors import BridgeError

log = logging.getLogger(__name__)

TARGET_P95_S = 0.020


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


def run(args) -> int:
    """Measure and print the table. ``args``: model, device, precision, clip (a path or None), presses, burst,
    steps and prefetch, as `dd-bridge bench-latency` parses them."""
    from bridge.daemon.app import App
    from bridge.transports.osc.client import OscClient

    with tempfile.TemporaryDirectory(prefix="dd-bridge-bench-") as scratch:
        scratch = Path(scratch)
        clip = args.clip.resolve() if args.clip else synthetic_hit(scratch / "hit.wav")
        config = replace(Config(), model=args.model, device=args.device, precision=args.precision,
                         folder=scratch / "samples", allowed_folders=(scratch,), osc_port=0, reply_port=None,
                         midi_port=None, render=Settings(steps=args.steps, prefetch=0))
        app = App(config).start()
        try:
            with OscClient("127.0.0.1", app.server.port) as client:
                results = _measure(client, app.service, str(clip), args)
        finally:
            app.stop(timeout=None)
    _report(app.service.renderer.info, clip, args, results)
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
    written = service.stats.latest()
    if written["path"] != reply.args[1] or not Path(written["path"]).is_file():
        raise BridgeError("the announced file is not on disk")
    return written["at"] - began_wall, done


def _measure(client, service, clip: str, args) -> dict:
    _ask(client, "/dd/select", clip)
    _ask(client, "/dd/vary")  # warm-up: first-call costs are not latency a producer sees twice
    renders = [service.stats.latest()["render_s"]]
    results = {"render": renders}
    if args.presses:
        results.update(_presses(client, service, clip, args))
        renders += [entry["render_s"] for entry in service.stats.snapshot()["recent"][: args.presses]]
    if args.prefetch:
        _ask(client, "/dd/set", "prefetch", args.prefetch)
        results["select"] = _select_to_ready(client, service, clip, args.prefetch)
    if args.burst:
        results["burst"] = _burst(client, service, clip, args.burst)
    return results


def _presses(client, service, clip: str, args) -> dict:
    log.info("without prefetch: %d presses, each rendering %d steps ...", args.presses, args.steps)
    cold = [_press(client, service) for _ in range(args.presses)]

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
        if not service.stats.latest()["prefetched"]:
            raise BridgeError("a press with a full prefetch was rendered, not taken from the prefetch")
    return {"cold": cold, "warm": warm}


def _start_afresh(client, service, clip: str) -> float:
    """Drop what is rendered ahead, wait for the device to be idle, then select the clip: the moment selected."""
    _ask(client, "/dd/cancel")
    deadline = time.monotonic() + 600
    while service.status()["running"] is not None:
        if time.monotonic() > deadline:
            raise BridgeError("the service did not go idle in 10 minutes")
        time.sleep(0.01)
    began = time.perf_counter()
    _ask(client, "/dd/select", clip)
    return began


def _select_to_ready(client, service, clip: str, depth: int) -> dict:
    """Seconds from /dd/select until the first prefetched variation is ready, and until all ``depth`` are."""
    log.info("select -> prefetch ready (%d deep) ...", depth)
    began = _start_afresh(client, service, clip)
    first = None
    deadline = time.monotonic() + 1200
    while (ready := service.status()["prefetched"].get(clip, 0)) < depth:
        if first is None and ready >= 1:
            first = time.perf_counter() - began
        if time.monotonic() > deadline:
            raise BridgeError("the prefetch did not fill in 20 minutes")
        time.sleep(0.005)
    full = time.perf_counter() - began
    return {"first": full if first is None else first, "full": full}


def _burst(client, service, clip: str, count: int) -> dict:
    """``count`` key presses sent together right after /dd/select; the seconds of each reply from the first send."""
    from bridge.transports.osc.client import OscClient
    log.info("a burst of %d presses right after /dd/select ...", count)
    with OscClient(*client.server) as burst:
        _start_afresh(client, service, clip)
        began = time.perf_counter()
        for index in range(count):
            burst.send("/dd/vary", f"#b{index}")
        replies: dict[str, list] = {}
        burst.socket.settimeout(1.0)
        last_heard = time.monotonic()
        while len(replies) < count and time.monotonic() - last_heard < 600:
            try:
                datagram = burst.socket.recv(65536)
            except OSError:
                continue
            last_heard = time.monotonic()
            for message in _messages(datagram):
                params = list(message.params)
                if message.address in ("/dd/done", "/dd/error") and params and str(params[0]).startswith("#b"):
                    replies.setdefault(params[0], []).append((time.perf_counter() - began, message.address))
    answers = [answer for answered in replies.values() for answer in answered]
    return {"presses": count, "answered": len(replies), "twice": sum(len(a) > 1 for a in replies.values()),
            "done": sorted(at for at, address in answers if address == "/dd/done"),
            "refused": sorted(at for at, address in answers if address == "/dd/error")}


def _messages(datagram: bytes):
    from pythonosc.osc_packet import OscPacket
    try:
        return [timed.message for timed in OscPacket(datagram).messages]
    except Exception:
        return []


def _report(info, clip: Path, args, results: dict) -> None:
    def row(name: str, pairs) -> float:
        files, dones = [p[0] for p in pairs], [p[1] for p in pairs]
        cells = [percentile(values, q) * 1e3 for values in (files, dones) for q in (50, 95)]
        print(f"{name:<22}" + "".join(f"{cell:>14.1f}" for cell in cells))
        return percentile(dones, 95)

    print(f"model {info.name} ({info.parameters:,} parameters) on {info.device}, {info.precision}; "
          f"{args.steps} steps; clip {clip.name}; {args.presses} presses per mode")
    print(f"render of one variation: median {statistics.median(results['render']):.3f} s")
    if "cold" in results:
        print(f"{'ms, from the press':<22}" + "".join(f"{h:>14}" for h in ("file p50", "file p95", "/dd/done p50",
                                                                               "/dd/done p95")))
        cold = row("without prefetch", results["cold"])
        warm = row(f"with prefetch ({args.prefetch})", results["warm"])
        print(f"with prefetch / without (p95 /dd/done): 1 : {cold / warm:.0f}")
        verdict = "met" if warm < TARGET_P95_S else "NOT met"
        print(f"target p95 with prefetch < {TARGET_P95_S * 1e3:.0f} ms: {verdict}")
    if "select" in results:
        select = results["select"]
        print(f"/dd/select -> first prefetched variation ready: {select['first']:.2f} s; "
              f"all {args.prefetch}: {select['full']:.2f} s")
    if "burst" in results:
        burst, done, refused = results["burst"], results["burst"]["done"], results["burst"]["refused"]
        files = (f"first /dd/done {done[0]:.2f} s, median {statistics.median(done):.2f} s, last {done[-1]:.2f} s"
                 if done else "no /dd/done")
        print(f"burst of {burst['presses']} presses right after /dd/select: {files}; {len(done)} done, "
              f"{len(refused)} refused (busy){f' within {refused[-1]:.2f} s' if refused else ''}; "
              f"{burst['answered']} of {burst['presses']} answered, {burst['twice']} more than once")
