"""Audition: the service as an instrument. A vary press plays its variation at once and holds it back (written
ahead in the staging folder, not in the sample folder); a keep press writes the last one heard (or the last N)
into the sample folder and announces it as any vary result; /dd/play plays any file.

A press of Count N plays its N variations one after another, GAP_SECONDS apart, so that each is heard and a keep
of N writes what was heard; the next press cuts them (the one playing fades out, those still to come are not
played). A keep takes only what was heard since the last keep: what was heard before it was passed over, and a
second keep press (a pad's bounce, "did it work?") answers "already kept" instead of writing one of those. A keep
that fails gives back what it did not write, to be kept again.

One Player (bridge.playback) on the configured output, opened when audition is switched on (or at the first
/dd/play), on a thread of its own that also does the playing, so neither the start, the front ends nor the writer
wait on the audio output. A press is answered once its variations are with the output ("/dd/ack vary heard N"). An
output that cannot be had, or is lost (its server stopped, the interface unplugged), is said in the press's answer
("/dd/error /dd/vary not heard: ...") and in the status, which reads the output as it is now; the service runs on:
presses are still held back and kept, only not heard, and the next sound tries the output again (one within
bridge.playback.player.RETRY_SECONDS of a failed try is answered at once with its reason instead).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bridge.daemon.jobs import VaryJob
from bridge.daemon.prefetch import Variation
from bridge.daemon.writer import discard
from bridge.engine.audio import Clip
from bridge.errors import BridgeError, ConfigError
from bridge.playback.player import Player

log = logging.getLogger(__name__)

HEARD = 16  # variations held back for a keep press; the oldest are let go (their staged files removed)
STOPPING = "the service is stopping"  # why a sound asked for after close() is not played
GAP_SECONDS = 0.15  # the silence between two variations of one press


class Press:
    """A press's variations on their way to the output, answered once: ``heard(count)`` when the last of them is
    with the output, or ``failed(message)`` at the first that cannot be played (the rest are then not tried: the
    output is gone, and opening it again for each would hold up the next press)."""

    def __init__(self, count: int, heard: Callable[[int], None], failed: Callable[[str], None]):
        self.count, self._heard, self._failed = count, heard, failed
        self.played = 0
        self.error: str | None = None

    def started(self) -> None:
        self.played += 1
        if self.played == self.count:
            self._heard(self.count)

    def failed(self, message: str) -> None:
        if self.error is None:
            self.error = message
            self._failed(message)


@dataclass(frozen=True)
class Heard:
    """A variation played and held back: the press that made it says where and how a keep writes it."""

    job: VaryJob
    variation: Variation
    order: int = 0  # when it was heard: a failed keep puts it back in its place


class Audition:
    def __init__(self, output: str | int | None, latency: str | float):
        self.player = Player(output, latency=latency)
        self._heard: deque[Heard] = deque()  # heard since the last keep
        self._heard_count = 0
        self._kept = False  # a keep took what was heard, and nothing was heard since
        self._lock = threading.Lock()
        self._playing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audio")

    def prepare(self) -> None:
        """Open the output ahead of the first sound (on the audio thread)."""
        def run() -> None:
            try:
                device = self.player.open()
            except BridgeError as error:
                log.warning("audio: no output (%s); /dd/play and audition play nothing until there is one", error)
                return
            log.info("audio: playing through %s, %d Hz", device.label, device.rate)
        try:
            self._playing.submit(run)
        except RuntimeError:
            pass  # the service is stopping

    def close(self) -> None:
        self._playing.shutdown(wait=True)
        self.player.close()
        with self._lock:
            heard, self._heard = list(self._heard), deque()
        for item in heard:
            discard(item.variation.staged)

    def play(self, sound: Clip | Path, failed: Callable[[str], None] | None = None,
             started: Callable[[], None] | None = None, velocity: int = 127, after: float | None = None,
             press: Press | None = None) -> None:
        """Play on the audio thread: ``started`` once the output has it, ``failed(message)`` if it cannot; with
        ``after`` (seconds), once what is queued has played and that much silence, cutting nothing. Of a ``press``
        whose sound before it failed: not tried."""
        def run() -> None:
            if press is not None and press.error is not None:
                return
            try:
                self.player.play(sound, velocity=velocity, after=after)
            except BridgeError as error:
                log.warning("audio: %s", error)
                if failed:
                    failed(str(error))
                return
            except Exception as error:  # never let one sound take the audio thread down
                log.exception("audio: playing failed")
                if failed:
                    failed(f"internal error: {type(error).__name__}: {error}")
                return
            if started:
                started()
        try:
            self._playing.submit(run)
        except RuntimeError:  # shut down: the service is stopping
            if failed:
                failed(STOPPING)

    def hear(self, job: VaryJob, variation: Variation, *, follows: bool = False, press: Press | None = None) -> None:
        """Play a variation of a press (at its velocity's level) and hold it back for a keep press: cutting what
        plays, or with ``follows`` (the press's second variation and on) after the one before it, GAP_SECONDS
        apart. ``press`` hears whether it reached the output; held back either way."""
        with self._lock:
            self._heard_count += 1
            self._heard.append(Heard(job, variation, self._heard_count))
            self._kept = False
            dropped = self._trim()
        for item in dropped:
            discard(item.variation.staged)
        self.play(variation.clip, velocity=job.velocity, after=GAP_SECONDS if follows else None, press=press,
                  started=press.started if press else None, failed=press.failed if press else None)

    def take(self, count: int) -> tuple[list[Heard], list[Heard]]:
        """The last ``count`` heard since the last keep, in the order they were heard; they are no longer held
        back, and those heard before them are let go (passed over), returned second: the caller discards their
        staged files where a disk may keep it waiting (the writer thread, not the door's). ConfigError when a keep
        took them already."""
        with self._lock:
            if not self._heard and self._kept:
                raise ConfigError("already kept: vary again, then keep")
            taken = [self._heard.pop() for _ in range(min(count, len(self._heard)))]
            passed, self._heard = list(self._heard), deque()
            self._kept = bool(taken)
        return taken[::-1], passed

    def restore(self, items: list[Heard]) -> None:
        """Hold back again what a keep took and could not write, where it was heard, to be kept again."""
        with self._lock:
            self._heard = deque(sorted([*self._heard, *items], key=lambda item: item.order))
            self._kept = False
            dropped = self._trim()
        for item in dropped:
            discard(item.variation.staged)

    def _trim(self) -> list[Heard]:
        return [self._heard.popleft() for _ in range(max(0, len(self._heard) - HEARD))]

    def status(self) -> dict:
        """The output as it is now (None when there is none: ``error`` says why, e.g. "audio output lost: ..."),
        after a failed open the seconds until a press tries it again (``retry_seconds``: presses before then are
        answered at once with ``error``), the blocks it played too late (``underruns``, a crackle each), and the
        variations held back."""
        with self._lock:
            held = len(self._heard)
        device, retry = self.player.device, self.player.retry_in
        return {"output": device.label if device else None, "error": self.player.problem,
                "retry_seconds": None if retry is None else round(retry, 1),
                "underruns": self.player.underruns, "held": held}
