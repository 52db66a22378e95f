"""What the render thread works on: jobs, and the requests waiting for each (coalesced presses share a job)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bridge import constants
from bridge.daemon import requests as rq
from bridge.daemon.prefetch import RenderKey, Source, Variation
from bridge.errors import BridgeError

Reply = Callable[..., None]  # reply(address, *args): the transport adds the request id and sends


class Busy(BridgeError):
    """The queue is full; the request is refused rather than held in memory."""


def client_of(reply: Reply) -> object:
    return getattr(reply, "sender", None)  # the OSC transport's reply knows its sender; MIDI's has none


@dataclass(eq=False)
class Waiter:
    """One request waiting for a job's results; coalesced requests share a job."""

    reply: Reply
    request: rq.Request
    count: int

    @property
    def client(self) -> object:
        """Who asked: the OSC sender's (host, port), the same for every request from one socket (the Max device,
        one `dd-bridge send`); None for MIDI notes, which have no socket of their own."""
        return client_of(self.reply)

    def error(self, message: str) -> None:
        self.reply("/dd/error", self.request.address, message)

    def progress(self, name: str, fraction: float) -> None:
        # With a request id the transport puts it first: "/dd/progress <id> <fraction>"; else the job's kind.
        if self.request.request_id:
            self.reply("/dd/progress", float(fraction))
        else:
            self.reply("/dd/progress", name, float(fraction))


@dataclass(eq=False)
class Job:
    kind: str  # vary | generate | interpolate | prefetch | model
    waiters: list[Waiter]
    source: Source | None = None
    source_b: Source | None = None
    key: RenderKey | None = None
    seed: int | None = None  # a per-request seed: outputs get seed, seed + 1, ...
    taken: list[Variation] = field(default_factory=list)  # prefetched variations already claimed
    unsent: list[Variation] = field(default_factory=list)  # taken or rendered, not yet written for a waiter
    folder: Path | None = None
    format: str = constants.DEFAULT_OUTPUT_FORMAT
    seconds: float | None = None
    model: str | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def total(self) -> int:
        return sum(waiter.count for waiter in self.waiters)

    @property
    def to_render(self) -> int:
        return self.total - len(self.taken)

    def merges_with(self, other: "Job") -> bool:
        """Identical key presses in a flood become one job (each still gets its own reply)."""
        return (self.kind == other.kind == "vary" and self.seed is None and other.seed is None
                and (self.source, self.key, self.folder, self.format) == (other.source, other.key, other.folder,
                                                                          other.format)
                and self.total + other.total <= constants.MAX_COUNT)
