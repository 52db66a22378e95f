"""How a producer's variations measure against their sources, on one-shots the model never trained on.

The figures issue 10 asks of `vary` (each per (source, variation) pair, at one noise level):
- tail: level of the last quarter of the variation minus the source's, in dB (a model that leaves hiss or
  crackle over a decay that has gone quiet reads high; one that cuts the decay short reads low);
- MMD^2 to real drums of one variation per source beside the sources' own MMD^2 (``bridge.training.evaluate``),
  with the paired change and its standard error: "still drum hits of that kind";
- DC added (the largest change of a channel's mean from the source's: some sources carry an offset of their own)
  and samples at full scale, in the written files' terms;
- clicks (``bridge.training.features.clicks``: lone 1 ms spikes in the decay) of the variations beside their
  sources', paired: the crackle a variation adds, which MMD^2 and the tail's level weigh little;
- how far a variation lies from its own source on the same standardised features, beside how far a source lies
  from the nearest other source: "a bit different" is well under that spacing, and 0 is a copy.

Sources and reference both come from ``data`` (folders of real one-shots): a seeded half of the files is the
reference and the rest the sources, so no source is compared with itself. Only files up to ``max_seconds`` are
sources (long cymbals would take most of the time).
"""

from __future__ import annotations

import logging
import math
import random
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bridge.engine.audio import Clip, read_audio, to_model
from bridge.engine.clips import vary_clip
from bridge.training.data import SILENCE, to_window
from bridge.training.evaluate import Judge, standard_error
from bridge.training.features import clicks

log = logging.getLogger(__name__)

FULL_SCALE_READ = 0.9999  # a written sample at or above this counts as at full scale
Keep = Callable[[str, Clip], None] | None  # measure's keep: (a name for the file, the variation)


@dataclass(frozen=True)
class VaryFigures:
    label: str
    tail_db_median_se: float
    mmd2_variations: float
    mmd2_sources: float
    mmd2_change: float
    mmd2_change_se: float
    max_dc: float
    full_scale_samples: int
    seconds_per_variation: float
    clicks_sources: float
    clicks_change_se: float
    distance_to_source: float  # median, on the judge's standardised features
    source_spacing: float  # median distance from a source to the nearest other source
    # Per source, in the sources' order: the figures above that are their medians or means are derived from them,
    # and two measures on the same sources and seeds are paired through them (against)
    tails: tuple[float, ...]  # the variation's tail level minus its source's, dB
    spikes: tuple[float, ...]  # the variation's clicks
    described: torch.Tensor | None = field(default=None, repr=False, compare=False)  # the judge's features

    @property
    def pairs(self) -> int:
        return len(self.tails)

    @property
    def tail_db_median(self) -> float:
        return statistics.median(self.tails)

    @property
    def tail_db_mean(self) -> float:
        return statistics.fmean(self.tails)

    @property
    def clicks_variations(self) -> float:
        return statistics.fmean(self.spikes)

    def lines(self) -> list[str]:
        return [f"{self.label}: {self.pairs} variations of {self.pairs} held-out sources",
                f"  tail level, variation - source: median {self.tail_db_median:+.1f} dB "
                f"(± {self.tail_db_median_se:.1f} se), mean {self.tail_db_mean:+.1f} dB",
                f"  MMD^2 to real drums: variations {self.mmd2_variations:.4f}, sources {self.mmd2_sources:.4f}, "
                f"change {self.mmd2_change:+.4f} ± {self.mmd2_change_se:.4f}",
                f"  largest DC added (variation - source) {self.max_dc:.4f}; samples at full scale {self.full_scale_samples}; "
                f"{self.seconds_per_variation:.2f} s per variation",
                f"  clicks in the decay: variations {self.clicks_variations:.1f}, sources {self.clicks_sources:.1f}, "
                f"added {self.clicks_variations - self.clicks_sources:+.1f} ± {self.clicks_change_se:.1f} "
                f"(lone 1 ms spikes a sound; real one-shots about 2, crackle dozens)",
                f"  distance from a variation to its source: median {self.distance_to_source:.2f} (from a source "
                f"to the nearest other source: median {self.source_spacing:.2f}; eval's standardised features)"]

    def against(self, other: VaryFigures, judge: Judge) -> str:
        """These figures less ``other``'s, source by source: another model or setting measured on the same sources
        and seeds by the same judge. Pairing cancels what the choice of sources adds to each figure, so a change
        far smaller than either measure's own error still shows."""
        if len(self.tails) != len(other.tails) or self.described is None or other.described is None:
            raise ValueError("compare measures of the same sources")
        tails = [ours - theirs for ours, theirs in zip(self.tails, other.tails)]
        mmd2_change, mmd2_se = judge.paired(self.described, other.described)
        spikes = torch.tensor(self.spikes, dtype=torch.float64) - torch.tensor(other.spikes, dtype=torch.float64)
        return (f"  against {other.label}, source by source: tail {statistics.median(tails):+.1f} dB "
                f"(± {_median_se(tails):.1f} se, median), MMD^2 {mmd2_change:+.4f} ± {mmd2_se:.4f}, clicks "
                f"{float(spikes.mean()):+.1f} ± {standard_error(spikes):.1f} a variation")


