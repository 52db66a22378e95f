"""`dd-bridge train-classifier`: a drum classifier from labelled one-shots, robust to mid-sampling estimates.

The set (``ClassSet``) is every labelled file (bridge.training.labels) cut to the classifier's window from its
onset, as training reads one-shots (bridge.training.data), cached by the files' names, sizes and times so a rerun
reads nothing. Whole kits can be held out: the card's accuracy is on them alone, per kit and per class, with
binomial standard errors.

A guide asks the classifier about the network's denoised estimate halfway through sampling, a blurred, noisy
sound. Training shows it such sounds beside the clean ones (``augment``):
- ``none`` (the default): clean sounds only;
- ``blur``: a random low-pass (a 2nd-order roll-off from 1 to 16 kHz) and white noise 0-30 dB under the sound;
- ``model``: the denoised estimates a diffusion model (default: the bundled one) makes of each training sound
  noised to t = 0.4 and 0.7, computed once and cached (``estimates``).
Measured on held-out kits (docs/guidance.md), neither helped: blur made the classifier worse on the bundled
model's estimates as well as on clean sounds, model no better on estimates and worse on clean sounds.
Every sound is also coloured (``colour``: a random EQ and a speed change of up to 15 %), so that a few kits stand
for many, and delayed by 0-20 ms. Batches draw every class equally often (claps are rare in kits).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import safetensors.torch
import torch
from torch.nn import functional as F

from bridge.engine.classifier import DrumClassifier, Ensemble, Features
from bridge.engine.schedules import alpha_sigma
from bridge.errors import BridgeError
from bridge.training.data import OneShots
from bridge.training.class_recipe import Recipe
from bridge.training.labels import CLASSES, Labelled

log = logging.getLogger(__name__)

ESTIMATE_TIMES = (0.4, 0.7)  # noise levels whose denoised estimates training sees (augment=model)
MAX_SHIFT_SECONDS = 0.02  # onset delays of 0-20 ms: renders do not start exactly at their first sample


@dataclass
class ClassSet:
    """Labelled one-shots as [N, 2, window] at the classifier's rate, with their class index and kit."""

    windows: torch.Tensor
    labels: torch.Tensor
    kits: list[str]
    files: list[Path]
    classes: tuple[str, ...]
    sample_rate: int

    @classmethod
    def load(cls, items: list[Labelled], features: Features, cache: Path | None = None) -> "ClassSet":
        found = sorted({item.label for item in items})
        if not items:
            raise BridgeError("no labelled audio found (kits with drumkit.xml, or folders whose sub-folders are "
                              "classes)")
        if len(found) < 2:
            raise BridgeError(f"only one class ({found[0]!r}, {len(items)} files): a classifier needs at least two")
        classes = tuple(name for name in CLASSES if name in found) if set(found) <= set(CLASSES) else tuple(found)
        kept, windows = _windows(items, features, cache)
        items = [item for item, keep in zip(items, kept) if keep]
        labels = torch.tensor([classes.index(item.label) for item in items])
        return cls(windows, labels, [item.kit for item in items], [item.path for item in items], classes,
                   features.sample_rate)

    def indices(self, kits, inside: bool) -> list[int]:
        return [i for i, kit in enumerate(self.kits) if (kit in kits) == inside]


def _windows(items: list[Labelled], features: Features, cache: Path | None) -> tuple[list[bool], torch.Tensor]:
    """(which files were readable, their windows), read once and then from ``cache``."""
    stamp = [(str(item.path), *_stat(item.path)) for item in items] + [features.sample_rate, features.window]
    key = hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:16]
    path = cache / f"windows-{key}.safetensors" if cache else None
    if path and path.is_file():
        stored = safetensors.torch.load_file(str(path))
        return stored["kept"].tolist(), stored["windows"]
    shots = OneShots.load([item.path for item in items], features.sample_rate, features.window)
    readable = set(shots.files)
    kept = [item.path in readable for item in items]
    if path:
        cache.mkdir(parents=True, exist_ok=True)
        safetensors.torch.save_file({"kept": torch.tensor(kept), "windows": shots.windows.contiguous()},
                                    str(path))
    return kept, shots.windows


