"""Does a model hand back its training files? Nearest training file per render, against a calibrated threshold.

Two sounds are compared as mel spectrograms with magnitudes raised to the power 0.3: the compression lets quiet
detail count, and since (g m)^0.3 = g^0.3 m^0.3, the cosine similarity of such spectrograms ignores gain. Trying
every offset up to MAX_SHIFT_SECONDS makes it ignore a small shift in time; comparing magnitudes makes it ignore
polarity. distance = 1 - the best cosine similarity: 0 for a copy.

The threshold comes from the data: the distance from each training file to its nearest other training file. A
render closer to a training file than LOW_QUANTILE of the training files are to each other is flagged as a
likely copy. A training file that is itself a copy of another (the same sound saved twice, or at another gain: a
sample folder often holds one; a GM soundfont's kits share samples) is compared only with the files it is not a
copy of: counted as its copy's nearest neighbour, it made the threshold 0 and the check blind.

A render is flagged only when it also lies at most NOISE_SHARE as far from its nearest file as from plain white
noise. Gain-free spectral cosine cannot tell hiss from a noise-like training file (a long crunchy hat): white noise
lay 0.008 from Audiophob's ss-ht-crunchtime.wav against a threshold of 0.024, so a hissy render read as its copy;
white noise of another seed lies as far from that noise (0.008), so "nearer than the noise" alone is a coin toss. A
copy of such a file (0.000 to 0.001 at another gain, polarity or shift) is still flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from bridge.errors import BridgeError
from bridge.training.features import HOP, mel_magnitudes

MAX_SHIFT_SECONDS = 0.025  # rounded to whole HOP frames: 5 frames, +-27 ms, at 48 kHz
COMPRESSION = 0.3
LOW_QUANTILE = 0.05
NOISE_SHARE = 0.5  # see the module's docstring
SAME_SOUND = 1e-5  # under this two training files are one sound (float rounding of a gain change apart)


@dataclass(frozen=True)
class NearestFile:
    """A render's nearest training file: how far (the distance that ignores gain, polarity and small shifts) and at
    which shift."""

    render: int
    file: Path
    distance: float
    shift_seconds: float
    to_noise: float = float("inf")  # the render's distance to white noise: a copy lies nearer its file than that


@dataclass
class Report:
    matches: list[NearestFile]  # one per render, closest first
    threshold: float
    training_distances: torch.Tensor  # each training file's distance to its nearest file that is not its copy
    copies: int = 0  # training files that are copies of another one

    def copies_file(self, match: NearestFile) -> bool:
        return match.distance < self.threshold and match.distance < NOISE_SHARE * match.to_noise

    @property
    def flagged(self) -> list[NearestFile]:
        return [m for m in self.matches if self.copies_file(m)]

    def summary(self, top: int = 5) -> str:
        d = self.training_distances
        lines = [f"threshold {self.threshold:.4f} (the {LOW_QUANTILE:.0%} quantile of {len(d)} training files' "
                 f"distances to their nearest other file; median {float(d.median()):.4f})"
                 + (f"; {self.copies} training files are copies of another one and were compared only with the "
                    "rest" if self.copies else ""),
                 f"{len(self.flagged)} of {len(self.matches)} renders flagged as likely copies"]
        for m in self.matches[:top]:
            flag = "  LIKELY COPY" if self.copies_file(m) else f"  (white noise lies {m.to_noise:.4f} from it: hiss, " \
                "not a copy)" if m.distance < self.threshold else ""
            lines.append(f"  render {m.render + 1}: {m.distance:.4f} to {m.file} "
                         f"(shifted {m.shift_seconds * 1000:+.0f} ms){flag}")
        return "\n".join(lines)


def fingerprints(clips: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """[N, mels, frames] compressed mel magnitudes: the form in which clips are compared."""
    return mel_magnitudes(clips, sample_rate).clamp(min=0) ** COMPRESSION


def distances(a: torch.Tensor, b: torch.Tensor, max_shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[Na, Nb] smallest 1 - cosine similarity over frame shifts in [-max_shift, max_shift], and the best shift."""
    frames = a.shape[-1]
    best = torch.full((len(a), len(b)), -1.0)
    best_shift = torch.zeros((len(a), len(b)), dtype=torch.long)
    for shift in range(-max_shift, max_shift + 1):
        if abs(shift) >= frames:
            continue
        x = a[..., max(shift, 0): frames + min(shift, 0)].flatten(1)
        y = b[..., max(-shift, 0): frames + min(-shift, 0)].flatten(1)
        similarity = torch.nn.functional.normalize(x, dim=1, eps=1e-12) @ \
            torch.nn.functional.normalize(y, dim=1, eps=1e-12).T
        better = similarity > best
        best = torch.where(better, similarity, best)
        best_shift = torch.where(better, torch.full_like(best_shift, shift), best_shift)
    return 1 - best, best_shift


def calibrate(training: torch.Tensor, max_shift: int) -> tuple[float, torch.Tensor, int]:
    """The threshold, every training file's distance to its nearest training file that is not a copy of it (those
    with none left out), and how many training files are copies of another."""
    if len(training) < 2:
        raise ValueError("calibrating the threshold needs at least 2 training files")
    within, _ = distances(training, training, max_shift)
    within.fill_diagonal_(float("inf"))
    same = within < SAME_SOUND
    copies = int(same.any(dim=1).sum())
    nearest = within.masked_fill(same, float("inf")).min(dim=1).values
    nearest = nearest[torch.isfinite(nearest)]
    if len(nearest) == 0:
        raise BridgeError("the training files are all one sound (copies of each other): nothing to calibrate the "
                          "check against; give it the folders the model trained on")
    return float(torch.quantile(nearest, LOW_QUANTILE)), nearest, copies


def check(renders: torch.Tensor, training: torch.Tensor, files: list[Path], sample_rate: int) -> Report:
    """Nearest training file for each render [N, 2, L], compared with training windows [M, 2, L]."""
    max_shift = max(1, round(MAX_SHIFT_SECONDS * sample_rate / HOP))
    length = min(renders.shape[-1], training.shape[-1])
    ours = fingerprints(renders[..., :length], sample_rate)
    theirs = fingerprints(training[..., :length], sample_rate)
    threshold, nearest, copies = calibrate(theirs, max_shift)
    d, shift = distances(ours, theirs, max_shift)
    closest = d.min(dim=1)
    noise = torch.randn((1, 2, length), generator=torch.Generator("cpu").manual_seed(0))  # seeded: the same verdicts
    to_noise = distances(ours, fingerprints(noise, sample_rate), max_shift)[0][:, 0]
    matches = [NearestFile(i, files[int(j)], float(closest.values[i]), int(shift[i, j]) * HOP / sample_rate,
                           float(to_noise[i])) for i, j in enumerate(closest.indices)]
    matches.sort(key=lambda m: m.distance)
    return Report(matches, threshold, nearest, copies)
