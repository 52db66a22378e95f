"""Bars at a tempo as an exact number of samples: the one place where a loop's length is decided.

A loop of N bars at B beats per minute (4/4: four beats a bar) lasts ``N * 4 * 60 / B`` seconds. At a sample rate
that is rarely a whole number of samples (1 bar at 174 BPM is 60827.59 samples at 44.1 kHz), so the length is
rounded to the nearest sample, as a DAW rounds a loop's end to its sample grid: the loop then drifts against the
tempo by under half a sample per cycle (10 us at 48 kHz), far below what a producer hears and what the DAW itself
keeps. No torch here: the transports import this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bridge.constants import MAX_SECONDS
from bridge.errors import ConfigError

BEATS_PER_BAR = 4
MIN_BPM, MAX_BPM = 20.0, 999.0
MIN_BARS, MAX_BARS = 0.25, 64.0  # one beat .. 64 bars


@dataclass(frozen=True)
class Bars:
    """``bars`` (may be fractional: 0.5 is two beats) of 4/4 at ``bpm`` beats per minute."""

    bars: float
    bpm: float

    def __post_init__(self):
        if not (math.isfinite(self.bars) and MIN_BARS <= self.bars <= MAX_BARS):
            raise ConfigError(f"bars must be in {MIN_BARS:g}..{MAX_BARS:g}, got {self.bars:g}")
        if not (math.isfinite(self.bpm) and MIN_BPM <= self.bpm <= MAX_BPM):
            raise ConfigError(f"bpm must be in {MIN_BPM:g}..{MAX_BPM:g}, got {self.bpm:g}")
        if self.seconds > MAX_SECONDS:  # the limit a length in seconds has (64 bars at 20 BPM is 768 s)
            raise ConfigError(f"{self.label} lasts {self.seconds:g} s: at most {MAX_SECONDS:g} s (fewer bars or a "
                              "faster tempo)")

    @classmethod
    def of(cls, bars: float | None, bpm: float | None) -> Bars | None:
        """The length --bars and --bpm ask for; None when neither is given; one without the other is an error."""
        if bars is None and bpm is None:
            return None
        if bars is None or bpm is None:
            raise ConfigError("give both bars and bpm (a length in bars needs a tempo)")
        return cls(float(bars), float(bpm))

    @property
    def seconds(self) -> float:
        return self.bars * BEATS_PER_BAR * 60.0 / self.bpm

    def frames(self, sample_rate: int) -> int:
        """The length in samples at ``sample_rate``: the nearest whole sample."""
        return max(1, round(self.bars * BEATS_PER_BAR * 60.0 * sample_rate / self.bpm))

    @property
    def label(self) -> str:
        """How file names show it: "2 bars 120 bpm"."""
        return f"{self.bars:g} bar{'' if self.bars == 1 else 's'} {self.bpm:g} bpm"


def loop_label(loop: bool, bars: Bars | None) -> str:
    """What a loop adds to a file's name, the CLI's and the service's alike: "loop 1 bar 120 bpm" ("kick loop 1 bar
    120 bpm var 001.wav"), "loop" for a loop as long as its clip, "" for what is not a loop."""
    if not loop:
        return ""
    return "loop" + (f" {bars.label}" if bars is not None else "")