def split(files: list[Path], max_seconds: float, count: int, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """(reference, sources): a seeded half of ``files`` as the reference; up to ``count`` of the others that last
    at most ``max_seconds`` as sources, taken across folders in turn so every kit is represented. A silent file
    (peak under data.SILENCE, as OneShots leaves it out of a reference: a Hydrogen kit's emptySample.flac) is no
    source: its variations are silence for every model, and each such pair pulled the paired figures toward 0
    while counting in n. Those left out are said in one line."""
    import soundfile

    shuffled = sorted(files)
    random.Random(seed).shuffle(shuffled)
    half = len(shuffled) // 2
    reference, rest = sorted(shuffled[:half]), shuffled[half:]
    by_folder: dict[Path, list[Path]] = {}
    for path in rest:
        try:
            info = soundfile.info(str(path))
        except Exception:  # unreadable: OneShots reports it for the reference; a source must be readable
            continue
        if 0 < info.frames / info.samplerate <= max_seconds:
            by_folder.setdefault(path.parent, []).append(path)
    sources, silent, queues = [], [], [queue for _folder, queue in sorted(by_folder.items())]
    while len(sources) < count and any(queues):
        for queue in queues:
            if queue and len(sources) < count:
                path = queue.pop(0)
                try:
                    samples = read_audio(path).samples
                except Exception:  # unreadable after all: as above
                    continue
                (silent if samples.size == 0 or np.abs(samples).max() < SILENCE else sources).append(path)
    if silent:
        log.warning("left out %d silent source%s (peak under %g): %s", len(silent), "s" * (len(silent) > 1),
                    SILENCE, ", ".join(str(path) for path in silent))
    return reference, sources


def tail_db(samples: np.ndarray) -> float:
    """RMS of the last quarter of [frames, channels], in dB."""
    quarter = samples[samples.shape[0] * 3 // 4:]
    return 20 * math.log10(max(float(np.sqrt(np.mean(quarter.astype(np.float64) ** 2))), 1e-10))


def measure(engine, judge: Judge, sources: list[Path], *, label: str, noise: float, steps: int, sampler: str,
            shape: float, seed: int = 0, keep: Keep = None) -> VaryFigures:
    """One variation of every source (seed ``seed + i``), measured against its source; ``keep(name, clip)`` is
    handed each variation (to be listened to) when given."""
    import time

    tails, dc, full, windows_in, windows_out, seconds = [], 0.0, 0, [], [], 0.0
    for i, path in enumerate(sources):
        clip = read_audio(path)
        started = time.monotonic()
        (variation,) = vary_clip(engine, clip, 1, noise=noise, steps=steps, sampler=sampler, seed=[seed + i],
                                 shape=shape)
        seconds += time.monotonic() - started
        log.info("%s: %d/%d %s", label, i + 1, len(sources), path.name)
        if keep is not None:
            keep(f"{path.stem} {label}", variation)
        tails.append(tail_db(variation.samples) - tail_db(clip.samples))
        dc = max(dc, float(np.abs(variation.samples.mean(axis=0) - clip.samples.mean(axis=0)).max()))
        full += int((np.abs(variation.samples) >= FULL_SCALE_READ).sum())
        for target, audio in ((windows_in, clip), (windows_out, variation)):
            target.append(to_window(to_model(audio, engine.sample_rate).numpy(), engine.window))
    made, own = torch.from_numpy(np.stack(windows_out)), torch.from_numpy(np.stack(windows_in))
    described_made, described_own = judge.features(made), judge.features(own)  # once: every figure below uses them
    change, change_se = judge.paired(described_made, described_own)
    spikes_made, spikes_own = (clicks(windows, engine.sample_rate).double() for windows in (made, own))
    spacing = torch.cdist(described_own, described_own).fill_diagonal_(float("inf")).amin(1)
    return VaryFigures(label, _median_se(tails), judge.distance(described_made), judge.distance(described_own),
                       change, change_se, dc, full, seconds / len(sources), float(spikes_own.mean()),
                       standard_error(spikes_made - spikes_own),
                       float((described_made - described_own).norm(dim=1).median()), float(spacing.median()),
                       tuple(tails), tuple(spikes_made.tolist()), described_made)


def _median_se(values: list[float], rounds: int = 1000) -> float:
    """Bootstrap standard error of the median (seeded: the same figures print the same)."""
    generator = np.random.default_rng(0)
    data = np.asarray(values)
    medians = [np.median(generator.choice(data, len(data))) for _ in range(rounds)]
    return float(np.std(medians))


def denoising_error(engine, sources: list[Path], times=(0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7),
                    seed: int = 0) -> list[tuple[float, float, float]]:
    """Where a variation's error arises: for each noise level t, one network call on each source noised to t
    (seed ``seed + i``), and the median over sources of the denoised estimate's error relative to the source, in
    dB, over the whole clip and over its last quarter (the decay). (t, whole, tail) per level."""
    from bridge.engine.schedules import alpha_sigma

    clips = [to_model(read_audio(path), engine.sample_rate) for path in sources]
    rows = []
    for t in times:
        alpha, sigma = (float(w) for w in alpha_sigma(torch.tensor(float(t))))
        whole, tail = [], []
        for i, x in enumerate(clips):
            length = x.shape[-1]
            x0 = torch.nn.functional.pad(x, (0, engine.padded_length(length) - length))[None]
            noise = torch.randn(x0.shape, generator=torch.Generator("cpu").manual_seed(seed + i))
            noised = (alpha * x0 + sigma * noise).to(engine.device)
            with torch.inference_mode():
                v = engine.network(noised, torch.full((1,), float(t), device=engine.device)).float().cpu()
            error = (alpha * noised.cpu() - sigma * v - x0)[0, :, :length]
            quarter = length * 3 // 4
            whole.append(_db(error) - _db(x))
            tail.append(_db(error[:, quarter:]) - _db(x[:, quarter:]))
        rows.append((float(t), statistics.median(whole), statistics.median(tail)))
    return rows


def _db(audio: torch.Tensor) -> float:
    return 20 * math.log10(max(float(audio.double().pow(2).mean().sqrt()), 1e-10))
