"""What the service has done, for /dd/status: counters, the recent renders, the last error.

Every thread writes here (front ends count requests and errors, the render and writer threads count renders and
note files), so the numbers sit behind a lock of their own: a count is never lost, and a status poll never waits
on the service's main lock to read them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from pathlib import Path

from bridge.transports.osc.protocol import excerpt

log = logging.getLogger(__name__)

RECENT = 10


class Stats:
    def __init__(self):
        self._lock = threading.Lock()
        self._counters: Counter = Counter()
        self._recent: deque = deque(maxlen=RECENT)
        self._last_error: str | None = None
        self.started = time.time()

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counters[name] += amount

    def note_error(self, address: str, message: str, quiet: bool = False) -> None:
        with self._lock:
            # shown in /dd/status: an error quoting a 65 kB path would make that reply too large to send
            self._last_error = excerpt(f"{address}: {message}")
            self._counters["errors"] += 1
        log.log(logging.DEBUG if quiet else logging.WARNING, "%s: %s", address, message)  # a flood: counted, not logged

    def note_render(self, kind: str, path: Path, seed, seconds: float, prefetched: bool) -> None:
        with self._lock:
            # "at" is not rounded: bench-latency subtracts the moment of the press from it, and a press taken from
            # the prefetch writes its file within a millisecond (rounded, it read -0.3 ms once and broke its table)
            self._recent.appendleft({"kind": kind, "path": str(path), "seed": seed, "render_s": round(seconds, 3),
                                     "prefetched": prefetched, "at": time.time()})
        log.info("%s %s", kind, path)

    def latest(self) -> dict | None:
        """The last file written, or None."""
        with self._lock:
            return dict(self._recent[0]) if self._recent else None

    def snapshot(self) -> dict:
        """The status fields, copied (a deque changed while copied raises)."""
        with self._lock:
            return {"last_error": self._last_error, "recent": list(self._recent), "counters": dict(self._counters),
                    "uptime_s": round(time.time() - self.started, 1)}
