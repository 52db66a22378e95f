"""What the output process watches, on its own (no device): the blocks its callback is asked for, the underruns
PortAudio flags, a stream that stops calling back; and how the underruns reach the player, the log and audition's
status. Review s39-3 #7g: the callback's status was ignored, so crackles left no trace.

JACK's dummy driver runs in step with its clients (--sync): it cannot be made to underrun at will, so the callback
is given PortAudio's flags as a stand-in object with the one attribute it reads.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from types import SimpleNamespace

import numpy as np

from bridge.daemon.audition import Audition
from bridge.playback.mixer import Mixer
from bridge.playback.output import STALL_SECONDS, Blocks, Output, Stall
from bridge.playback.player import _OutputProcess, fade_edges

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
    onset, end = 96, 240  # 2 ms and 5 ms at 48 kHz
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
