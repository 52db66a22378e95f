"""How variations of loops measure against their sources, on beats built from kits the model never trained on.

There is no held-out set of real drum loops under a licence we can use here, so the sources are made: one-bar
beats played from a held-out kit's own kick, snare and hat (``beats``: hits picked by the kit's instrument names,
``bridge.training.labels``; a few common patterns; each hit's tail rings on and wraps round the bar's end, as it
does when a DAW loops a bar). Each beat is varied once as a loop (``clips.vary_loop``, what `vary --loop` and a
press on a looped clip do), and measured against its source:
- groove: the correlation of the variation's level with the source's, 20 ms frames in dB (floored 60 dB under the
  source's loudest frame): 1 keeps every hit where and as loud as it was, 0 is another beat;
- hits: the level of each of the source's hits in the variation (its RMS over the 30 ms from its onset: the
  hit as heard; a peak would count crackle riding on it), in dB against the source's (median over hits): a kick
  that came out weaker reads negative;
- clicks: lone 1 ms spikes (``features.clicks``), counted beat by beat (each beat's window starts its own decay),
  a loop's total, the variation's beside its source's, paired: the crackle a variation adds;
- silent gaps: where the beat is digital silence (a 20 ms frame and both its neighbours under -100 dBFS: between
  an electronic kit's hits, cut short), the variation's level there, dBFS: a loop that keeps its silences reads
  FLOOR_DBFS; whatever rings or hisses there reads louder;
- DC added and samples at full scale, as for one-shots.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bridge.engine.audio import Clip, read_audio, to_model
from bridge.engine.clips import vary_loop
from bridge.engine.tempo import BEATS_PER_BAR, Bars
from bridge.training.evaluate import standard_error
from bridge.training.features import clicks
from bridge.training.labels import labelled
from bridge.training.vary_eval import FULL_SCALE_READ, Keep

log = logging.getLogger(__name__)

STEPS_PER_BAR = 16  # a pattern's grid: sixteenth notes of one 4/4 bar
# Patterns on that grid (which sixteenths each instrument plays): a rock beat, four on the floor, a breakbeat.
PATTERNS = {
    "rock": {"kick": (0, 8, 10), "snare": (4, 12), "hat": (0, 2, 4, 6, 8, 10, 12, 14)},
    "four": {"kick": (0, 4, 8, 12), "snare": (4, 12), "hat": (2, 6, 10, 14)},
    "break": {"kick": (0, 7, 10), "snare": (4, 12, 15), "hat": (0, 2, 4, 6, 8, 10, 12, 14)},
}
LEVELS_DB = {"kick": 0.0, "snare": -1.0, "hat": -8.0}  # each instrument's hits, under the kick
ACCENT_DB = 2.0  # each hit's level varies by up to this, as a drummer's does
PEAK = 10 ** (-3 / 20)  # a beat's peak: -3 dBFS, so a variation has room
FRAME_S = 0.02  # the groove's level frames
GROOVE_FLOOR_DB = 60.0  # frames further under the source's loudest count as this far under
HIT_S = 0.03  # a hit's level: its RMS over this long from its onset
FLOOR_DBFS = -120.0  # levels: digital silence reads this, not minus infinity
SILENT_DBFS = -100.0  # a beat's frame under this, with both neighbours, is a silent gap


@dataclass(frozen=True)
class Beat:
    name: str  # kit, pattern and the files played
    clip: Clip
    onsets: tuple[int, ...]  # frames where a hit starts


@dataclass(frozen=True)
class LoopFigures:
    label: str
    loops: int
    groove: float  # mean correlation
    groove_se: float
    hit_db: float  # mean over loops of the median hit level change
    hit_db_se: float
    clicks_variations: float
    clicks_sources: float
    clicks_change_se: float
    max_dc: float
    full_scale_samples: int
    seconds_per_loop: float
    each: tuple[tuple[float, float, float], ...]  # per loop: groove, hit level change, clicks added
    gaps: tuple[float | None, ...] = ()  # per loop: the variation's level in the beat's silent gaps (None: none)

    def lines(self) -> list[str]:
        return [f"{self.label}: {self.loops} variations of {self.loops} one-bar beats from held-out kits",
                f"  groove kept (correlation of the 20 ms level with the source's): {self.groove:.3f} "
                f"± {self.groove_se:.3f}",
                f"  the source's hits in the variation: {self.hit_db:+.1f} dB ± {self.hit_db_se:.1f} (median a loop)",
                f"  clicks a loop: variations {self.clicks_variations:.1f}, sources {self.clicks_sources:.1f}, "
                f"added {self.clicks_variations - self.clicks_sources:+.1f} ± {self.clicks_change_se:.1f}",
                self._gap_line(),
                f"  largest DC added {self.max_dc:.4f}; samples at full scale {self.full_scale_samples}; "
                f"{self.seconds_per_loop:.1f} s per loop"]

    def _gap_line(self) -> str:
        found = [level for level in self.gaps if level is not None]
        if not found:
            return f"  silent gaps: none in these {self.loops} beats"
        return (f"  silent gaps ({len(found)} of {self.loops} beats have them): the variation there "
                f"{statistics.fmean(found):.1f} dBFS ± {_se(found):.1f} (median a loop {statistics.median(found):.1f}; "
                f"digital silence reads {FLOOR_DBFS:.0f})")

    def against(self, other: LoopFigures) -> str:
        """This setting's figures less ``other``'s, loop by loop (the same beats and seeds), with standard errors."""
        if len(self.each) != len(other.each):
            raise ValueError("compare settings measured on the same beats")
        change = torch.tensor(self.each, dtype=torch.float64) - torch.tensor(other.each, dtype=torch.float64)
        (groove, hits, spikes), (groove_se, hits_se, spikes_se) = change.mean(0).tolist(), [
            standard_error(column) for column in change.T]
        gaps = [a - b for a, b in zip(self.gaps, other.gaps) if a is not None and b is not None]
        in_gaps = f", silent gaps {statistics.fmean(gaps):+.1f} ± {_se(gaps):.1f} dB" if gaps else ""
        return (f"  against {other.label}, loop by loop: groove {groove:+.3f} ± {groove_se:.3f}, hits "
                f"{hits:+.1f} ± {hits_se:.1f} dB, clicks {spikes:+.1f} ± {spikes_se:.1f}{in_gaps}")


def beats(folders, count: int, *, bpm: float = 120.0, sample_rate: int = 48000, seed: int = 0,
          only: set[Path] | None = None) -> list[Beat]:
    """Up to ``count`` one-bar stereo beats at ``bpm``, taken from the kits in ``folders`` in turn (each kit that has
    a kick, a snare and a hat), patterns in turn, hits drawn with ``seed``; with ``only`` (files, resolved), from
    those files alone (eval-vary leaves out what a judged model trained on)."""
    kits: dict[str, dict[str, list]] = {}
    for item in labelled(folders):
        if item.label in LEVELS_DB and (only is None or Path(item.path).resolve() in only):
            kits.setdefault(item.kit, {}).setdefault(item.label, []).append(item.path)
    usable = sorted(kit for kit, found in kits.items() if len(found) == len(LEVELS_DB))
    made: list[Beat] = []
    draw = random.Random(seed)
    for index in range(count if usable else 0):
        kit, pattern = usable[index % len(usable)], list(PATTERNS)[index // len(usable) % len(PATTERNS)]
        chosen = {name: draw.choice(sorted(kits[kit][name])) for name in LEVELS_DB}
        made.append(_beat(f"{kit} {pattern} ({', '.join(path.stem for path in chosen.values())})",
                          PATTERNS[pattern], chosen, bpm, sample_rate, draw))
    return made


def _beat(name: str, pattern: dict, chosen: dict, bpm: float, sample_rate: int, draw: random.Random) -> Beat:
    frames = Bars(1, bpm).frames(sample_rate)
    mix = np.zeros((2, frames))
    onsets = set()
    for instrument, positions in pattern.items():
        hit = to_model(read_audio(chosen[instrument]), sample_rate).double().numpy()
        hit = hit / max(float(np.abs(hit).max()), 1e-9)
        for step in positions:
            start = round(step * frames / STEPS_PER_BAR)
            gain = 10 ** ((LEVELS_DB[instrument] + draw.uniform(-ACCENT_DB, ACCENT_DB)) / 20)
            where = (start + np.arange(hit.shape[1])) % frames  # a tail past the bar's end wraps round
            np.add.at(mix, (slice(None), where), gain * hit)
            onsets.add(start)
    mix *= PEAK / max(float(np.abs(mix).max()), 1e-9)
    return Beat(name, Clip(mix.T.astype(np.float32), sample_rate), tuple(sorted(onsets)))


def measure(engine, sources: list[Beat], *, label: str, noise: float, steps: int, sampler: str, shape: float,
            seed: int = 0, keep: Keep = None) -> LoopFigures:
    """One loop variation of every beat (seed ``seed + i``), measured against its beat; ``keep`` as for
    vary_eval.measure."""
    grooves, hits, spikes_made, spikes_own, gaps, dc, full, seconds = [], [], [], [], [], 0.0, 0, 0.0
    for i, beat in enumerate(sources):
        started = time.monotonic()
        (variation,) = vary_loop(engine, beat.clip, 1, noise=noise, steps=steps, sampler=sampler, seed=[seed + i],
                                 shape=shape)
        seconds += time.monotonic() - started
        log.info("%s: %d/%d %s", label, i + 1, len(sources), beat.name)
        if keep is not None:
            keep(f"beat {i + 1:02d} {label}", variation)
        made, own = variation.samples, beat.clip.samples
        grooves.append(groove(made, own, beat.clip.sample_rate))
        hits.append(statistics.median(hit_levels(made, beat) - hit_levels(own, beat)))
        spikes_made.append(loop_clicks(made, beat))
        spikes_own.append(loop_clicks(own, beat))
        gaps.append(gap_level(made, own, beat.clip.sample_rate))
        dc = max(dc, float(np.abs(made.mean(axis=0) - own.mean(axis=0)).max()))
        full += int((np.abs(made) >= FULL_SCALE_READ).sum())
    added = torch.tensor(spikes_made, dtype=torch.float64) - torch.tensor(spikes_own, dtype=torch.float64)
    return LoopFigures(label, len(sources), statistics.fmean(grooves), _se(grooves), statistics.fmean(hits),
                       _se(hits), statistics.fmean(spikes_made), statistics.fmean(spikes_own),
                       standard_error(added), dc, full, seconds / len(sources),
                       tuple(zip(grooves, hits, added.tolist())), tuple(gaps))


def _se(values: list[float]) -> float:
    return standard_error(torch.tensor(values, dtype=torch.float64))


def levels(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """The mid channel's level in FRAME_S frames, in dB: [frames]."""
    return _db(_frame_power(samples.astype(np.float64).mean(axis=1, keepdims=True), sample_rate)[:, 0])


