"""The audio output process: the one place PortAudio (through sounddevice) runs, in a process of its own.

    python -m bridge.playback.output [--device D] [--latency L] [--fade SECONDS]

Why a process: PortAudio does not survive its device going away. When the JACK server it plays through stops,
closing the stream, stopping it or ending PortAudio (as Python does at exit) waits forever, and a stream opened
afterwards in the same process fails. Here that can only take this process with it: it says what happened and
leaves with os._exit, the service or command that started it runs on, and the next sound starts a fresh one,
which also finds devices and servers that came up since.

It opens one output stream at the device's own rate, with at most two channels, and plays what its parent
(bridge.playback.player) sends on stdin. The parent reads JSON lines on stdout:
  {"event": "ready", "device": {...}}   the stream runs (the device as OutputDevice fields)
  {"event": "ended", "id": N}           sound N finished, or finished fading out after a cut or a stop
  {"event": "underruns", "count": N}    N blocks so far came too late for the device (a crackle each): sent when
                                        it grows, at most every WATCH_SECONDS
  {"event": "error", "message": "..."}  one line; the process then exits (no device, device lost)
Requests on stdin, each a JSON line: {"op": "play", "id": N, "frames": F} followed by F x channels float32
samples at the device's rate (native byte order), with "after": G to play it once the sounds queued before it have
played and G frames of silence, cutting nothing (a press's variations, one after another); {"op": "stop"} (fade out), {"op": "close"} (fade out, exit).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np

from bridge.errors import one_line
from bridge.playback.mixer import Mixer

WATCH_SECONDS = 0.02  # how often ended sounds are reported and the stream is checked for a lost device
MAX_CHANNELS = 2  # what is played is stereo (or mono); more device channels stay silent
# A stream PortAudio calls "active" whose callback has not run for this long is a lost device: CoreAudio can stop
# calling back when a USB interface is unplugged and PortAudio never hears of it (PortAudio issues #158, #600).
# 20 blocks' worth of the stream's latency, and never under half a second: a busy machine can hold up a few
# blocks, but a device that plays calls back every latency or sooner.
STALL_SECONDS = 0.5
STALL_LATENCIES = 20


@dataclass(frozen=True)
class OutputDevice:
    """An output device as PortAudio names it; ``rate`` is its own sample rate (a JACK server's, for one)."""

    index: int
    name: str
    host_api: str
    channels: int  # the device's output channels
    rate: int
    default: bool = False
    latency: float = 0.0  # the stream's output latency in seconds, once open

    @property
    def stream_channels(self) -> int:
        """What is played on it: stereo, or mono on a one-channel device; further channels stay silent."""
        return min(self.channels, MAX_CHANNELS)

    @property
    def label(self) -> str:
        return f"{self.index}: {self.name} ({self.host_api})"


class NoOutput(Exception):
    """No output device to be had: PortAudio missing, no device, or the one asked for is not there."""


def load_portaudio():
    """sounddevice, with PortAudio initialised; NoOutput when the library is missing."""
    try:
        import sounddevice
    except OSError as error:  # sounddevice raises it when the PortAudio library cannot be loaded
        raise NoOutput(f"PortAudio is not installed ({error}); on Debian and Ubuntu: apt install libportaudio2") \
            from None
    return sounddevice


def list_outputs() -> list[OutputDevice]:
    """Every device with output channels, the default one marked."""
    sounddevice = load_portaudio()
    apis = sounddevice.query_hostapis()
    default = sounddevice.default.device[1]
    return [OutputDevice(index, info["name"], apis[info["hostapi"]]["name"], info["max_output_channels"],
                         round(info["default_samplerate"]), default=index == default)
            for index, info in enumerate(sounddevice.query_devices()) if info["max_output_channels"] > 0]


def choose(wanted: str | int | None, outputs: list[OutputDevice]) -> OutputDevice:
    """The device asked for: None the default, an index, or a part of a name that only one device has."""
    if not outputs:
        raise NoOutput("no audio output device (is the sound server running?)")
    if wanted is None or wanted == "":
        for device in outputs:
            if device.default:
                return device
        return outputs[0]
    if isinstance(wanted, int) or str(wanted).isdigit():
        for device in outputs:
            if device.index == int(wanted):
                return device
        raise NoOutput(f"no audio output device {wanted} (`dd-bridge devices` lists them)")
    matches = [device for device in outputs if str(wanted).lower() in device.name.lower()]
    exact = [device for device in matches if device.name.lower() == str(wanted).lower()]
    if len(exact) == 1 or len(matches) == 1:
        return (exact or matches)[0]
    if not matches:
        raise NoOutput(f"no audio output device named {wanted!r} (`dd-bridge devices` lists them)")
    raise NoOutput(f"audio output {wanted!r} matches several devices: {', '.join(d.label for d in matches)}")


class Blocks:
    """What the stream's callback counts (written on PortAudio's thread only, read by the watch loop): the blocks
    it was asked for, and those PortAudio flagged as an output underflow (the device wanted samples before the
    callback had them ready: a crackle; on a CPU-only machine a render beside the stream can cause them)."""

    def __init__(self):
        self.played = 0
        self.underflows = 0

    def count(self, status) -> None:
        self.played += 1
        if status.output_underflow:
            self.underflows += 1


class Stall:
    """Tells a stream that stopped calling back: no new block for longer than ``limit`` seconds."""

    def __init__(self, limit: float, now: float):
        self.limit = limit
        self._played = 0
        self._since = now  # the time the count last moved (or the start: a stream that never calls back is lost)

    @staticmethod
    def limit_for(latency: float) -> float:
        return max(STALL_SECONDS, STALL_LATENCIES * latency)

    def stalled(self, played: int, now: float) -> bool:
        if played != self._played:
            self._played, self._since = played, now
            return False
        return now - self._since > self.limit


class Output:
    """The stream, its mixer and the two threads around them (requests in, events out)."""

    def __init__(self, device: OutputDevice, latency: str | float, fade: float):
        self.sounddevice = load_portaudio()
        self.channels = device.stream_channels
        self.mixer = Mixer(self.channels, max(1, round(fade * device.rate)))
        self.blocks = Blocks()
        self.closing = threading.Event()
        self.send_lock = threading.Lock()
        self.stream = self.sounddevice.OutputStream(device=device.index, samplerate=device.rate,
                                                    channels=self.channels, dtype="float32", latency=latency,
                                                    callback=self._callback)
        self.device = OutputDevice(**{**asdict(device), "latency": float(self.stream.latency)})

    def _callback(self, out, frames, time, status) -> None:  # PortAudio's thread: nothing that can block
        self.mixer.render(out)
        self.blocks.count(status)

    def send(self, **event) -> None:
        with self.send_lock:
            sys.stdout.write(json.dumps(event) + "\n")
            sys.stdout.flush()

    def run(self) -> None:
        self.stream.start()
        self.send(event="ready", device=asdict(self.device))
        threading.Thread(target=self._read_requests, name="requests", daemon=True).start()
        stall = Stall(Stall.limit_for(self.device.latency), time.monotonic())
        underflows = 0
        while True:
            self.closing.wait(WATCH_SECONDS)
            self._report_ended()
            if self.blocks.underflows != underflows:
                underflows = self.blocks.underflows
                self.send(event="underruns", count=underflows)
            if self.closing.is_set() and not self.mixer.playing:
                break
            # The device or its server went away (PortAudio cannot be stopped now): the stream stopped, or it is
            # "active" but no longer called back.
            if not self.stream.active:
                self._lost(f"audio output lost: {self.device.label} stopped")
            if stall.stalled(self.blocks.played, time.monotonic()):
                self._lost(f"audio output lost: {self.device.label} stopped asking for sound "
                           f"({stall.limit:g} s without a block)")
        self.stream.stop()
        self.stream.close()
        self._report_ended()

    def _lost(self, message: str) -> None:
        self.send(event="error", message=message)
        os._exit(3)

    def _report_ended(self) -> None:
        while self.mixer.ended:
            self.send(event="ended", id=self.mixer.ended.popleft())

    def _read_requests(self) -> None:
        requests = sys.stdin.buffer
        frame_bytes = 4 * self.channels
        while True:
            line = requests.readline()
            if not line:  # the parent is gone: fade out and leave
                break
            request = json.loads(line)
            if request["op"] == "play":
                data = requests.read(request["frames"] * frame_bytes)
                if len(data) < request["frames"] * frame_bytes:
                    break
                samples = np.frombuffer(data, dtype=np.float32).reshape(-1, self.channels)
                after = request.get("after")
                self.mixer.play(int(request["id"]), samples, None if after is None else int(after))
            elif request["op"] == "stop":
                self.mixer.stop()
            elif request["op"] == "close":
                break
        self.mixer.stop()
        self.closing.set()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--latency", default="low")
    parser.add_argument("--fade", type=float, default=0.005)
    args = parser.parse_args(argv)
    latency = args.latency if args.latency in ("low", "high") else float(args.latency)
    try:
        output = Output(choose(args.device, list_outputs()), latency, args.fade)
    except NoOutput as error:
        _fail(str(error))
    except Exception as error:  # PortAudio's own refusal (a busy device, a rate it will not take)
        _fail(f"cannot open the audio output: {(one_line(error) or type(error).__name__)}")
    try:
        output.run()
    except Exception as error:
        output.send(event="error", message=f"audio output failed: {(one_line(error) or type(error).__name__)}")
        os._exit(3)
    # A normal exit: sounddevice's exit handler ends PortAudio, which closes its client on the server properly
    # (a JACK server left to find a client gone keeps waiting for it, cycle after cycle).


def _fail(message: str) -> None:
    """Say why and leave normally: no stream is open, so ending PortAudio is safe (and needed, see main)."""
    sys.stdout.write(json.dumps({"event": "error", "message": message}) + "\n")
    sys.stdout.flush()
    sys.exit(2)


if __name__ == "__main__":
    main()
