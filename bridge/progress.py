"""Progress bars on stderr for the long commands (render, sheet, `models get`, train), drawn by tqdm.

One rule for all of them, here: a bar is shown while the ``bridge`` logger is at INFO (``--quiet`` hides it with
the other logs). On a terminal it is redrawn in place and log lines print above it; in a log file or a pipe it is a
plain line every ``LINE_EVERY_S`` seconds and the last, so a log holds readable lines, not carriage returns.
Nothing is drawn before the first step is done: a command refused at its start prints only its error.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

LINE_EVERY_S = 10.0  # a line in a log at most this often: hours of training stay a few hundred lines
tqdm.monitor_interval = 0  # no monitor thread: every report redraws or not by itself (mininterval)
_TAIL = " [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


class Bar:
    """``bar(done, total)`` draws the work done so far (callable as the engine's and the download's progress);
    ``note`` adds a value after the speed (training's loss). Close it when the work ends (or use it in a with)."""

    def __init__(self, label: str, *, counts: str = "{n_fmt}/{total_fmt}", unit: str = "it",
                 unit_scale: bool = False, stream: TextIO | None = None):
        self.label, self.counts, self.unit, self.unit_scale = label, counts, unit, unit_scale
        self.stream = stream or sys.stderr
        self.live = _is_terminal(self.stream)
        self.enabled = logging.getLogger("bridge").isEnabledFor(logging.INFO)
        self._bar: tqdm | None = None
        self._logs = contextlib.ExitStack()

    def __call__(self, done: int, total: int | None = None, note: str | None = None) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            self._bar = self._open(done, total)
        elif total != self._bar.total:
            self._bar.total = total
        if note is not None:
            self._bar.set_postfix_str(note, refresh=False)
        self._bar.update(done - self._bar.n)  # tqdm counts steps; callers report totals so far

    def _open(self, done: int, total: int | None) -> tqdm:
        """The bar, from the first report on: its rate counts from there (a resumed download or training run)."""
        if self.live:  # log lines go above the bar instead of through it
            self._logs.enter_context(logging_redirect_tqdm([logging.getLogger()]))
        head = "{l_bar}{bar}| " if self.live else "{desc}: {percentage:3.0f}% "
        layout = None if total is None else head + self.counts + _TAIL  # no total: tqdm's count and speed
        return tqdm(desc=self.label, total=total, initial=done, unit=self.unit, unit_scale=self.unit_scale,
                    unit_divisor=1000, file=self.stream if self.live else _Lines(self.stream), dynamic_ncols=True,
                    mininterval=0.1 if self.live else LINE_EVERY_S, bar_format=layout)

    def close(self) -> None:
        """The final state drawn once more (and left on screen); log lines go back to their own stream."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._logs.close()

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Lines:
    """A stream for tqdm that turns each redraw ("\\r" + text + padding) into a line of its own, once."""

    def __init__(self, stream: TextIO):
        self.stream, self.last = stream, ""

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        if line and line != self.last:
            self.stream.write(line + "\n")
            self.last = line

    def flush(self) -> None:
        self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-less stream
        return False
