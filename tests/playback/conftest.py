"""A dummy JACK server and a recording client for the playback suites (tests/playback/jack.py)."""

from __future__ import annotations

import pytest

from tests.playback.jack import JackServer, Recorder

SERVER_RATE = 48000  # the drum one-shots played into it are mostly 44.1 kHz: playback resamples them


@pytest.fixture(scope="module")
def jack_server():
    with JackServer(rate=SERVER_RATE) as server:
        yield server


@pytest.fixture(scope="module")
def recorder(jack_server):
    recorder = Recorder(jack_server)
    yield recorder
    recorder.close()
