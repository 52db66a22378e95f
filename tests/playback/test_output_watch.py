"""What the output process watches, on its own (no device): the blocks its callback is asked for, the underruns
PortAudio flags, a stream that stops calling back; and how the underruns reach the player, the log and audition's
status. Review s39-3 #7g: the callback's status was ignored, so crackles left no trace. And how the player opens
the output again (review s40 #7, #8), with a stand-in for the output process.

JACK's dummy driver runs in step with its clients (--sync): it cannot be made to underrun at will, so the callback
is given PortAudio's flags as a stand-in object with the one attribute it reads.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from bridge.cli.serve import _audio_text
from bridge.daemon.audition import Audition
from bridge.engine.audio import Clip
from bridge.errors import PlaybackError
from bridge.playback import player as player_module
from bridge.playback.mixer import Mixer
from bridge.playback.output import STALL_SECONDS, Blocks, Output, OutputDevice, Stall
from bridge.playback.player import RETRY_SECONDS, Player, _OutputProcess, fade_edges

FINE, LATE = SimpleNamespace(output_underflow=False), SimpleNamespace(output_underflow=True)


def callback_only() -> Output:
    """An Output with what its callback uses, and no stream (which would open a device)."""
    output = Output.__new__(Output)
    output.mixer, output.blocks = Mixer(2, 16), Blocks()
    return output


def test_the_callback_counts_its_blocks_and_the_underflows_portaudio_flags():
    output = callback_only()
    output.mixer.play(1, np.full((100, 2), 0.25, np.float32))
    out = np.empty((64, 2), np.float32)
    for status in (FINE, LATE, FINE, LATE, LATE):
        Output._callback(output, out, 64, None, status)
    assert (output.blocks.played, output.blocks.underflows) == (5, 3)
    assert not out.any() and list(output.mixer.ended) == [1]  # and it still plays what it is given


def test_a_stream_without_a_block_for_longer_than_its_limit_is_stalled():
    assert Stall.limit_for(0.005) == STALL_SECONDS == 0.5  # low latency: half a second
    assert Stall.limit_for(0.1) == 2.0  # 20 blocks' worth of a high one
    stall = Stall(0.5, now=10.0)
    assert not stall.stalled(0, 10.4)  # none yet, within the limit of the start
    assert not stall.stalled(3, 10.6)  # blocks come: the clock starts again
    assert not stall.stalled(3, 11.1)
    assert stall.stalled(3, 11.2)
    assert not Stall(0.5, now=0.0).stalled(1, 5.0)  # a block at last: not stalled
    assert Stall(0.5, now=0.0).stalled(0, 0.6)  # a stream that never called back


def events_read(*events: dict) -> _OutputProcess:
    """An _OutputProcess that has read these events from its process (none is started)."""
    process = _OutputProcess.__new__(_OutputProcess)
    process.__dict__.update(ready=SimpleNamespace(set=lambda: None), device=None, error=None, underruns=0,
                            _said_underruns=0, _said_at=float("-inf"), sounds={}, lock=threading.Lock())
    lines = b"".join(json.dumps(event).encode() + b"\n" for event in events)
    process.process = SimpleNamespace(stdout=io.BytesIO(lines), poll=lambda: None)
    process._read_events()
    return process


def test_underruns_reach_the_player_and_are_logged_at_a_limited_rate(caplog):
    with caplog.at_level(logging.WARNING, logger="bridge.playback"):
        process = events_read({"event": "underruns", "count": 1}, {"event": "underruns", "count": 4},
                              {"event": "underruns", "count": 9})
    assert process.underruns == 9
    said = [record.getMessage() for record in caplog.records]
    assert len(said) == 1 and said[0].startswith("audio: 1 output underrun (crackles; 1 since the output opened)")

    audition = Audition(None, "low")  # opens nothing until asked
    try:
        audition.player._process, audition.player._underruns = process, 2  # 2 from an output before this one
        assert audition.status()["underruns"] == 11
    finally:
        audition.player._process = None
        audition.close()


def test_edges_are_faded_only_where_they_are_not_silence():
    onset, end = 14, 240  # 0.3 ms and 5 ms at 48 kHz
    level = np.full((1000, 2), 0.5, np.float32)
    faded = level.copy()
    fade_edges(faded, onset, end)
    assert faded[0, 0] == np.float32(0.5 / (onset + 1)) and faded[-1].max() == 0 and faded[-2, 0] > 0
    np.testing.assert_array_equal(faded[onset:-end], level[onset:-end])
    assert np.abs(np.diff(faded, axis=0)).max() <= 0.5 / onset + 1e-7  # a ramp's steps, no more

    quiet = level.copy()
    quiet[0] = quiet[-1] = 0.0009  # both edges under -60 dBFS: silence already, left as they are
    unchanged = quiet.copy()
    fade_edges(unchanged, onset, end)
    np.testing.assert_array_equal(unchanged, quiet)

    short = np.full((100, 1), 0.5, np.float32)  # shorter than both fades: each takes its share
    fade_edges(short, onset, end)
    assert short[-1, 0] == 0 and short[0, 0] > 0 and short[:, 0].max() <= 0.5


DEVICE = OutputDevice(0, "system", "JACK Audio Connection Kit", 2, 48000)
NO_DEVICE = "no audio output device (is the sound server running?)"
CLIP = Clip(np.zeros((480, 2), np.float32), 48000)


class StandInProcess:
    """In place of one _OutputProcess (no process is started): ready when its maker's gate opens, on DEVICE, or
    failing as there is no device while the maker says one is missing."""

    def __init__(self, maker: StandIn):
        self.maker, self.device, self.error, self.underruns = maker, None, None, 0

    @property
    def alive(self) -> bool:
        return self.error is None and self.device is not None

    def wait_ready(self) -> OutputDevice:
        self.maker.gate.wait(10)
        if self.maker.missing:
            self.error = NO_DEVICE
            raise PlaybackError(NO_DEVICE)
        self.device = DEVICE
        return DEVICE

    def send(self, request: dict, payload: bytes = b"", sound=None) -> None:
        pass

    def kill(self) -> None:  # a real one waits for the process to end and its last events to be read
        self.maker.killed.append(self)
        self.maker.killing.wait(10)

    def close(self) -> None:
        pass


class StandIn:
    """Makes StandInProcesses, each kept in ``made``; ``gate`` holds their opening, ``missing`` fails it;
    ``killing`` holds a kill, and ``killed`` has each one killed."""

    def __init__(self):
        self.made: list[StandInProcess] = []
        self.killed: list[StandInProcess] = []
        self.gate, self.killing = threading.Event(), threading.Event()
        self.gate.set()
        self.killing.set()
        self.missing = False

    def __call__(self, output, latency, fade) -> StandInProcess:
        self.made.append(StandInProcess(self))
        return self.made[-1]


NO_RETRY = {"retry_seconds": None}  # no failed open: presses try the output at once


@pytest.fixture
def outputs(monkeypatch) -> StandIn:
    stand_in = StandIn()
    monkeypatch.setattr(player_module, "_OutputProcess", stand_in)
    return stand_in


def test_after_a_failed_open_presses_are_answered_at_once_and_the_output_is_tried_again_later(outputs, monkeypatch):
    """Review s40 #7: with no output, every press started a fresh output process (0.1-0.2 s, up to 10 s) before
    it was answered, and presses queued behind each other on the audio thread."""
    outputs.missing = True
    player = Player()
    with pytest.raises(PlaybackError, match="^no audio output device"):
        player.play(CLIP)
    for _ in range(5):  # pressed again and again within RETRY_SECONDS: the same reason, no new try
        with pytest.raises(PlaybackError) as raised:
            player.play(CLIP)
        assert str(raised.value) == NO_DEVICE
    assert len(outputs.made) == 1
    assert player.problem == NO_DEVICE and player.device is None
    assert 0 < player.retry_in <= RETRY_SECONDS  # the status shows the wait (review s40's list: it did not)
    audio = Audition(None, "low")
    audio.player = player
    status = audio.status()
    assert 0 < status["retry_seconds"] <= RETRY_SECONDS
    assert _audio_text(status).startswith(f"no output ({NO_DEVICE}); tried again at the next press after ")
    with pytest.raises(PlaybackError):  # asked for (audition switched on): tried at once all the same
        player.open()
    assert len(outputs.made) == 2

    outputs.missing = False  # the interface plugged back in; the press after RETRY_SECONDS finds it
    clock = time.monotonic
    monkeypatch.setattr(player_module, "time", SimpleNamespace(monotonic=lambda: clock() + RETRY_SECONDS))
    assert player.retry_in == 0.0 and _audio_text(audio.status()).endswith("tried again at the next press")
    player.play(CLIP)
    assert len(outputs.made) == 3 and player.device == DEVICE and player.problem is None
    assert player.retry_in is None and audio.status()["retry_seconds"] is None
    player.play(CLIP)  # open: no new process
    assert len(outputs.made) == 3


def started(call, *args, until) -> threading.Thread:
    """call(*args) on a thread of its own, returned once until() is true."""
    thread = threading.Thread(target=call, args=args)
    thread.start()
    deadline = time.monotonic() + 10
    while not until():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return thread


def test_while_the_first_output_opens_the_status_says_so(outputs):
    """Review s40 #8: while the output opened (up to 10 s), the status said "no output open" with no error."""
    audition = Audition(None, "low")
    try:
        outputs.gate.clear()  # the first open takes a while (PortAudio scans its host APIs)
        opening = started(audition.player.open, until=lambda: outputs.made)
        assert audition.status() == {**NO_RETRY, "output": None, "error": "opening", "underruns": 0, "held": 0}
        assert _audio_text(audition.status()) == "no output (opening)"  # `dd-bridge status` (was "no output open")
        outputs.gate.set()
        opening.join(10)
        assert audition.status() == {**NO_RETRY, "output": DEVICE.label, "error": None, "underruns": 0, "held": 0}
    finally:
        outputs.gate.set()
        audition.close()


