"""The door: where the transports hand requests to the service, to be handled one at a time in the order they came.

The transports' own threads (the OSC network thread, rtmidi's callback thread, MIDI's knob worker) only put a request
in and return; the door's thread ("door") runs ``Service.handle`` on it. Why a thread of its own: a request that
names a file looks at it first, and a look at a hung network share waits up to ``files.DISK_ANSWER_SECONDS``. On the
network thread that wait left every keep-alive unanswered (the Live device gives a silent service up after about
4 s, dropping what it waited for; REAPER's Follow selection switches itself off), and on rtmidi's callback thread it
could hang the service on an unplug (python-rtmidi closes a port holding the GIL while it joins the thread of the
callback). Ping and hello, which look at nothing and are how the DAWs tell that the service is there, and status,
which a producer asks for when something seems stuck (it shows what waits at the door), are answered at once on the
caller's thread; everything else keeps its order (a setting before the press after it).

Bounded: at most ``CAPACITY`` requests wait; one more is answered at once with an error (only a flood, or a disk
that stopped answering, ever fills it), except /dd/cancel, which is always let in: it is how a client gets out of
a flood of its own. What waits, what was turned away and the request in hand (with how long it has been) are in
``status`` (/dd/status -> door), so a door held up by a disk shows there.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable

from bridge.daemon import requests as rq
from bridge.errors import described

log = logging.getLogger(__name__)

AT_ONCE = (rq.Ping, rq.Hello, rq.Status)  # the keep-alives and the status: answered whatever waits at the door
ALWAYS_IN = (rq.Cancel,)  # let in however many wait
CAPACITY = 256  # requests waiting; a DAW sends a few a second, and each is handled in milliseconds unless a disk hangs
STOP_WAIT_SECONDS = 1.0  # stop() waits this long for a request being handled (a look waits at most its own bound)

Handle = Callable[[rq.Request, Callable], None]


class Door:
    """Requests in (``handle``, any thread), handled in order on the door's thread by ``inner`` (Service.handle).
    ``on_error(address, message)`` hears of a request that failed unexpectedly (Stats, like the network thread's)."""

    def __init__(self, inner: Handle, on_error: Callable[[str, str], None] | None = None, capacity: int = CAPACITY):
        self.inner = inner
        self.on_error = on_error
        self.capacity = capacity
        self.refused = 0  # requests turned away because the door was full
        self._waiting: queue.Queue = queue.Queue()  # bounded by ``capacity`` in handle (cancel always let in)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._in_hand: tuple[str, float] | None = None  # the request being handled: its address, since when

    def start(self) -> "Door":
        self._thread = threading.Thread(target=self._serve, name="door", daemon=True)
        self._thread.start()
        return self

    def handle(self, request: rq.Request, reply: Callable) -> None:
        """Take a request from a transport; never waits on the service."""
        if isinstance(request, AT_ONCE):
            self.inner(request, reply)
            return
        if self._closed:
            reply("/dd/error", request.address, "the service is stopping")
            return
        if self._waiting.qsize() >= self.capacity and not isinstance(request, ALWAYS_IN):
            self.refused += 1
            reply("/dd/error", request.address, f"busy: {self.capacity} requests are waiting; try again in a moment")
            return
        self._waiting.put((request, reply))

    @property
    def waiting(self) -> int:
        return self._waiting.qsize()

    def status(self) -> dict:
        """What waits, what was turned away, and the request in hand with how long it has been (a disk holding it)."""
        in_hand = self._in_hand  # once: the door thread replaces it
        return {"waiting": self.waiting, "refused": self.refused,
                "in_hand": in_hand[0] if in_hand else None,
                "in_hand_seconds": round(time.monotonic() - in_hand[1], 1) if in_hand else None}

    def stop(self) -> None:
        """Answer what still waits ("the service is stopping") and let the thread go; waits at most
        STOP_WAIT_SECONDS for the request in hand."""
        self._closed = True
        while True:
            try:
                request, reply = self._waiting.get_nowait()
            except queue.Empty:
                break
            self._answer(reply, request, "the service is stopping")
        self._waiting.put((None, None))  # wakes the thread; it leaves on it
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(STOP_WAIT_SECONDS)

    def _serve(self) -> None:
        while True:
            request, reply = self._waiting.get()
            if request is None:
                return
            if self._closed:
                self._answer(reply, request, "the service is stopping")
                continue
            self._in_hand = (request.address, time.monotonic())
            try:
                self.inner(request, reply)
            except Exception as error:  # one bad request never takes the door down (BridgeErrors are answered inside)
                log.exception("request %s failed", request.address)
                message = f"internal error: {described(error)}"
                if self.on_error:
                    self.on_error(request.address, message)
                self._answer(reply, request, message)
            finally:
                self._in_hand = None

    @staticmethod
    def _answer(reply: Callable, request: rq.Request, message: str) -> None:
        try:
            reply("/dd/error", request.address, message)
        except Exception:
            log.exception("the answer to %s could not be sent", request.address)
