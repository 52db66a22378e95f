"""Test signals and the click measure shared by the mixer and playback suites."""

from __future__ import annotations

import numpy as np
import soxr

from bridge.engine.audio import Clip
from bridge.playback.player import FADE_SECONDS, ONSET_SECONDS, SILENCE


def held_tone(seconds: float, rate: int) -> np.ndarray:
    """[frames, 2]: a level held near 0.5 with a slow 100 Hz wobble. Its own sample steps are tiny (~0.0013), so
    cutting it dead anywhere is a step of about 0.5: the worst case for a click."""
    t = np.arange(round(seconds * rate)) / rate
    mono = 0.5 + 0.1 * np.sin(2 * np.pi * 100 * t)
    return np.stack([mono, 0.8 * mono], axis=1).astype(np.float32)


def sine(seconds: float, rate: int, frequency: float = 1000.0, level: float = 0.3) -> np.ndarray:
    """[frames, 2]: a sine starting at zero (its onset is no step of its own)."""
    t = np.arange(round(seconds * rate)) / rate
    mono = level * np.sin(2 * np.pi * frequency * t)
    return np.stack([mono, -mono], axis=1).astype(np.float32)


def kick_at_transient(seconds: float, rate: int) -> np.ndarray:
    """[frames, 2]: a kick trimmed at its transient, as one-shots are cut: a 1 ms click over a pitch-swept body,
    starting at 0.4 (its first sample is its attack, not silence) and ending away from silence."""
    t = np.arange(round(seconds * rate)) / rate
    body = np.sin(2 * np.pi * (50 * t + 150 * 0.03 * (1 - np.exp(-t / 0.03)))) * np.exp(-t / 0.15)
    mono = np.clip(0.6 * body + 0.4 * np.exp(-t / 0.0008), -1, 1)
    return np.stack([mono, mono], axis=1).astype(np.float32)


def largest_step(samples: np.ndarray) -> float:
    """The largest change from one sample to the next on any channel."""
    return float(np.abs(np.diff(samples, axis=0)).max()) if len(samples) > 1 else 0.0


def click_bound(cut: np.ndarray, new: np.ndarray, fade_frames: int) -> float:
    """The largest step a clean cut may show: both signals' own steps (they overlap while the cut one fades; the
    new one's include its onset from silence) plus the fade's, the cut sound's peak over the fade's length."""
    onset = float(np.abs(new[0]).max()) if len(new) else 0.0
    return largest_step(cut) + max(largest_step(new), onset) + float(np.abs(cut).max()) / fade_frames


def edges(samples: np.ndarray, rate: int) -> np.ndarray:
    """samples as the player hands them to the device: an edge that is not silence (above -60 dBFS) faded, the
    start in over ONSET_SECONDS from 1/(n+1) up, the end out over FADE_SECONDS down to 0 at the last frame."""
    out = np.array(samples, dtype=np.float32)
    onset, end = round(ONSET_SECONDS * rate), round(FADE_SECONDS * rate)
    assert len(out) >= onset + end, "a test signal shorter than both fades"
    if np.abs(out[0]).max() > SILENCE:
        for i in range(onset):
            out[i] *= np.float32((i + 1) / (onset + 1))
    if np.abs(out[-1]).max() > SILENCE:
        for i in range(end):
            out[len(out) - end + i] *= np.float32((end - 1 - i) / end)
    return out


def reference(clip: Clip, rate: int, gain: float = 1.0) -> np.ndarray:
    """What a clip should sound like on a stereo device at rate: mono on both sides, resampled with soxr's
    very-high-quality filter (the project's rule, computed here independently), times the gain, its edges faded
    where they are not silence."""
    samples = clip.samples if clip.channels == 2 else np.repeat(clip.samples[:, :1], 2, axis=1)
    if clip.sample_rate != rate:
        samples = soxr.resample(samples, clip.sample_rate, rate, quality="VHQ")
    return edges((samples * np.float32(gain)).astype(np.float32), rate)
