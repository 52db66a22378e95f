"""`dd-bridge devices | play` and `--play` as a user runs them: subprocesses on the dummy JACK server, recorded."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soundfile

from bridge.cli.play import END_MARGIN_SECONDS, hear
from bridge.engine.audio import read_audio
from bridge.errors import PlaybackError
from bridge.playback.player import Sound
from tests.playback.signals import reference
from tests.playback.test_playback import TOLERANCE, heard, one_shot

REPO = Path(__file__).resolve().parents[2]


def dd_bridge(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")  # JACK_DEFAULT_SERVER: the test server
    return subprocess.run([sys.executable, "-m", "bridge", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def one_error_line(result: subprocess.CompletedProcess, command: str) -> str:
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith(f"dd-bridge {command}: error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_devices_lists_the_servers_output_as_the_default(jack_server):
    result = dd_bridge("devices")
    assert result.returncode == 0, result.stderr
    assert f"*   0  system  (JACK Audio Connection Kit, 2 out, {jack_server.rate} Hz)" in result.stdout.splitlines()


def test_play_plays_each_file_and_names_a_bad_one_in_one_line(jack_server, recorder, drumkits, tmp_path):
    mono, stereo = one_shot(drumkits, 1), one_shot(drumkits, 2)
    broken = tmp_path / "cut short.wav"
    broken.write_bytes(stereo.read_bytes()[:200])
    recorder.start()
    started = time.monotonic()
    result = dd_bridge("play", mono, broken, stereo, "--audio-out", "system", "--velocity", 100)
    capture = recorder.stop()
    assert "cut short.wav" in one_error_line(result, "play")
    assert result.stdout == ""
    gain = (100 / 127) ** 2
    first = reference(read_audio(mono), jack_server.rate, gain)
    np.testing.assert_allclose(heard(capture, started, first), first, atol=TOLERANCE)
    # The second file played after the first ended: the first sound after the first one's end.
    first_end = capture.first_sound(started)[0] + len(first)
    second = reference(read_audio(stereo), jack_server.rate, gain)
    after_first = capture.time_of(first_end + 1)
    np.testing.assert_allclose(heard(capture, after_first, second), second, atol=TOLERANCE)


def test_no_such_device_is_one_line_and_nothing_is_rendered(jack_server, drumkits, tiny_model_path, tmp_path):
    path = one_shot(drumkits, 1)
    assert "dd-no-such-device" in one_error_line(dd_bridge("play", path, "--audio-out", "dd-no-such-device"),
                                                 "play")
    result = dd_bridge("vary", path, "--model", tiny_model_path, "--steps", 2, "--out", tmp_path / "out",
                       "--play", "--audio-out", "dd-no-such-device")
    assert "dd-no-such-device" in one_error_line(result, "vary")
    assert result.stdout == "" and not list((tmp_path / "out").glob("*.wav"))


def test_vary_play_plays_each_variation_as_it_is_written(jack_server, recorder, drumkits, tiny_model_path,
                                                         tmp_path):
    source = one_shot(drumkits, 2)
    recorder.start()
    started = time.monotonic()
    result = dd_bridge("vary", source, "--model", tiny_model_path, "--steps", 2, "--count", 2, "--seed", 5,
                       "--format", "float", "--out", tmp_path, "--play", "--audio-out", "system")
    capture = recorder.stop()
    assert result.returncode == 0, result.stderr
    paths = [Path(line) for line in result.stdout.splitlines()]
    assert len(paths) == 2 and all(soundfile.info(str(p)).subtype == "FLOAT" for p in paths)
    after = started
    for path in paths:  # each written file, heard as written, one after the other
        expected = reference(read_audio(path), jack_server.rate)
        found = capture.first_sound(after)
        assert found is not None, f"{path.name} was not heard"
        np.testing.assert_allclose(heard(capture, after, expected), expected, atol=TOLERANCE)
        after = capture.time_of(found[0] + len(expected) + 1)


def test_play_gives_up_on_a_sound_the_output_never_ends():
    """Review s39-3 #4: `dd-bridge play` (and --play) waited for a sound's end without a limit; an output that
    takes the sound and never plays it held the command for ever. Now: its length and a margin, then one line."""
    class Stuck:
        def play(self, sound, velocity=127):
            return Sound(1, 0.2)  # taken, never ended

    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(_raised(lambda: hear(Stuck(), Path("kick.wav"),
                                                                                 "kick.wav"))), daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(timeout=0.2 + END_MARGIN_SECONDS + 10)
    assert not thread.is_alive(), "still waiting"
    [error] = outcome
    assert isinstance(error, PlaybackError) and "\n" not in str(error)
    waited = 0.2 + END_MARGIN_SECONDS
    assert str(error) == f"the audio output stopped playing: kick.wav had not ended after {waited:.1f} s"
    assert waited <= time.monotonic() - started


def _raised(call):
    try:
        call()
    except Exception as error:
        return error
    return None
