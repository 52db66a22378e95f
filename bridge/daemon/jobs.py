"""What the render thread works on: one job type per kind, and the requests waiting for each (coalesced presses
share a job).

A job's ``waiters`` (and a vary job's ``taken`` and ``unsent``) are guarded by the service's lock
(bridge.daemon.state); ``cancelled`` is an Event and ``progress`` a float that only the render thread writes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

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


@dataclass(eq=False, kw_only=True)
class Job:
    """What every kind has: who waits, a cancel flag polled between sampler steps, the progress of its render."""

    kind: ClassVar[str]  # the name replies and status use: "/dd/done vary ...", "/dd/progress vary 0.5"
    waiters: list[Waiter]
    cancelled: threading.Event = field(default_factory=threading.Event)
    progress: float = 0.0

    @property
    def total(self) -> int:
        return sum(waiter.count for waiter in self.waiters)

    @property
    def to_render(self) -> int:
        return self.total

    def merges_with(self, other: Job) -> bool:
        return False


@dataclass(eq=False, kw_only=True)
class Destination:
    """Where a requested job's files go and in which format."""

    folder: Path
    format: str = constants.DEFAULT_OUTPUT_FORMAT


@dataclass(eq=False, kw_only=True)
class VaryJob(Job, Destination):
    kind: ClassVar[str] = "vary"
    source: Source
    key: RenderKey
    seed: int | None = None  # a per-request seed: outputs get seed, seed + 1, ...
    taken: list[Variation] = field(default_factory=list)  # prefetched variations already claimed
    unsent: list[Variation] = field(default_factory=list)  # taken or rendered, not yet written for a waiter
    audition: bool = False  # played and held back for a keep press instead of written (bridge.daemon.audition)
    velocity: int = 127  # the press's, for audition's level

    @property
    def to_render(self) -> int:
        return self.total - len(self.taken)

    def merges_with(self, other: Job) -> bool:
        """Identical key presses in a flood become one job (each still gets its own reply)."""
        return (isinstance(other, VaryJob) and self.seed is None and other.seed is None
                and (self.source, self.key, self.folder, self.format, self.audition, self.velocity)
                == (other.source, other.key, other.folder, other.format, other.audition, other.velocity)
                and self.total + other.total <= constants.MAX_COUNT)


@dataclass(eq=False, kw_only=True)
class GenerateJob(Job, Destination):
    kind: ClassVar[str] = "generate"
    key: RenderKey
    seconds: float | None = None  # None: the model's window
    seed: int | None = None


@dataclass(eq=False, kw_only=True)
class InterpolateJob(Job, Destination):
    kind: ClassVar[str] = "interpolate"
    a: Source
    b: Source
    key: RenderKey


@dataclass(eq=False, kw_only=True)
class RepaintJob(Job, Destination):
    kind: ClassVar[str] = "repaint"
    source: Source
    key: RenderKey
    start: float
    end: float
    noise: float = 1.0
    seed: int | None = None


@dataclass(eq=False, kw_only=True)
class ExtendJob(Job, Destination):
    kind: ClassVar[str] = "extend"
    source: Source
    key: RenderKey
    seconds: float
    length: dict = field(default_factory=dict)  # how it was asked, for the recipe: {"seconds": T} or bars, bpm
    seed: int | None = None


@dataclass(eq=False, kw_only=True)
class PrefetchJob(Job):
    """Variations of the selected clip rendered ahead: no one's request (its waiter only hears progress)."""

    kind: ClassVar[str] = "prefetch"
    source: Source
    key: RenderKey

    def feeds(self, job: Job) -> bool:
        """Whether ``job`` is a press this prefetch renders for: the same clip at the same settings, no own seed."""
        return isinstance(job, VaryJob) and job.seed is None and (job.source, job.key) == (self.source, self.key)


@dataclass(eq=False, kw_only=True)
class ModelJob(Job):
    """/dd/set model: loaded on the render thread (it cannot be cancelled), acknowledged once loaded."""

    kind: ClassVar[str] = "model"
    model: str | None
