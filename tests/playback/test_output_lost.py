"""An audio server that goes away under the stream: one line, no hang, and playing resumes when it is back.

Its own module: the server it stops is the only one running (libjack has trouble with a second server of the
same user coming and going beside a first), and the module server of test_playback.py is down by then.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from bridge.engine.audio import Clip
from bridge.errors import PlaybackError
from bridge.playback.player import Player
from tests.playback.jack import JackServer, Recorder
from tests.playback.signals import sine
from tests.playback.test_playback import TOLERANCE, heard


def test_a_server_lost_mid_play_is_one_line_and_playing_resumes_when_it_is_back():
    with JackServer(rate=44100) as server:
        player = Player(output="system")
        try:
            assert player.open().rate == 44100
            started = time.monotonic()
            sound = player.play(Clip(sine(5.0, 44100, 440), 44100))
            time.sleep(0.3)
            server.process.terminate()  # the server stops under the stream (as qjackctl stops it)
            server.process.wait()
            with pytest.raises(PlaybackError) as raised:
                sound.wait(timeout=20)
            message = str(raised.value)
            assert message.startswith("audio output lost") and "\n" not in message
            assert time.monotonic() - started < 5  # told at once, not when the sound would have ended
            with pytest.raises(PlaybackError, match="no audio output device"):
                player.play(Clip(sine(0.1, 44100), 44100))

            server.start()  # back, under the same name: the next press finds it
            recorder = Recorder(server)
            try:
                tone = sine(0.2, 44100)
                player.open()
                recorder.start()
                press = time.monotonic()
                assert player.play(Clip(tone, 44100)).wait(timeout=10)
                capture = recorder.stop()
            finally:
                recorder.close()
            assert np.abs(heard(capture, press, tone) - tone).max() <= TOLERANCE
        finally:
            player.close()
