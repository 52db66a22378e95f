"""What the output stream plays: the sound of the last press, and the ones it cut fading out under it.

Runs inside PortAudio's callback (bridge.playback.output), so it only moves numpy arrays: no locks, no I/O, no
allocation beyond the callback's own block. Other threads hand it sounds through a deque (appends and pops are
atomic) and read back which sounds have ended through another.

A new sound cuts the one playing: that one is not stopped dead (a step from its last sample to zero is a click)
but faded to silence over ``fade_frames`` (a linear ramp, so the step it adds to the signal is at most its level
divided by the ramp's length), while the new one starts at once with its own first sample.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(eq=False)
class Voice:
    """One sound being played: samples [frames, channels] at the device's rate, gain already applied."""

    ident: int
    samples: np.ndarray
    position: int = 0
    fade_left: int | None = None  # frames of fade-out still to play; None: playing at full level

    @property
    def done(self) -> bool:
        return self.position >= len(self.samples) or self.fade_left == 0


STOP = None  # handed in instead of a voice: fade out whatever plays


class Mixer:
    """The voices of one output stream; ``render`` fills the stream's buffer."""

    def __init__(self, channels: int, fade_frames: int):
        if fade_frames < 1:
            raise ValueError(f"fade_frames must be at least 1, got {fade_frames}")
        self.channels = channels
        self.fade_frames = fade_frames
        self.incoming: deque[Voice | None] = deque()  # from the thread that reads requests
        self.ended: deque[int] = deque()  # idents of voices that finished or were faded out
        self._voices: list[Voice] = []  # callback thread only

    def play(self, ident: int, samples: np.ndarray) -> None:
        if samples.ndim != 2 or samples.shape[1] != self.channels:
            raise ValueError(f"expected [frames, {self.channels}] samples, got shape {samples.shape}")
        self.incoming.append(Voice(ident, np.ascontiguousarray(samples, dtype=np.float32)))

    def stop(self) -> None:
        self.incoming.append(STOP)

    @property
    def playing(self) -> bool:
        """Anything still sounding or handed in (read from other threads: a snapshot)."""
        return bool(self._voices) or bool(self.incoming)

    def render(self, out: np.ndarray) -> None:
        """Mix the next len(out) frames into out ([frames, channels] float32), advancing every voice."""
        while self.incoming:
            voice = self.incoming.popleft()
            for playing in self._voices:
                if playing.fade_left is None:
                    playing.fade_left = self.fade_frames
            if voice is not STOP:
                self._voices.append(voice)
        out.fill(0)
        for voice in self._voices:
            self._mix(voice, out)
        for voice in [v for v in self._voices if v.done]:
            self._voices.remove(voice)
            self.ended.append(voice.ident)

    def _mix(self, voice: Voice, out: np.ndarray) -> None:
        frames = min(len(out), len(voice.samples) - voice.position)
        if voice.fade_left is not None:
            frames = min(frames, voice.fade_left)
        chunk = voice.samples[voice.position: voice.position + frames]
        if voice.fade_left is None:
            out[:frames] += chunk
        else:  # the ramp continues where the last block left it: level fade_left / fade_frames, falling to 0
            ramp = (voice.fade_left - np.arange(1, frames + 1, dtype=np.float32)) / self.fade_frames
            out[:frames] += chunk * ramp[:, None]
            voice.fade_left -= frames
        voice.position += frames
