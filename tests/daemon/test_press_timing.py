"""When answers come: each of a burst of merged key presses as soon as its own variation is written, and the first
prefetched variation after /dd/select after one render, not a device batch. Real UDP, the micro model."""

from __future__ import annotations

import statistics
import time

from bridge.daemon.renderer import Renderer
from tests.support.service import Listener, micro_model, running_service, service_config

PRESSES = 20


def test_twenty_quick_presses_are_each_answered_when_their_own_variation_is_written(tmp_path, renderer, drum):
    """The presses come right after /dd/select: most merge into one job; none waits for the whole of it."""
    listener = Listener()
    try:
        with running_service(service_config(tmp_path, render={"steps": 4, "prefetch": 2}), renderer) as svc:
            listener.send(svc.port, "/dd/select", "#select", str(drum))
            listener.wait_for(lambda m: m[0] == "/dd/ack")
            began = time.monotonic()
            for index in range(PRESSES):
                listener.send(svc.port, "/dd/vary", f"#p{index}")
            replies = {}
            deadline = time.monotonic() + 300
            while len(replies) < PRESSES and time.monotonic() < deadline:
                for address, args in list(listener.messages):
                    if address in ("/dd/done", "/dd/error") and str(args[0]).startswith("#p"):
                        replies.setdefault(args[0], time.monotonic() - began)
                time.sleep(0.002)
            finals = [m for m in listener.messages if m[0] in ("/dd/done", "/dd/error") and m[1][0] != "#select"]
            assert sorted(args[0] for _, args in finals) == sorted(f"#p{i}" for i in range(PRESSES))  # one each
            assert all(address == "/dd/done" and len(args) == 3 for address, args in finals)
            status = svc.status()
            assert status["counters"]["coalesced"] >= 1  # presses were merged: the case in question
            render = statistics.median(entry["render_s"] for entry in status["recent"] if not entry["prefetched"])
        times = sorted(replies.values())
        # One render, at most two (the prefetch's under way, then the press's), not the whole merged job.
        assert times[0] < 2.5 * render + 0.5, (times, render)
        # Answers come one render apart, not together at the end of the merged job.
        assert times[0] < 0.3 * times[-1] and statistics.median(times) < 0.75 * times[-1], times
    finally:
        listener.close()


def test_the_first_prefetched_variation_is_ready_after_one_render(tmp_path, drum):
    """On a device that renders 4 at once (a GPU; here a CPU told to), the first is still rendered alone."""
    batched = Renderer(micro_model(), "micro", device="cpu", max_batch=4)
    with running_service(service_config(tmp_path, render={"steps": 20, "prefetch": 4}), batched) as svc:
        svc.ask("/dd/select", str(drum))
        seen = []
        deadline = time.monotonic() + 300
        while (ready := svc.service.status()["prefetched"].get(str(drum), 0)) < 4 and time.monotonic() < deadline:
            if ready and ready not in seen:
                seen.append(ready)
            time.sleep(0.002)
        assert ready == 4
        assert seen and seen[0] == 1, seen  # one variation ready before the rest of the batch
        [path] = svc.ask("/dd/vary").args[1:]  # and a press takes it
        assert path.endswith("kick var 001.wav")
