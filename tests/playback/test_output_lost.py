"""An audio server that goes away under the stream, or stops calling it back: one line, no hang, the service's
press and status say so, and playing resumes when it is back.

Its own module: the server it stops is the only one running (libjack has trouble with a second server of the
same user coming and going beside a first), and the module server of test_playback.py is down by then.

A server stopped with SIGSTOP stands for an interface unplugged under macOS's CoreAudio, which can stop calling
the stream back while PortAudio still calls the stream active (review s39-3 #4): the client's callbacks stop, and
nothing tells PortAudio.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from bridge.cli.serve import describe_status
from bridge.engine.audio import Clip
from bridge.errors import PlaybackError
from bridge.playback.output import STALL_SECONDS
from bridge.playback.player import RETRY_SECONDS, Player
from tests.playback.jack import SPEAKERS, JackServer, Recorder
from tests.playback.signals import edges, sine
from tests.playback.test_play_cli import REPO, one_error_line
from tests.playback.test_playback import TOLERANCE, heard
from tests.support.service import _one_torch_thread, drum, renderer, running_service, service_config  # noqa: F401


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
            played = edges(tone, 44100)  # it ends away from silence: faded out
            assert np.abs(heard(capture, press, played) - played).max() <= TOLERANCE
        finally:
            player.close()


def kill(server: JackServer) -> None:
    """A server that was stopped with a client in it ends only after minutes when asked to (SIGTERM): killed, its
    name is cleaned up after by the next server of that name (JackServer.start)."""
    server.process.kill()
    server.process.wait()


def played_back(server: JackServer, player: Player) -> None:
    """A short tone through player, recorded on server: heard as played."""
    recorder = Recorder(server)
    try:
        tone = sine(0.2, server.rate)
        player.open()
        recorder.start()
        press = time.monotonic()
        assert player.play(Clip(tone, server.rate)).wait(timeout=10)
        capture = recorder.stop()
    finally:
        recorder.close()
    played = edges(tone, server.rate)
    assert np.abs(heard(capture, press, played) - played).max() <= TOLERANCE


def test_a_stream_no_longer_called_back_is_lost_in_one_line_and_playing_resumes():
    """Before: the sound never ended (Sound.wait waited for ever) and the player still named the device."""
    with JackServer(rate=48000) as server:
        player = Player(output="system")
        try:
            player.open()
            sound = player.play(Clip(sine(5.0, 48000), 48000))
            time.sleep(0.3)
            os.kill(server.process.pid, signal.SIGSTOP)  # no more cycles: the stream is not called back
            stopped = time.monotonic()
            try:
                with pytest.raises(PlaybackError) as raised:
                    sound.wait(timeout=20)
                waited = time.monotonic() - stopped
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            message = str(raised.value)
            assert message == ("audio output lost: 0: system (JACK Audio Connection Kit) stopped asking for sound "
                               f"({STALL_SECONDS:g} s without a block)")
            assert STALL_SECONDS <= waited < STALL_SECONDS + 3
            assert player.device is None and player.problem == message  # what audition's status shows

            # The next sound opens a fresh output on a server that runs again: started afresh, as an interface is
            # plugged back in (this one, stopped past its --timeout, takes no client again).
            kill(server)
            server.start()
            played_back(server, player)
            assert player.device is not None and player.problem is None
        finally:
            player.close()


def test_dd_bridge_play_ends_in_one_line_when_the_output_stops_calling_back(tmp_path):
    """Before: `dd-bridge play` waited for ever (no timeout on the sound's end)."""
    path = tmp_path / "long.wav"
    soundfile.write(str(path), sine(5.0, 48000), 48000)
    with JackServer(rate=48000) as server:
        env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
        command = subprocess.Popen([sys.executable, "-m", "bridge", "play", str(path), "--audio-out", "system"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            watch = Recorder(server)  # a client to see the speakers' connections with
            try:
                deadline = time.monotonic() + 60
                while not watch.client.get_all_connections(SPEAKERS[0]):  # its output is open and playing
                    assert command.poll() is None and time.monotonic() < deadline, command.communicate()
                    time.sleep(0.05)
            finally:
                watch.close()
            time.sleep(0.3)
            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                stdout, stderr = command.communicate(timeout=20)
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
                kill(server)
        finally:
            if command.poll() is None:
                command.kill()
                command.communicate()
    result = subprocess.CompletedProcess(command.args, command.returncode, stdout, stderr)
    assert "stopped asking for sound" in one_error_line(result, "play")


def test_a_lost_output_is_said_in_the_press_answer_and_the_status_and_found_again(tmp_path, renderer, drum):
    """Review s39-3 #4: with the server gone a press answered "heard" and /dd/status still named the device."""
    server = JackServer(rate=48000).start()
    try:
        with running_service(service_config(tmp_path, audio_output="system"), renderer) as svc:
            svc.ask("/dd/set", "audition", "on")
            svc.ask("/dd/select", str(drum))
            svc.wait_for(lambda s: s["prefetched"].get(str(drum)) == 2 and s["audio"]["output"], what="output")
            assert svc.status()["audio"]["error"] is None
            server.process.terminate()  # as qjackctl stops it (JACK_DEFAULT_SERVER stays: it comes back so)
            server.process.wait()
            audio = svc.wait_for(lambda s: s["audio"]["output"] is None, timeout=10, what="the output gone")["audio"]
            assert audio["error"] == "audio output lost: 0: system (JACK Audio Connection Kit) stopped"
            assert "audio      no output (audio output lost: 0: system (JACK Audio Connection Kit) stopped)" in \
                describe_status(svc.status())  # `dd-bridge status` says why

            reply = svc.ask("/dd/vary")
            failed_at = time.monotonic()
            assert (reply.address, reply.args[0]) == ("/dd/error", "/dd/vary")
            assert reply.args[1].startswith("not heard: no audio output device")
            assert reply.args[1].endswith("; keep writes it all the same") and "\n" not in reply.args[1]
            audio = svc.status()["audio"]
            assert audio["output"] is None and audio["error"].startswith("no audio output device")
            assert audio["held"] == 1  # held back all the same

            server.start()  # back: the next press finds it (one within RETRY_SECONDS of the failure is
            svc.wait_for(lambda s: s["prefetched"].get(str(drum)) == 2, what="prefetch")  # told at once instead)
            time.sleep(max(0.0, failed_at + RETRY_SECONDS - time.monotonic()))
            reply = svc.ask("/dd/vary")
            assert (reply.address, list(reply.args)) == ("/dd/ack", ["vary", "heard", 1])
            audio = svc.status()["audio"]
            assert audio["output"] == "0: system (JACK Audio Connection Kit)" and audio["error"] is None
            assert audio["held"] == 2
            kept = svc.ask("/dd/keep", 2)
            assert kept.address == "/dd/done" and len(kept.args) == 3
    finally:
        server.stop()
