"""How close a model's sounds are to real drum one-shots, beside baselines that bracket the scale.

The distance is the squared maximum mean discrepancy (MMD^2, unbiased, Gaussian kernel) between two sets of
per-clip descriptions (bridge.training.features.describe): log-mel mean and spread (timbre), the frame-energy
envelope (attack and decay) and the peak level. MMD compares whole distributions from few samples without a
downloaded embedding network, and it punishes both poor sounds and a lack of variety. Every number in one
evaluation shares one scale: features are standardised by the real reference set and the kernel width is the
median distance between its members.

Beside it, the clicks in each sound's decay (bridge.training.features.clicks): lone 1 ms spikes, which the
ear hears as crackle and the 21 ms frames of the description average away.

Baselines: the floor is real vs real (held-out files against training files: what a perfect model would score),
noise bursts shaped by real drum envelopes (right envelope, wrong sound) and the untrained network.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from bridge.engine.engine import Engine
from bridge.engine.clips import generate_clips
from bridge.engine.guides.builtin import hits, rises
from bridge.engine.unet import DanceDiffusionUNet
from bridge.training.features import clicks, describe, standardiser

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Score:
    label: str
    mmd2: float
    count: int
    seconds_per_sound: float | None = None
    spread: float | None = None  # jackknife standard error over the row's clips
    change: float | None = None  # mmd2 minus the first setting's (or another model's), on the same seeds
    change_error: float | None = None  # its standard error
    clicks: float | None = None  # lone spikes in a clip's decay, on average (features.clicks: MMD^2 weighs them little)
    clicks_error: float | None = None  # its standard error
    # dB a sound's level rises on its way down from its peak (bridge.engine.guides.builtin.rises), on average: a
    # clean decay 0, pumping or flams tens of dB, which MMD^2's pooled features do not see
    rises: float | None = None
    rises_error: float | None = None  # its standard error
    # the share of sounds with two hits or more (builtin.hits, whichever is the loudest: rises misses a later hit
    # that is the loudest), in %: real one-shots of six held-out kits 0 of 136
    hits: float | None = None
    # clicks minus the baseline's, sound by sound on the same seeds, on average, and its standard error: whether a
    # model or setting adds or takes crackle, with the pairing's error rather than each row's own
    clicks_change: float | None = None
    clicks_change_error: float | None = None


class Judge:
    """Scores sets of clips against one real reference set; ``labels`` (a class name or None per reference clip)
    let it also score against the reference's sounds of some classes (``paired_to_classes``), and ``clips`` (the
    reference audio, kept) against those a caller picks by any measure of them (``paired_to_some``)."""

    def __init__(self, reference: torch.Tensor, sample_rate: int, labels: list[str | None] | None = None):
        if len(reference) < 2:
            raise ValueError("the reference set needs at least 2 clips")
        if labels is not None and len(labels) != len(reference):
            raise ValueError(f"{len(labels)} labels for {len(reference)} reference clips")
        self.sample_rate, self.labels, self.length = sample_rate, labels, reference.shape[-1]
        self.clips = reference  # [N, C, L], not copied: what a caller measures to pick some (paired_to_some)
        features = describe(reference, sample_rate).double()
        self.mean, self.std = standardiser(features)
        self.reference = self._standardise(features)
        distances = torch.cdist(self.reference, self.reference)
        self.bandwidth = float(distances[distances > 0].median()) if (distances > 0).any() else 1.0

    def _standardise(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        """The standardised description of clips [N, 2, L], on the reference's scale, each brought to the
        reference's length first (silence after a shorter one, as a one-shot file sits in its window; a longer one
        cut). The envelope is read at fixed points over the whole clip, so a 0.5 s render beside 1.37 s windows
        was read at times 2.7 times earlier than they were: its tail counted as held where theirs had ended
        (eval-guides --seconds 0.5 did this until 2026-12-02: docs/guidance.md, "Drum-likeness of a class")."""
        if len(clips) < 3:
            raise ValueError("need at least 3 clips to compare")
        if clips.shape[-1] != self.length:
            clips = F.pad(clips, (0, self.length - clips.shape[-1])) if clips.shape[-1] < self.length \
                else clips[..., :self.length]
        return self._standardise(describe(clips, self.sample_rate).double())

    def mmd2(self, clips: torch.Tensor) -> float:
        """Unbiased MMD^2 between clips [N, 2, L] and the reference; about 0 when they come from one distribution."""
        return self.distance(self.features(clips))

    def distance(self, features: torch.Tensor) -> float:
        """MMD^2 of clips already described by ``features`` (for a caller that uses them more than once)."""
        return mmd2(features, self.reference, self.bandwidth)

    def score(self, label: str, clips: torch.Tensor, seconds_per_sound: float | None = None, *,
              baseline: torch.Tensor | None = None) -> Score:
        """MMD^2 of clips with its standard error and, given a ``baseline`` set rendered from the same seeds, the
        paired change from it (see paired_difference)."""
        features = self.features(clips)
        value = mmd2(features, self.reference, self.bandwidth)
        spread = jackknife_error(lambda keep: mmd2(features[keep], self.reference, self.bandwidth), len(features))
        change = self.paired(features, self.features(baseline)) if baseline is not None else (None, None)
        spikes = clicks(clips, self.sample_rate).double()
        uneven = rises(clips.float(), self.sample_rate).double()
        doubled = (hits(clips.float(), self.sample_rate) >= 2).double()
        more = spikes - clicks(baseline, self.sample_rate).double() if baseline is not None else None
        return Score(label, value, len(clips), seconds_per_sound, spread, *change, clicks=float(spikes.mean()),
                     clicks_error=standard_error(spikes), rises=float(uneven.mean()),
                     rises_error=standard_error(uneven), hits=100 * float(doubled.mean()),
                     clicks_change=float(more.mean()) if more is not None else None,
                     clicks_change_error=standard_error(more) if more is not None else None)

    def paired_difference(self, clips: torch.Tensor, baseline: torch.Tensor) -> tuple[float, float]:
        """MMD^2(clips) - MMD^2(baseline) and its standard error, for two sets rendered from the same seeds.

        Pairing cancels most of what the choice of seeds adds to each figure: two samplers on the same noise land
        near the same sounds, so this error is far smaller than either row's own.
        """
        return self.paired(self.features(clips), self.features(baseline))

    def paired(self, ours: torch.Tensor, theirs: torch.Tensor,
               ours_to: torch.Tensor | None = None) -> tuple[float, float]:
        """paired_difference of two sets already described by their features; ``ours_to``: the standardised
        reference clips ``ours`` is measured against instead of all of them (paired_to_classes)."""
        if len(ours) != len(theirs):
            raise ValueError("paired sets must have the same number of clips")
        ours_to = self.reference if ours_to is None else ours_to

        def difference(keep) -> float:
            return (mmd2(ours[keep], ours_to, self.bandwidth)
                    - mmd2(theirs[keep], self.reference, self.bandwidth))

        return difference(slice(None)), jackknife_error(difference, len(ours))

    def of_classes(self, classes) -> list[int]:
        """The indices of the reference clips labelled one of ``classes`` (none without labels)."""
        wanted = set(classes)
        return [i for i, label in enumerate(self.labels or []) if label in wanted]

    def paired_to_classes(self, clips: torch.Tensor, baseline: torch.Tensor, classes) -> tuple[float, float] | None:
        """MMD^2 of ``clips`` to the reference's sounds of ``classes`` minus MMD^2 of ``baseline`` (the same seeds,
        unguided) to the whole reference, with its jackknife standard error; None without 2 such sounds.

        What a class guide should be judged by. Its renders are all asked to be kicks, and a set of real kicks is
        far from a kit's mix of kicks, snares, hats and toms (the held-out kicks of 9 kits: MMD^2 0.22 to all of
        3 other kits' sounds, 0.04 to their kicks; all the 9 kits' sounds: 0.03), so ``paired_difference`` counts
        a perfect kick guide as that much less drum-like. Measured here, a guided set is as drum-like as its
        unguided one when it is as close to real sounds of the class it was asked for as they are to real drums
        (docs/guidance.md, "Drum-likeness of a class")."""
        return self.paired_to_some(clips, baseline, self.of_classes(classes))

    def paired_to_some(self, clips: torch.Tensor, baseline: torch.Tensor,
                       keep: list[int]) -> tuple[float, float] | None:
        """As ``paired_to_classes``, against the reference clips ``keep`` (indices); None with fewer than 2."""
        if len(keep) < 2:
            return None
        return self.paired(self.features(clips), self.features(baseline), ours_to=self.reference[keep])


# -- which files may judge a model ------------------------------------------------------------------------------
# A reference a model trained on measures recall, not sound: it favours the model that memorizes. Every command
# that judges a model against real files (eval, eval-vary, check-memorization) asks these, never a path's text: a
# card names files by absolute paths, a maintainer types relative ones, and a library reaches files through links.


def resolved(path) -> Path:
    """The file ``path`` names (Path.resolve: relative paths, '..' and links followed): one file written two ways
    is one file."""
    return Path(path).resolve()


def held_out(card) -> set[Path]:
    """The files a model card says its model kept out of training, resolved."""
    return {resolved(path) for path in card.held_out_files}


def trained_on(card) -> set[Path]:
    """The files the card's model trained on, resolved: for its own training and each base's it was fine-tuned from
    (ModelCard.lineage), the files under its data folders (those on this machine) less its held-out files. Empty
    for a card that names no training data (a third party's model: nothing to check)."""
    from bridge.training.data import scan

    trained: set[Path] = set()
    for record in card.lineage:
        folders = [folder for folder in record["data"] if Path(folder).exists()]
        held = {resolved(path) for path in record["held_out_files"]}
        trained |= {resolved(path) for path in scan(folders, leave_out_runs=True)} - held
    return trained


def leave_out_trained(files: list[Path], trained: list[tuple[str, set[Path]]], use: str) -> list[Path]:
    """``files`` (of --data) less those in any set of ``trained`` ([(who trained on them, their files resolved)]),
    each overlap said in one warning line naming how many files, their kits and who trained on them, then ``use``
    (what is done with them: "left out of the reference")."""
    kept = list(files)
    for who, theirs in trained:
        overlap = [path for path in kept if resolved(path) in theirs]
        if overlap:
            kits = sorted({path.parent.name for path in overlap})
            named = ", ".join(kits[:4]) + (f" and {len(kits) - 4} more" if len(kits) > 4 else "")
            log.warning("%d files of --data (%s %s) were trained on by %s: %s", len(overlap),
                        "kit" if len(kits) == 1 else "kits", named, who, use)
            kept = [path for path in kept if resolved(path) not in theirs]
    return kept


def mmd2(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> float:
    """Unbiased MMD^2 with k(a, b) = exp(-|a - b|^2 / (2 bandwidth^2)) (Gretton et al. 2012, eq. 3)."""
    def kernel(a, b):
        return torch.exp(-torch.cdist(a, b) ** 2 / (2 * bandwidth ** 2))

    m, n = len(x), len(y)
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(within_x + within_y - 2 * kxy.mean())


def standard_error(values: torch.Tensor) -> float:
    """Standard error of the mean of ``values`` (a count per clip, such as clicks)."""
    return float(values.double().std() / len(values) ** 0.5)


def jackknife_error(statistic, count: int) -> float:
    """Delete-one jackknife standard error of statistic(indices kept) over ``count`` items (Efron & Stein 1981).

    Leaving one out, rather than resampling with replacement, keeps duplicates out of the unbiased MMD^2, whose
    within-set term would read a duplicate as a perfect match.
    """
    values = torch.tensor([statistic([j for j in range(count) if j != i]) for i in range(count)], dtype=torch.float64)
    return float(((count - 1) / count * (values - values.mean()).pow(2).sum()).sqrt())


def noise_bursts(reals: torch.Tensor, generator: torch.Generator, smoothing: int = 512) -> torch.Tensor:
    """White noise under each real clip's amplitude envelope: the right shape in time, none of the sound."""
    level = reals.abs().amax(dim=1, keepdim=True)
    envelope = torch.nn.functional.max_pool1d(level, smoothing, stride=1, padding=smoothing // 2)[..., :reals.shape[-1]]
    noise = torch.rand(reals.shape, generator=generator) * 2 - 1
    return noise * envelope


def render(engine: Engine, count: int, *, sampler: str, steps: int, seed: int = 0) -> tuple[torch.Tensor, float]:
    """count sounds at the model's window (seeds seed, seed + 1, ...) and the seconds each took."""
    started = time.monotonic()
    with torch.no_grad():  # judged as they are written: the same path as `dd-bridge generate`
        sounds = generate_clips(engine, count, steps=steps, sampler=sampler, seed=list(range(seed, seed + count)))
    audio = torch.stack([torch.from_numpy(sound.samples.T.copy()) for sound in sounds])
    return audio, (time.monotonic() - started) / count


def untrained_like(engine: Engine, seed: int = 0) -> Engine:
    """The same architecture with fresh random weights: where training started from."""
    torch.manual_seed(seed)
    network = DanceDiffusionUNet(engine.card.architecture)
    return Engine.from_module(network, engine.sample_rate, engine.window, name="untrained", device="cpu")


def baselines(judge: Judge, engine: Engine, training: torch.Tensor, *, sampler: str, steps: int, count: int,
              seed: int = 0) -> list[Score]:
    """The floor (training files vs the reference), noise bursts with drum envelopes, the untrained network."""
    generator = torch.Generator("cpu").manual_seed(seed)
    pick = torch.randperm(len(training), generator=generator)[:max(count, 2)]
    floor = training[pick]
    scores = [judge.score("real training files (floor)", floor),
              judge.score("noise bursts with drum envelopes", noise_bursts(floor, generator))]
    audio, seconds = render(untrained_like(engine, seed), count, sampler=sampler, steps=steps, seed=seed)
    scores.append(judge.score(f"untrained network ({sampler}, {steps} steps)", audio, seconds))
    return scores


def quality_table(engine: Engine, judge: Judge, settings: list[tuple[str, int]], *, count: int = 16,
                  seed: int = 0, against: Engine | None = None,
                  names: tuple[str, str] | None = None) -> list[Score]:
    """MMD^2 to real drums and seconds per sound for each (sampler, steps): how quality buys speed.

    Every setting renders from the same seeds, so each row after the first also carries its paired change from
    the first (with its standard error): put the setting to compare against first. With ``against`` (another
    model: the one a newly trained model would replace), each setting is rendered by it too, from the same seeds,
    and the model's row carries its paired change from that row instead: the landing decision in one figure, its
    error the pairing's (a jackknife over the shared seeds; the two rows' own errors do not simply add, as the
    same seeds land two versions of one model near the same sounds). ``names``: the two models' names in the
    labels (default: their cards').
    """
    ours, theirs = names or (engine.card.name, against.card.name if against is not None else "")
    rows, first = [], None
    for sampler, steps in settings:
        setting = f"{sampler}, {steps} steps"
        baseline = first
        if against is not None:
            baseline, seconds = render(against, count, sampler=sampler, steps=steps, seed=seed)
            rows.append(judge.score(f"{theirs}: {setting}", baseline, seconds))
        audio, seconds = render(engine, count, sampler=sampler, steps=steps, seed=seed)
        row = judge.score(f"{ours}: {setting}", audio, seconds, baseline=baseline)
        first = audio if first is None else first
        rows.append(row)
        log.info("%s: MMD^2 %.4f, %.2f s per sound", row.label, row.mmd2, seconds)
    return rows


def format_table(rows: list[Score], change_from: str | None = None) -> str:
    """The rows as a table with a line on each column; ``change_from`` says what the change is from (default: the
    first row)."""
    width = max(len(row.label) for row in rows)
    def cell(value, form: str, size: int) -> str:
        return f"{value:{form}}".rjust(size) if value is not None else " " * size

    lines = [f"{'':{width}}  {'MMD^2':>8}  {'± se':>6}  {'change':>8}  {'± se':>6}  {'n':>3}  {'s/sound':>8}  "
             f"{'clicks':>6}  {'± se':>5}  {'rises':>6}  {'± se':>5}  {'2 hits':>6}"]
    for row in rows:
        lines.append(f"{row.label:{width}}  {row.mmd2:8.4f}  {cell(row.spread, '.3f', 6)}  "
                     f"{cell(row.change, '+.4f', 8)}  {cell(row.change_error, '.4f', 6)}  {row.count:3d}  "
                     f"{cell(row.seconds_per_sound, '.2f', 8)}  {cell(row.clicks, '.1f', 6)}  "
                     f"{cell(row.clicks_error, '.1f', 5)}  {cell(row.rises, '.1f', 6)}  "
                     f"{cell(row.rises_error, '.1f', 5)}  "
                     f"{cell(row.hits, '.0f', 5) + '%' if row.hits is not None else '':>6}")
    if any(row.change is not None for row in rows):
        source = change_from or f"the first row's ({rows[0].label})"
        lines.append(f"change: MMD^2 minus {source} on the same seeds; within about two standard errors of zero "
                     "is equal quality")
    for row in rows:
        if row.clicks_change is not None:
            lines.append(f"{row.label}: clicks {row.clicks_change:+.1f} ± {row.clicks_change_error:.1f} a sound "
                         "against the same seeds of the change's row (paired)")
    if any(row.clicks is not None for row in rows):
        lines.append("clicks: lone spikes of about 1 ms in a sound's decay, on average (real one-shots: about 2; "
                     "crackle: dozens), which MMD^2 weighs little: closer by MMD^2 with more clicks can sound worse")
    if any(row.rises is not None for row in rows):
        lines.append("rises: dB a sound's level climbs back on its way down from its peak, on average (a clean decay: "
                     "0; pumping or flams: tens), which MMD^2 does not see")
    if any(row.hits is not None for row in rows):
        lines.append("2 hits: the share of sounds with a second hit, whichever is the loudest (real one-shots: 0 of "
                     "136), which rises misses when the later hit is the louder")
    return "\n".join(lines)
