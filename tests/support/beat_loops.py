"""Real drum loops for the loop, repaint and extend tests: hydrogen-drumkits one-shots placed on a beat grid.

A loop here is made as a DAW plays one on repeat: every hit is written modulo the loop's length, so a hit near
the end rings on over the wrap into the start, and the grid can start off the bar line (``offset`` in beats) so
that the wrap falls inside a sounding open hat, where any click or level step would show.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soxr

from bridge.engine.audio import Clip, read_audio
from bridge.engine.tempo import Bars

DRUMKITS = Path("/usr/share/hydrogen/data/drumkits")
KIT = DRUMKITS / "HardElectro1"
# (file, gain, beats within each bar): four on the floor, a backbeat, closed hats on the off-beats, and an open
# hat on the last off-beat that rings across the bar line.
PATTERN = (("PowR_BD_1.flac", 0.7, (0, 1, 2, 3)), ("PowR_SN_1.flac", 0.5, (1, 3)),
           ("CHH_1.flac", 0.25, (0.5, 1.5, 2.5)), ("Hard_Hse_OHH_1.flac", 0.3, (3.5,)))
# The same pattern from other kits the bundled model never trained on (docs/training-data.md: it trained on
# Audiophob and rumpf_kit_z01_h2): kick, snare, closed hat, open hat of each, for figures over several kits.
HELD_OUT_KITS = {
    "HardElectro1": ("PowR_BD_1.flac", "PowR_SN_1.flac", "CHH_1.flac", "Hard_Hse_OHH_1.flac"),
    "VariBreaks": ("VP Kick 1.flac", "VP Snare 1.flac", "VP Hat 1 Cl.flac", "VP Hat 1 Op.flac"),
    "Millo-Drums_v.1": ("bd1.flac", "snare1.flac", "closehihat3.flac", "openhat2.flac"),
    "ElectricEmpireKit": ("EE_Kick_Hard_1.flac", "EE_Snare_1.flac", "EE_Hat_Cl_Dirty.flac", "EE_Hat_Op_Dirty.flac"),
}


def one_shot(name: str, rate: int, kit: str = KIT.name) -> np.ndarray:
    """A kit file as mono float32 at ``rate``."""
    clip = read_audio(DRUMKITS / kit / name)
    mono = clip.samples.mean(axis=1)
    return mono if clip.sample_rate == rate else soxr.resample(mono, clip.sample_rate, rate)


def beat_loop(bars: float, bpm: float, rate: int, *, offset: float = 0.0, kit: str = KIT.name) -> Clip:
    """``bars`` of PATTERN at ``bpm``, exactly Bars(bars, bpm).frames(rate) long, stereo (the right a little
    quieter), the grid started ``offset`` beats before the loop's first sample; with ``kit``'s own kick, snare
    and hats (HELD_OUT_KITS) in place of HardElectro1's."""
    frames = Bars(bars, bpm).frames(rate)
    beat = 60.0 * rate / bpm
    out = np.zeros((frames, 2), np.float64)
    for name, (_, gain, beats) in zip(HELD_OUT_KITS[kit], PATTERN):
        shot = one_shot(name, rate, kit)
        if kit != KIT.name:  # kits' files differ in level: each brought to full scale before its gain
            shot = shot / np.abs(shot).max()
        hit = gain * shot
        for bar in range(int(np.ceil(bars))):
            for position in beats:
                start = round((4 * bar + position - offset) * beat)
                if start >= frames:
                    continue
                np.add.at(out, (start + np.arange(len(hit))) % frames, hit[:, None] * [1.0, 0.9])
    return Clip(out.astype(np.float32), rate)


def wrap_jump(samples: np.ndarray, rate: int) -> float:
    """The step from the last sample to the first over the median step within 10 ms of the wrap on either side;
    a step of stereo audio is the length of its (left, right) difference. Local, because a loop's median step
    over its whole length says little about its wrap: a loop quiet between hits has a tiny median, and one that
    is seamless by construction (hits written modulo its length, an open hat ringing over the wrap) measures
    3.8x its whole-loop median there, 1.3x the local one."""
    span = round(0.01 * rate)
    around = np.concatenate([samples[-span:], samples[:span]])
    steps = np.linalg.norm(np.diff(around, axis=0), axis=1)
    steps = np.delete(steps, span - 1)  # the wrap's own step is what is measured
    return float(np.linalg.norm(samples[0] - samples[-1]) / max(float(np.median(steps)), 1e-12))


def level_db(samples: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(samples, dtype=np.float64)) + 1e-20))


def wrap_level_step(samples: np.ndarray, rate: int) -> float:
    """dB between the first and the last 10 ms."""
    span = round(0.01 * rate)
    return abs(level_db(samples[:span]) - level_db(samples[-span:]))
