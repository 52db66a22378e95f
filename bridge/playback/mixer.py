"""What the output stream plays: the sound of the last press, and the ones it cut fading out under it.

Runs inside PortAudio's callback (bridge.playback.output), so it only moves numpy arrays: no locks, no I/O, no
allocation beyond the callback's own block. Other threads hand it sounds through a deque (appends and pops are
atomic) and read back which sounds have ended through another.

A new sound cuts the one playing: that one is not stopped dead (a step from its last sample to zero is a click)
but faded to silence over ``fade_frames`` (a linear ramp, so the step it adds to the signal is at most its level
divided by the ramp's length), while the new one starts at once with its own first sample.

A sound handed in with ``after`` (a press's second variation and on) does not cut: it waits until the sounds queued
before it have played, then ``after`` frames of silence, and starts. A sound that cuts also cuts every one still
waiting (they end unplayed), so a new press is heard at once however many variations the last one had.
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
    after: int | None = None  # queued: frames of silence after the sound before it; None: cuts what plays

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
        self._queued: deque[Voice] = deque()  # callback thread only: to play one after another, after _voices[-1]

    def play(self, ident: int, samples: np.ndarray, after: int | None = None) -> None:
        """Play samples, cutting what plays; with ``after`` (frames, >= 0): once what is queued has played, after
        that much silence, cutting nothing."""
        if samples.ndim != 2 or samples.shape[1] != self.channels:
            raise ValueError(f"expected [frames, {self.channels}] samples, got shape {samples.shape}")
        if after is not None and after < 0:
            raise ValueError(f"after must be at least 0 frames, got {after}")
        self.incoming.append(Voice(ident, np.ascontiguousarray(samples, dtype=np.float32), after=after))

    def stop(self) -> None:
        self.incoming.append(STOP)

    @property
    def playing(self) -> bool:
        """Anything still sounding or handed in (read from other threads: a snapshot)."""
        return bool(self._voices) or bool(self._queued) or bool(self.incoming)

    def render(self, out: np.ndarray) -> None:
        """Mix the next len(out) frames into out ([frames, channels] float32), advancing every voice."""
        while self.incoming:
            voice = self.incoming.popleft()
            if voice is not STOP and voice.after is not None:
                if self._queued or any(playing.fade_left is None for playing in self._voices):
                    voice.position = -voice.after  # its gap, played once the one before it ends
                    self._queued.append(voice)
                else:  # nothing to wait for: at once
                    self._voices.append(voice)
                continue
            for playing in self._voices:
                if playing.position < 0:  # still in its gap: nothing sounds, nothing to fade
                    playing.fade_left = 0
                elif playing.fade_left is None:
                    playing.fade_left = self.fade_frames
            while self._queued:  # never heard
                self.ended.append(self._queued.popleft().ident)
            if voice is not STOP:
                self._voices.append(voice)
        out.fill(0)
        for voice in list(self._voices):
            start = self._mix(voice, out)
            # The next queued sound follows the one that ended here within the same block, to the frame.
            while voice.fade_left is None and voice.done and self._queued:
                voice = self._queued.popleft()
                self._voices.append(voice)
                start += self._mix(voice, out[start:])
        for voice in [v for v in self._voices if v.done]:
            self._voices.remove(voice)
            self.ended.append(voice.ident)

    def _mix(self, voice: Voice, out: np.ndarray) -> int:
        """Mix voice into out from its start; the frames of out it took (silence of its gap included)."""
        gap = 0
        if voice.done:
            return 0
        if voice.position < 0:  # a queued sound's silence before it
            gap = min(len(out), -voice.position)
            voice.position += gap
            if voice.position < 0:
                return gap
        frames = min(len(out) - gap, len(voice.samples) - voice.position)
        if voice.fade_left is not None:
            frames = min(frames, voice.fade_left)
        chunk = voice.samples[voice.position: voice.position + frames]
        if voice.fade_left is None:
            out[gap: gap + frames] += chunk
        else:  # the ramp continues where the last block left it: level fade_left / fade_frames, falling to 0
            ramp = (voice.fade_left - np.arange(1, frames + 1, dtype=np.float32)) / self.fade_frames
            out[gap: gap + frames] += chunk * ramp[:, None]
            voice.fade_left -= frames
        voice.position += frames
        return gap + frames
