"""A real audio server with no hardware, and a second client that records what reaches its speakers.

JackServer runs jackd with its dummy driver (Debian's jackd2): a clock and two playback ports that go nowhere,
under a name of its own so tests never meet a user's server. Every process started while it runs finds it through
JACK_DEFAULT_SERVER (PortAudio asks libjack, which reads it). It runs synchronously (-S): each cycle waits for
every client, so on a busy machine a late client delays the clock instead of losing samples, and what is recorded
is what was played, sample for sample.

Recorder is a JACK client (the JACK-Client package) whose inputs are fed by whatever is connected to the server's
playback ports, recorded with the server's frame clock: a press stamped with Recorder.now() and the first sample
heard share one clock.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from dataclasses import dataclass

import jack
import numpy as np

SPEAKERS = ("system:playback_1", "system:playback_2")
MONITORS = ("system:monitor_1", "system:monitor_2")  # the dummy driver's copy of what reached the speakers


NAMES = [f"dd-bridge-test-{n}" for n in range(1, 5)]  # a fixed few (see JackServer)
_PR_SET_PDEATHSIG = 1


class JackServer:
    """jackd -d dummy at rate with period-frame cycles, as a context manager that sets JACK_DEFAULT_SERVER.

    libjack keeps at most 8 servers per user in a registry that only a server of the same name cleans up after
    one that was killed: so the names come from a fixed few (the first one free), never a fresh one per run, and
    jackd is told to stop with its parent, so a test run that dies does not leave it running."""

    def __init__(self, rate: int = 48000, period: int = 256):
        self.rate, self.period = rate, period
        self.name: str | None = None
        self.process: subprocess.Popen | None = None
        self._previous = None

    def start(self) -> JackServer:
        for name in [self.name] if self.name else NAMES:
            if self._start(name):
                self.name = name
                if os.environ.get("JACK_DEFAULT_SERVER") != name:  # not on a restart: keep what was there before
                    self._previous = os.environ.get("JACK_DEFAULT_SERVER")
                os.environ["JACK_DEFAULT_SERVER"] = name
                return self
        raise RuntimeError(f"jackd (dummy driver) did not start as any of {NAMES}: is jackd2 installed? "
                           f"(`jackd -n {NAMES[0]} -d dummy` says why)")

    def _start(self, name: str) -> bool:
        if _answers(name):  # another server has that name (the probe would meet it, not ours)
            return False
        wait_us = round(1e6 * self.period / self.rate)  # the dummy driver's clock: one period per wait
        self.process = subprocess.Popen(
            ["jackd", "--no-realtime", "--sync", "--timeout", "5000", "--name", name,
             "-d", "dummy", "--rate", str(self.rate), "--period", str(self.period), "--wait", str(wait_us),
             "--capture", "0", "--playback", "2", "--monitor"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_stop_with_parent)
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                return False
            if _answers(name):
                return True
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                return False
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = self._previous

    def __enter__(self) -> JackServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _answers(name: str) -> bool:
    """A server of that name is running (a client can open on it)."""
    try:
        jack.Client("dd-test-probe", servername=name, no_start_server=True).close()
        return True
    except jack.JackOpenError:
        return False


def _stop_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started it ends (Linux's PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Capture:
    """Recorded audio [frames, 2] whose first frame is at server frame time ``start``; ``cycles`` holds, for each
    cycle recorded, its first frame time and the time.monotonic() at which the server had it out of its graph."""

    start: int
    samples: np.ndarray
    rate: int
    cycles: list[tuple[int, float]]

    def first_sound(self, after: float, threshold: float = 1e-4) -> tuple[int, float] | None:
        """(frame time, monotonic time out) of the first sample above threshold in a cycle that left the server
        after the monotonic time ``after`` (a press); None if there is none."""
        for frame_time, out_at in self.cycles:
            if out_at < after:
                continue
            offset = frame_time - self.start
            loud = np.flatnonzero(np.abs(self.samples[offset:]).max(axis=1) > threshold)
            if len(loud) == 0:
                return None
            first = frame_time + int(loud[0])
            return first, self.time_of(first)
        return None

    def time_of(self, frame_time: int) -> float:
        """When the server had frame frame_time out: its cycle's time, plus its place in the cycle."""
        starts = [start for start, _ in self.cycles]
        index = max(0, int(np.searchsorted(starts, frame_time, side="right")) - 1)
        start, out_at = self.cycles[index]
        return out_at + (frame_time - start) / self.rate

    def at(self, frame_time: int, frames: int) -> np.ndarray:
        offset = frame_time - self.start
        return self.samples[offset: offset + frames]


class Recorder:
    """A second client on the server recording what reaches its speakers (system:playback_*).

    tap="monitor" (the default) records the dummy driver's monitor ports: everything every client sends to the
    speakers, whenever it connected (a command run as a subprocess), one cycle after it was played.
    tap="players" feeds the inputs straight from the players' ports (connected by listen(), so only players
    already open): its process callback then runs after theirs in the same cycle, and the time.monotonic() it
    stamps on a cycle is when that cycle's sound was out of the server (a real interface plays it from there,
    after its own output buffer). Latency is measured that way."""

    def __init__(self, server: JackServer, tap: str = "monitor"):
        self.server, self.tap = server, tap
        self.client = jack.Client("dd-test-recorder", servername=server.name, no_start_server=True)
        self.inputs = [self.client.inports.register(f"in_{i + 1}") for i in range(len(SPEAKERS))]
        self._blocks: list[tuple[int, float, np.ndarray]] = []
        self._recording = False
        self.client.set_process_callback(self._process)
        self.client.activate()
        if tap == "monitor":
            for monitor, port in zip(MONITORS, self.inputs):
                self.client.connect(monitor, port)

    def _process(self, frames: int) -> None:
        if self._recording:
            block = np.stack([port.get_array() for port in self.inputs], axis=1).copy()
            self._blocks.append((self.client.last_frame_time, time.monotonic(), block))

    def listen(self) -> None:
        """tap="players": feed the inputs from every port now connected to the speakers (players opened since)."""
        if self.tap != "players":
            return
        for speaker, port in zip(SPEAKERS, self.inputs):
            for source in self.client.get_all_connections(speaker):
                if not port.is_connected_to(source):
                    self.client.connect(source, port)

    def start(self) -> None:
        self.listen()
        self._blocks = []
        self._recording = True

    def stop(self, tail: float = 0.1) -> Capture:
        """The recording, once tail seconds more of the server's cycles have come in: what was handed to a player
        before the call is out of the server by then, however late a busy machine runs its cycles."""
        wanted = len(self._blocks) + int(np.ceil(tail * self.server.rate / self.server.period))
        deadline = time.monotonic() + 10 + tail
        while len(self._blocks) < wanted and time.monotonic() < deadline:
            time.sleep(self.server.period / self.server.rate)
        self._recording = False
        time.sleep(2 * self.server.period / self.server.rate)  # let a cycle under way finish appending
        blocks = list(self._blocks)
        if not blocks:
            return Capture(0, np.zeros((0, len(SPEAKERS)), np.float32), self.server.rate, [])
        start = blocks[0][0]
        end = blocks[-1][0] + len(blocks[-1][2])
        samples = np.zeros((end - start, len(SPEAKERS)), np.float32)
        for frame_time, _, block in blocks:
            samples[frame_time - start: frame_time - start + len(block)] = block
        return Capture(start, samples, self.server.rate, [(frame_time, out_at) for frame_time, out_at, _ in blocks])

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()