def test_while_a_lost_output_is_opened_again_the_status_keeps_its_error_and_underruns(outputs):
    """Review s40 #8: while a lost output was started again, the status said "no output open" with no error, and
    the underruns dipped by the lost process's count until it had been killed."""
    audition = Audition(None, "low")
    player = audition.player
    try:
        player.open()
        lost = outputs.made[0]
        lost.underruns, player._underruns = 5, 2  # 2 from an output before it
        lost.error = "audio output lost: 0: system (JACK Audio Connection Kit) stopped"
        outputs.killing.clear()
        outputs.gate.clear()
        pressed = started(player.play, CLIP, until=lambda: outputs.killed)  # the next press kills the lost one
        assert audition.status() == {**NO_RETRY, "output": None, "error": lost.error, "underruns": 7, "held": 0}
        outputs.killing.set()
        while len(outputs.made) < 2:  # then a fresh one opened
            time.sleep(0.01)
        assert audition.status() == {**NO_RETRY, "output": None, "error": lost.error, "underruns": 7, "held": 0}
        outputs.made[1].underruns = 1
        outputs.gate.set()
        pressed.join(10)
        assert audition.status() == {**NO_RETRY, "output": DEVICE.label, "error": None, "underruns": 8, "held": 0}
    finally:
        outputs.gate.set()
        outputs.killing.set()
        audition.close()
