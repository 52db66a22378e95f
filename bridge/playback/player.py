"""Player: plays audio files and clips through one output device, each new sound cutting the last.

    with Player(output="system", latency="low") as player:
        sound = player.play("kick var 001.wav", velocity=100)
        sound.wait()

The stream itself runs in a process of its own (bridge.playback.output: PortAudio cannot be trusted to let go of
a device that went away); this side reads the file, mixes its channels to the device's (the L/R pairing of
bridge.engine.audio), resamples it to the device's rate with the project's resampler, applies the velocity's gain
and hands it over. A device that cannot be opened or is lost is a PlaybackError of one line; after a loss the next
sound tries a fresh output process once, so a device or server that comes back is used again. An open that
fails is not tried again for RETRY_SECONDS: until then a sound fails at once with the same reason.

A sound that ends away from silence (a region cut mid-decay, a loop) has its last FADE_SECONDS faded out, as Live
and REAPER fade a clip's end: the step to silence would be a click that the file does not have where the DAW plays
it. One that starts away from silence is ramped in over ONSET_SECONDS only, which takes the click off a start
mid-waveform and leaves the attack of a drum cut at its transient as the kept file has it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bridge.engine.audio import Clip, read_audio, resample, stereo
from bridge.errors import ConfigError, PlaybackError
from bridge.playback.output import OutputDevice

log = logging.getLogger(__name__)

FADE_SECONDS = 0.005  # a cut sound fades out over this long: no click, and gone before the ear hears it linger
# A sound that ends away from silence is cut by its end: faded out over FADE_SECONDS as a cut is. One that starts
# away from it is ramped in over far less, because what is auditioned most are one-shots trimmed at their
# transient, whose click and beater (the first 1-3 ms) are what the producer judges, and which the kept file and a
# sampler in one-shot mode (0 ms fade-in) play as they are: a 2 ms ramp took 4.8 dB off a kick's first 2 ms and
# half its first peak (review s40 #4). 0.3 ms (about 14 samples at 48 kHz) still turns a start mid-waveform's step
# into a slope, which takes the tick (its energy above a few kHz) off it, and costs such a kick 0.2 dB of its
# first 2 ms and nothing of its peak. Every sound gets it alike, whether or not the file starts there: the player
# is handed samples, not where they were cut from, and a ramp this short is not heard as a fade.
ONSET_SECONDS = 0.0003
SILENCE = 1e-3  # -60 dBFS: an edge sample below this is silence already (a step this small does not click)
UNDERRUN_LOG_SECONDS = 10.0  # underruns are said at most this often (they come in bursts, one per block)
START_SECONDS = 10.0  # the output process has this long to open its device (PortAudio scans every host API)
# After an open fails (no device: an interface unplugged, JACK stopped), sounds fail at once with its reason for
# this long instead of each starting a fresh output process (PortAudio's start and device scan: 0.1-0.2 s, up to
# START_SECONDS) before it is answered, while later presses queue behind it on the one audio thread. Plugging an
# interface back in and pressing again takes longer than this, so the press after it finds the device.
RETRY_SECONDS = 2.0
OPENING = "opening"  # what ``problem`` says while the first output opens, with no earlier error to show
CLOSE_SECONDS = 2.0
LATENCIES = ("low", "high")  # PortAudio's own choices; a number of seconds is the other kind of setting
MAX_LATENCY = 1.0
MAX_GAP = 10.0  # seconds of silence a queued sound may wait after the one before it


def velocity_gain(velocity: int) -> float:
    """MIDI velocity 1..127 to a gain: 127 is the file's own level, and the level follows velocity squared
    (64 is about -12 dB, 32 about -24 dB), the curve most samplers use."""
    if isinstance(velocity, bool) or not isinstance(velocity, (int, np.integer)) or not 1 <= velocity <= 127:
        raise ConfigError(f"velocity must be a whole number in 1..127, got {velocity!r}")
    return (velocity / 127) ** 2


def latency_setting(value: str | float) -> str | float:
    """'low', 'high' or a number of seconds (0 < s <= 1): the output's latency as PortAudio takes it."""
    if isinstance(value, str) and value.strip().lower() in LATENCIES:
        return value.strip().lower()
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"latency must be low, high or seconds (e.g. 0.01), got {value!r}") from None
    if not 0 < seconds <= MAX_LATENCY:
        raise ConfigError(f"latency must be above 0 and at most {MAX_LATENCY} seconds, got {value!r}")
    return seconds


@dataclass(eq=False)
class Sound:
    """One sound handed to the output: wait() returns when it has finished or been cut and faded out."""

    ident: int
    seconds: float
    _ended: threading.Event = field(default_factory=threading.Event, repr=False)
    _error: str | None = field(default=None, repr=False)

    def wait(self, timeout: float | None = None) -> bool:
        """True once it has ended; False when timeout seconds passed first; PlaybackError if the output was lost
        while it played."""
        ended = self._ended.wait(timeout)
        if self._error:
            raise PlaybackError(self._error)
        return ended

    def _end(self, error: str | None = None) -> None:
        self._error = error
        self._ended.set()