def _frame_power(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """[frames, channels]: each channel's mean square over FRAME_S frames of [frames, channels] (a partial last
    frame left out)."""
    size = max(1, round(FRAME_S * sample_rate))
    count = len(samples) // size
    return (samples[: count * size].astype(np.float64).reshape(count, size, -1) ** 2).mean(axis=1)


def groove(made: np.ndarray, own: np.ndarray, sample_rate: int) -> float:
    """Correlation of the two level curves, each floored GROOVE_FLOOR_DB under the source's loudest frame."""
    reference = levels(own, sample_rate)
    floor = reference.max() - GROOVE_FLOOR_DB
    a, b = np.maximum(levels(made, sample_rate), floor), np.maximum(reference, floor)
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def gap_level(made: np.ndarray, own: np.ndarray, sample_rate: int) -> float | None:
    """The variation's level (its louder channel's RMS, dBFS) over the FRAME_S frames where the beat is silent: the
    frame and both its neighbours (circularly: it is a loop) under SILENT_DBFS in every channel. None: no such gap."""
    own_power, made_power = (_frame_power(samples, sample_rate).max(axis=1) for samples in (own, made))
    count = min(len(own_power), len(made_power))
    quiet = _db(own_power[:count]) < SILENT_DBFS
    gap = quiet & np.roll(quiet, 1) & np.roll(quiet, -1)
    if not gap.any():
        return None
    return float(_db(np.asarray(made_power[:count][gap].mean())))


def hit_levels(samples: np.ndarray, beat: Beat) -> np.ndarray:
    """Each of the beat's hits, as its RMS (mid channel) over HIT_S from its onset, in dB: [hits]."""
    mid = samples.astype(np.float64).mean(axis=1)
    size = max(1, round(HIT_S * beat.clip.sample_rate))
    return _db(np.asarray([np.mean(mid[np.arange(start, start + size) % len(mid)] ** 2) for start in beat.onsets]))


def _db(power: np.ndarray) -> np.ndarray:
    """Power in dB, digital silence at FLOOR_DBFS."""
    return np.maximum(10 * np.log10(np.maximum(power, 1e-30)), FLOOR_DBFS)


def loop_clicks(samples: np.ndarray, beat: Beat) -> int:
    """Clicks over a one-bar loop, counted a beat at a time: each beat's window has its own peak, after which
    ``features.clicks`` looks for lone spikes."""
    audio = torch.from_numpy(np.ascontiguousarray(samples.T, dtype=np.float32))[None]
    span = math.ceil(audio.shape[-1] / BEATS_PER_BAR)
    return sum(int(clicks(audio[..., start:start + span], beat.clip.sample_rate)[0])
               for start in range(0, audio.shape[-1], span))