def _stat(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns


def estimates(engine, windows: torch.Tensor, cache: Path | None = None, seed: int = 0,
              progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """[N, len(ESTIMATE_TIMES), 1, window]: the mid channel of the engine's denoised estimate of each window
    noised to each time, ``alpha x + sigma eps`` -> ``alpha x_t - sigma v``; cached by the windows' and the
    model's hashes."""
    key = hashlib.sha256(windows.numpy().tobytes()).hexdigest()[:16] + "-" + engine.model_hash[:16]
    path = cache / f"estimates-{key}.safetensors" if cache else None
    if path and path.is_file():
        return safetensors.torch.load_file(str(path))["estimates"]
    generator = torch.Generator().manual_seed(seed)
    length, size = windows.shape[-1], engine.batch_size(engine.padded_length(windows.shape[-1]))
    out = torch.zeros(len(windows), len(ESTIMATE_TIMES), 1, length)
    for start in range(0, len(windows), size):
        clean = F.pad(windows[start:start + size], (0, engine.padded_length(length) - length))
        for j, t in enumerate(ESTIMATE_TIMES):
            alpha, sigma = (float(w) for w in alpha_sigma(torch.tensor(t)))
            noisy = alpha * clean + sigma * torch.randn(clean.shape, generator=generator)
            with torch.inference_mode():
                v = engine.network(noisy.to(engine.device), torch.full((len(clean),), t, device=engine.device))
            out[start:start + size, j] = (alpha * noisy - sigma * v.float().cpu())[..., :length].mean(1, keepdim=True)
        if progress:
            progress(min(start + size, len(windows)), len(windows))
    if path:
        cache.mkdir(parents=True, exist_ok=True)
        safetensors.torch.save_file({"estimates": out.contiguous()}, str(path))
    return out


def blur(audio: torch.Tensor, generator: torch.Generator, rate: int) -> torch.Tensor:
    """[B, C, L] low-passed at a random 1-16 kHz (2nd order) with white noise 0-30 dB under each sound."""
    b = audio.shape[0]
    cutoff = 1000 * 16 ** torch.rand(b, 1, 1, generator=generator)
    spectrum = torch.fft.rfft(audio, dim=-1)
    freqs = torch.fft.rfftfreq(audio.shape[-1], 1 / rate)
    smoothed = torch.fft.irfft(spectrum / (1 + (freqs / cutoff) ** 4).sqrt(), n=audio.shape[-1], dim=-1)
    level = smoothed.pow(2).mean(dim=(1, 2), keepdim=True).sqrt()
    under_db = 30 * torch.rand(b, 1, 1, generator=generator)
    return smoothed + level * 10 ** (-under_db / 20) * torch.randn(audio.shape, generator=generator)


def colour(audio: torch.Tensor, generator: torch.Generator, rate: int) -> torch.Tensor:
    """[B, C, L] as another kit, microphone or tuning might give it: a random tilt of -3..3 dB per octave, three
    bell-shaped boosts or cuts of up to 6 dB, and a speed change of -15..15 % (pitch and length together)."""
    b, _, length = audio.shape
    octaves = torch.log2(torch.fft.rfftfreq(length, 1 / rate).clamp(min=20) / 1000)
    tilt = 6 * torch.rand(b, 1, 1, generator=generator) - 3
    centres = 8 * torch.rand(b, 3, 1, generator=generator) - 4
    heights = 12 * torch.rand(b, 3, 1, generator=generator) - 6
    gain_db = tilt * octaves + (heights * torch.exp(-(octaves - centres) ** 2 / 0.5)).sum(1, keepdim=True)
    audio = torch.fft.irfft(torch.fft.rfft(audio, dim=-1) * 10 ** (gain_db / 20), n=length, dim=-1)
    speeds = 0.85 + 0.3 * torch.rand(b, 1, generator=generator)
    positions = (torch.arange(length)[None] * speeds).clamp(max=length - 1)  # read faster or slower, linearly
    low = positions.floor().long()
    high = (low + 1).clamp(max=length - 1)
    fraction = (positions - low)[:, None]
    index = lambda at: at[:, None].expand(-1, audio.shape[1], -1)  # noqa: E731
    out = audio.gather(-1, index(low)) * (1 - fraction) + audio.gather(-1, index(high)) * fraction
    return out * (torch.arange(length)[None, None] * speeds[:, :, None] < length)  # silence past the end


def roughen(audio: torch.Tensor, generator: torch.Generator, rate: int) -> torch.Tensor:
    """[B, C, L] as a real kit's recording might be: in a small room (a synthetic reverb, white noise decaying
    exponentially over 0.05-0.6 s, 5-40 % of the sound), half of them driven into a soft clip (tanh, 1-6x), and
    over a noise floor 45-80 dB under the peak. The GM fonts are clean and dry; real kits are rarely either."""
    b, _, length = audio.shape
    times = torch.arange(length) / rate
    decay = 0.05 + 0.55 * torch.rand(b, 1, 1, generator=generator)  # seconds to -60 dB
    response = torch.randn(b, 1, length, generator=generator) * 10 ** (-3 * times / decay)
    response = response / response.pow(2).sum(-1, keepdim=True).sqrt()
    wet = torch.fft.irfft(torch.fft.rfft(audio, n=2 * length) * torch.fft.rfft(response, n=2 * length),
                          n=2 * length)[..., :length]
    share = 0.05 + 0.35 * torch.rand(b, 1, 1, generator=generator)
    audio = audio + share * wet * audio.pow(2).sum(-1, keepdim=True).sqrt() / \
        wet.pow(2).sum(-1, keepdim=True).sqrt().clamp(min=1e-9)
    peak = audio.abs().amax(-1, keepdim=True).clamp(min=1e-9)
    drive = 1 + 5 * torch.rand(b, 1, 1, generator=generator)
    driven = peak * torch.tanh(drive * audio / peak) / torch.tanh(drive)
    audio = torch.where(torch.rand(b, 1, 1, generator=generator) < 0.5, driven, audio)
    under_db = 45 + 35 * torch.rand(b, 1, 1, generator=generator)
    return audio + peak * 10 ** (-under_db / 20) * torch.randn(audio.shape, generator=generator)


def train(data: ClassSet, indices: list[int], recipe: Recipe = Recipe(), *, seed: int = 0,
          blurred: torch.Tensor | None = None, progress: Callable[[int, float], None] | None = None):
    """A classifier trained on ``data``'s ``indices`` as ``recipe`` says; ``blurred``: their estimates
    (augment=model). With ``recipe.members`` > 1, that many networks, each trained alone, averaged in logits."""
    features = Features(sample_rate=data.sample_rate, window=data.windows.shape[-1], n_mels=recipe.n_mels)
    members = []
    for member in range(recipe.members):
        done = member * recipe.steps
        members.append(_train_one(data, indices, recipe, features, seed + member, blurred,
                                  progress and (lambda step, loss: progress(done + step, loss))))
    return members[0] if len(members) == 1 else Ensemble(members).eval()


def _train_one(data: ClassSet, indices: list[int], recipe: Recipe, features: Features, seed: int,
               blurred: torch.Tensor | None, progress) -> DrumClassifier:
    """One network: the augmented sounds are made and turned into spectrograms ``rounds`` times over before the
    first step, and the steps draw from that pool: a step is then the network's alone, about a third of the cost."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = DrumClassifier(data.classes, features, recipe.channels, recipe.dropout)
    positions = torch.tensor(indices)
    pool, labels = _pool(data, positions, features, recipe, blurred, generator)
    by_class = [torch.nonzero(labels == k)[:, 0] for k in range(len(data.classes))]
    by_class = [members for members in by_class if len(members)]
    optimiser = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, recipe.lr, total_steps=recipe.steps)
    model.train()
    for step in range(recipe.steps):
        kinds = torch.randint(len(by_class), (recipe.batch,), generator=generator).tolist()
        chosen = torch.stack([by_class[k][torch.randint(len(by_class[k]), (), generator=generator)] for k in kinds])
        spectrograms = pool[chosen].float()
        if recipe.masks:
            spectrograms = mask(spectrograms, recipe.masks, generator)
        loss = F.cross_entropy(model.classify(spectrograms), labels[chosen],
                               label_smoothing=recipe.label_smoothing)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if progress:
            progress(step + 1, float(loss.detach()))
    return model.eval()


def mask(spectrograms: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """[B, 1, mels, frames] with ``count`` random bands (up to an eighth of the mels) and ``count`` random spans
    (up to an eighth of the frames) of each set to the floor (-1) (SpecAugment, Park et al. 2019): no one band or
    moment can carry the class alone, as a kit's mic or an EQ can take any of them away."""
    b, _, mels, frames = spectrograms.shape
    out = spectrograms.clone()
    for size, axis in ((mels, 2), (frames, 3)):
        for _ in range(count):
            width = (torch.rand(b, generator=generator) * size / 8).long()
            start = (torch.rand(b, generator=generator) * (size - width)).long()
            at = torch.arange(size)[None]
            hit = (at >= start[:, None]) & (at < (start + width)[:, None])  # [B, size]
            shape = (b, 1, size, 1) if axis == 2 else (b, 1, 1, size)
            out = out.masked_fill(hit.view(shape), -1.0)
    return out


def _pool(data: ClassSet, positions: torch.Tensor, features: Features, recipe: Recipe, blurred: torch.Tensor | None,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """([rounds * N, 1, mels, frames] float16 spectrograms, [rounds * N] labels) of augmented training sounds."""
    pool = []
    with torch.no_grad():
        for _ in range(recipe.rounds):
            for start in range(0, len(positions), 64):
                rows = torch.arange(start, min(start + 64, len(positions)))
                audio = _augmented(data, positions, rows, recipe, blurred, generator)
                pool.append(features.log_mel(audio).half())
    return torch.cat(pool), data.labels[positions].repeat(recipe.rounds)


def _augmented(data: ClassSet, positions: torch.Tensor, rows: torch.Tensor, recipe: Recipe,
               blurred: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
    """[len(rows), 1, window]: the mid channel of training sounds ``positions[rows]`` (the classifier hears only
    the mid), half of them degraded as a guide's estimates are, all coloured and delayed, some roughened."""
    audio = data.windows[positions[rows]].mean(dim=1, keepdim=True)
    degraded = torch.rand(len(rows), generator=generator) < 0.5  # half clean, half as a guide sees them
    if recipe.augment == "blur" and degraded.any():
        audio[degraded] = blur(audio[degraded], generator, data.sample_rate)
    elif recipe.augment == "model" and degraded.any():
        times = torch.randint(blurred.shape[1], (int(degraded.sum()),), generator=generator)
        audio[degraded] = blurred[rows[degraded], times]
    audio = colour(audio, generator, data.sample_rate)
    if recipe.rough:  # drawn only when asked: without it a seed gives the same sounds as before it existed
        rough = torch.rand(len(rows), generator=generator) < recipe.rough
        if rough.any():
            audio[rough] = roughen(audio[rough], generator, data.sample_rate)
    shifts = (torch.rand(len(rows), generator=generator) * MAX_SHIFT_SECONDS * data.sample_rate).long()
    for i, shift in enumerate(shifts.tolist()):
        if shift:
            audio[i] = F.pad(audio[i, :, :-shift], (shift, 0))
    return audio


@dataclass(frozen=True)
class Accuracy:
    """Right answers per kit and per class over a held-out set."""

    per_kit: dict[str, tuple[int, int]]
    per_class: dict[str, tuple[int, int]]

    @property
    def overall(self) -> tuple[int, int]:
        return self.over(self.per_kit)

    def over(self, kits) -> tuple[int, int]:
        """(right, count) over ``kits``."""
        return sum(self.per_kit[kit][0] for kit in kits), sum(self.per_kit[kit][1] for kit in kits)

    def split(self, chosen_on) -> dict:
        """For the card: the accuracy on the kits a recipe was chosen by, and on the others, which no choice saw
        (choosing by a test kit's figure tunes on it; only the others' figure is a clean test)."""
        chosen = sorted(set(chosen_on))
        others = [kit for kit in self.per_kit if kit not in chosen_on]
        return {"chosen_on": {"kits": chosen, **_share(*self.over(chosen))},
                "never_chosen_on": {"kits": others, **_share(*self.over(others))}}

    def card(self) -> dict:
        """For the card: each share with its binomial standard error, and the mean over kits with its error."""
        shares = [right / count for right, count in self.per_kit.values()]
        spread = _std(shares) / math.sqrt(len(shares)) if len(shares) > 1 else None
        return {"overall": _share(*self.overall),
                "mean_over_kits": {"accuracy": round(sum(shares) / len(shares), 4),
                                   "se": None if spread is None else round(spread, 4), "kits": len(shares)},
                "per_kit": {kit: _share(*value) for kit, value in self.per_kit.items()},
                "per_class": {name: _share(*value) for name, value in self.per_class.items()}}


def _share(right: int, count: int) -> dict:
    p = right / count
    return {"accuracy": round(p, 4), "se": round(math.sqrt(p * (1 - p) / count), 4), "files": count}


def _std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def predict(model: DrumClassifier, audio: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """[N] class indices of [N, C, L] audio."""
    with torch.no_grad():
        return torch.cat([model(audio[i:i + batch]).argmax(-1) for i in range(0, len(audio), batch)])


def accuracy(model: DrumClassifier, data: ClassSet, indices: list[int], audio: torch.Tensor | None = None) -> Accuracy:
    """How often ``model`` names the class of ``data``'s ``indices`` (or of ``audio``, one row per index)."""
    return tally(data, indices, predict(model, data.windows[indices] if audio is None else audio))


def tally(data: ClassSet, indices: list[int], guessed: torch.Tensor) -> Accuracy:
    """The right guesses (one per index) counted per kit and per class."""
    per_kit: dict[str, tuple[int, int]] = {}
    per_class: dict[str, tuple[int, int]] = {}
    for row, i in enumerate(indices):
        right = int(guessed[row] == data.labels[i])
        for table, key in ((per_kit, data.kits[i]), (per_class, data.classes[int(data.labels[i])])):
            done, count = table.get(key, (0, 0))
            table[key] = (done + right, count + 1)
    return Accuracy(dict(sorted(per_kit.items())), {k: per_class[k] for k in data.classes if k in per_class})