class _OutputProcess:
    """One run of bridge.playback.output and the thread that reads its events."""

    def __init__(self, output: str | int | None, latency: str | float, fade: float):
        command = [sys.executable, "-m", "bridge.playback.output", "--latency", str(latency), "--fade", str(fade)]
        if output is not None:
            command += ["--device", str(output)]
        # Its stderr is PortAudio's and the host APIs' chatter (ALSA lists every card it cannot open): shown with
        # --debug only; what matters comes back as events.
        quiet = not log.isEnabledFor(logging.DEBUG)
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL if quiet else None, env=_child_environment())
        self.ready = threading.Event()
        self.device: OutputDevice | None = None
        self.error: str | None = None
        self.underruns = 0  # blocks played too late, as the process counts them
        self._said_underruns = 0  # the count last logged, and when
        self._said_at = float("-inf")
        self.sounds: dict[int, Sound] = {}
        self.lock = threading.Lock()  # sounds, and writes to the process's stdin
        self._reader = threading.Thread(target=self._read_events, name="playback-events", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        return self.error is None and self.process.poll() is None

    def wait_ready(self) -> OutputDevice:
        if not self.ready.wait(START_SECONDS):
            self.kill()
            raise PlaybackError(f"the audio output did not open within {START_SECONDS:g} s")
        if self.error:
            raise PlaybackError(self.error)
        return self.device

    def _read_events(self) -> None:
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event["event"] == "ready":
                self.device = OutputDevice(**event["device"])
                self.ready.set()
            elif event["event"] == "ended":
                with self.lock:
                    sound = self.sounds.pop(event["id"], None)
                if sound:
                    sound._end()
            elif event["event"] == "underruns":
                self.underruns = int(event["count"])
                self._say_underruns()
            elif event["event"] == "error":
                self.error = event["message"]
        self.error = self.error or "the audio output stopped"
        self.ready.set()
        with self.lock:
            pending, self.sounds = list(self.sounds.values()), {}
        for sound in pending:
            sound._end(self.error)

    def _say_underruns(self) -> None:
        """Logged at most every UNDERRUN_LOG_SECONDS, with how many came since it was last said."""
        now = time.monotonic()
        if now - self._said_at < UNDERRUN_LOG_SECONDS:
            return
        log.warning("audio: %d output underrun%s (crackles; %d since the output opened): the machine was too busy "
                    "to feed the output in time; a higher latency (audio.latency, --latency) helps",
                    self.underruns - self._said_underruns, "" if self.underruns - self._said_underruns == 1 else "s",
                    self.underruns)
        self._said_underruns, self._said_at = self.underruns, now

    def send(self, request: dict, payload: bytes = b"", sound: Sound | None = None) -> None:
        with self.lock:
            if sound is not None:
                self.sounds[sound.ident] = sound
            try:
                self.process.stdin.write(json.dumps(request).encode() + b"\n" + payload)
                self.process.stdin.flush()
            except (BrokenPipeError, OSError):
                self.sounds.pop(sound.ident, None) if sound is not None else None
                raise PlaybackError(self.error or "the audio output stopped") from None

    def close(self) -> None:
        try:
            self.send({"op": "close"})
            self.process.stdin.close()
        except (PlaybackError, OSError):
            pass
        try:
            self.process.wait(CLOSE_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reader.join(CLOSE_SECONDS)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self._reader.join(CLOSE_SECONDS)  # its last events read: ``underruns`` is the process's final count


class Player:
    """One output stream on one device (None: the default; an index or a part of its name), as a context manager.
    Each play() cuts the sound before it with a FADE_SECONDS fade-out, unless it is queued after it (``after``)."""

    def __init__(self, output: str | int | None = None, latency: str | float = "low", fade: float = FADE_SECONDS):
        self.output = None if output in (None, "") else output
        self.latency = latency_setting(latency)
        self.fade = fade
        self._process: _OutputProcess | None = None  # a lost one stays here until the next is open (problem)
        self._failed: str | None = None  # why the last open failed
        self._retry_at = float("-inf")  # after a failed open: play() tries no other before this (RETRY_SECONDS)
        self._opening = False
        self._underruns = 0  # those of the output processes before this one
        self._next_ident = 0
        self._lock = threading.Lock()  # one press at a time: the order of sounds is the order of presses
        # Held around a change of _process and _underruns together (never while opening), so that the status,
        # read on other threads, sees both before or both after: the count does not dip or double at a reopen.
        self._swap = threading.Lock()

    def __enter__(self) -> Player:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def device(self) -> OutputDevice | None:
        """The device playing now (its rate, channels, the stream's latency); None before open(), and once it is
        lost or could not be opened (``problem`` says why)."""
        process = self._process
        return process.device if process is not None and process.alive else None

    @property
    def problem(self) -> str | None:
        """Why nothing can play now, one line: the output lost, or the last try to open it failed (also while it
        is tried again), or OPENING while the first opens; None while it plays, and before open()."""
        process = self._process
        if process is not None:
            return None if process.alive else process.error
        return self._failed or (OPENING if self._opening else None)

    @property
    def retry_in(self) -> float | None:
        """After a failed open: seconds until a press tries the output again (until then it fails at once with
        ``problem``); None otherwise, and 0.0 once a press would try."""
        if self._process is not None or self._failed is None:
            return None
        return max(0.0, self._retry_at - time.monotonic())

    @property
    def underruns(self) -> int:
        """Blocks the output played too late (a crackle each) since this player was made, over restarts."""
        with self._swap:
            process = self._process
            return self._underruns + (process.underruns if process is not None else 0)

    def open(self) -> OutputDevice:
        """Start the output (if it is not running): PlaybackError, one line, when there is none to be had. Tried
        even within RETRY_SECONDS of a failed open: it is asked for (audition switched on), not a press."""
        with self._lock:
            return self._ensure_open(retry=True)

    def _ensure_open(self, retry: bool = False) -> OutputDevice:
        lost = self._process
        if lost is not None and lost.alive:
            return lost.device
        if lost is None and self._failed is not None and not retry and time.monotonic() < self._retry_at:
            raise PlaybackError(self._failed)
        if lost is not None:
            log.debug("audio output: restarting after %s", lost.error)
            lost.kill()  # it stays _process until the next is open: the status still says why nothing plays
        self._opening = True
        try:
            process = _OutputProcess(self.output, self.latency, self.fade)
            try:
                device = process.wait_ready()
            except PlaybackError as error:
                process.kill()
                self._retry_at = time.monotonic() + RETRY_SECONDS
                self._replace(None, failed=str(error))
                raise
            self._replace(process)
            return device
        finally:
            self._opening = False

    def _replace(self, process: _OutputProcess | None, failed: str | None = None) -> None:
        """The output process from now on (None: none), its lost or closed predecessor's underruns kept."""
        with self._swap:
            if self._process is not None:
                self._underruns += self._process.underruns
            self._process, self._failed = process, failed

    def play(self, sound: Clip | str | os.PathLike, *, velocity: int = 127, after: float | None = None) -> Sound:
        """Play a clip or an audio file now, cutting whatever plays; returns as soon as the output has it. With
        ``after`` (seconds): queued instead, to start that long after the sounds queued before it have played
        (now, if nothing plays), cutting nothing; the next sound played without it cuts the queued ones too."""
        gain = velocity_gain(velocity)
        if after is not None and not 0 <= after <= MAX_GAP:
            raise ConfigError(f"after must be 0..{MAX_GAP:g} seconds, got {after!r}")
        clip = sound if isinstance(sound, Clip) else read_audio(Path(sound))
        with self._lock:
            device = self._ensure_open()
            samples = self._for_device(clip, device, gain)
            self._next_ident += 1
            playing = Sound(self._next_ident, len(samples) / device.rate)
            request = {"op": "play", "id": playing.ident, "frames": len(samples)}
            if after is not None:
                request["after"] = round(after * device.rate)
            self._process.send(request, samples.tobytes(), sound=playing)
            return playing

    def stop(self) -> None:
        """Fade out whatever plays."""
        with self._lock:
            if self._process is not None and self._process.alive:
                self._process.send({"op": "stop"})

    def close(self) -> None:
        with self._lock:
            if self._process is not None:
                self._process.close()
                self._replace(None)

    @staticmethod
    def _for_device(clip: Clip, device: OutputDevice, gain: float) -> np.ndarray:
        """The clip as the stream plays it: the device's channels (stereo, or their mid on a mono device) at its
        rate, times the gain, its edges faded where they are not silence (fade_edges), float32 in native byte
        order."""
        samples = stereo(clip)
        if device.stream_channels < 2:
            samples = samples.mean(axis=1, keepdims=True)
        samples = resample(samples, clip.sample_rate, device.rate) * np.float32(gain)
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        fade_edges(samples, round(ONSET_SECONDS * device.rate), round(FADE_SECONDS * device.rate))
        return samples


def fade_edges(samples: np.ndarray, onset: int, end: int) -> None:
    """In place, on [frames, channels]: a linear fade-in over the first ``onset`` frames when the first frame is
    above SILENCE on any channel, and a fade-out over the last ``end`` frames, to 0 at the last, when the last one
    is. An edge at silence is left as it is (so is a drum's attack that rises from it), and a sound shorter than
    the two fades together is faded over the share of it each would have."""
    frames = len(samples)
    if frames == 0:
        return
    if onset + end > frames:
        onset, end = onset * frames // (onset + end), end * frames // (onset + end)
    if onset > 0 and np.abs(samples[0]).max() > SILENCE:
        samples[:onset] *= (np.arange(1, onset + 1, dtype=np.float32) / (onset + 1))[:, None]
    if end > 0 and np.abs(samples[-1]).max() > SILENCE:
        samples[frames - end:] *= (np.arange(end - 1, -1, -1, dtype=np.float32) / end)[:, None]


def _child_environment() -> dict:
    """The output process imports bridge from wherever this one did (a source tree run with PYTHONPATH)."""
    environment = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    paths = environment.get("PYTHONPATH", "").split(os.pathsep) if environment.get("PYTHONPATH") else []
    if root not in paths:
        environment["PYTHONPATH"] = os.pathsep.join([root, *paths])
    return environment
