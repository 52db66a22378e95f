"""Log lines that a flood of bad requests would repeat, held to a few per interval so they cannot fill the disk.

A hostile or broken sender can make the service log one warning per datagram (thousands a second). The lines are
told apart by their logger and their unformatted message; past ``burst`` of one kind in ``interval`` seconds the
rest are counted, not written, and the next one written says how many were held back.
"""

from __future__ import annotations

import logging
import threading
import time


class RepeatedLines(logging.Filter):
    def __init__(self, burst: int = 5, interval: float = 10.0, clock=time.monotonic):
        super().__init__()
        self.burst, self.interval, self.clock = burst, interval, clock
        self._windows: dict[tuple[str, object], list] = {}  # kind -> [window start, written, held back]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True  # errors are rare and each one matters
        key, now = (record.name, record.msg), self.clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window[0] >= self.interval:
                held = window[2] if window else 0
                if len(self._windows) > 1000:
                    self._windows.clear()  # kinds are few; this only bounds a pathological variety
                self._windows[key] = [now, 1, 0]
                if held:
                    record.msg = f"{record.getMessage()} ({held} more like it held back)"
                    record.args = None
                return True
            if window[1] < self.burst:
                window[1] += 1
                return True
            window[2] += 1
            return False
