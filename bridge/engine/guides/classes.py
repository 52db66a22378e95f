"""The `class` guide: toward a drum class, or a mix of classes, as a drum classifier hears the denoised estimate.

The loss is the cross-entropy from the asked mix to the classifier's answer, ``-sum_k p_k log q_k(x0)``; a mix such
as ``kick*0.7+snare*0.3`` asks for a sound the classifier hears as 70 % kick and 30 % snare (CRASH's class mixing,
Rouard and Hadjeres 2021). A negative weight moves away from the class. The classifier is the shipped default
(bridge/engine/classifier.py) or a user's, named in the target: ``FILE.safetensors#kick``. Its input is resampled
(linearly: it only has to hear the class) when the model's rate is not its own. The loss is stepped through the
estimate's envelope (``EnvelopeGuide``), not its samples: see there why.
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from bridge.engine.classifier import DEFAULT_CLASSIFIER, DrumClassifier, load_classifier
from bridge.engine.guidance import LossGuide, band_matrix, stft, with_band_gains
from bridge.engine.guides.builtin import GuideContext
from bridge.engine.schedules import alpha_sigma
from bridge.errors import ConfigError
from bridge.files import shown

_PART = re.compile(r"\s*([A-Za-z][\w-]*)\s*(?:\*\s*(\d+(?:\.\d+)?))?\s*")


class EnvelopeGuide(LossGuide):
    """A loss stepped down through the estimate's envelope: gains in dB per band and 21 ms frame (the source-shape
    guide's cells), moved along the loss's normalised gradient with respect to them, ``weight * sigma *
    STEP_DB`` dB RMS per network call.

    A classifier's gradient with respect to the samples is spread over fine detail that barely correlates with
    what makes a kick a kick (a cosine of 0.01-0.03 with the kicks-minus-hats direction in the tests' set,
    where darker's step has 0.7; through the envelope, 0.4): stepped along it, the sound changes and its class does not. Through the envelope, only where the
    energy lies in time and frequency can move, which is what a class is heard by. It always edits the estimate
    (the cheap mode's way), whatever the mode: the network's gradient would not be an envelope's."""

    def __init__(self, loss, weight: float, sample_rate: int, **options):
        super().__init__(loss, weight, **options)
        self.sample_rate, self.full = sample_rate, False

    def __call__(self, denoised: torch.Tensor, t: float) -> torch.Tensor:
        sigma = float(alpha_sigma(torch.tensor(t))[1])
        with torch.inference_mode(False), torch.enable_grad():
            audio = denoised.detach().clone().float()
            spec = stft(audio)
            matrix = band_matrix(self.sample_rate).to(audio)
            gains = torch.zeros(spec.shape[0], matrix.shape[0], spec.shape[-1], device=audio.device,
                                requires_grad=True)
            loss = self.loss(with_band_gains(spec, gains, matrix, audio))
            (gradient,) = torch.autograd.grad(loss.sum(), gains)
        gradient = torch.nan_to_num(gradient)
        spread = gradient.pow(2).mean(dim=(1, 2), keepdim=True).sqrt().clamp(min=1e-30)
        size = abs(self.weight) * sigma * STEP_DB
        step_db = (-math.copysign(size, self.weight) * gradient / spread).clamp(-CELL_LIMIT * size, CELL_LIMIT * size)
        return with_band_gains(spec, step_db, matrix, denoised.detach().float()).to(denoised.dtype)


STEP_DB = 10.0  # the RMS change of the envelope per network call at weight 1 and t = 1, in dB
CELL_LIMIT = 3.0  # no cell moves more than 3 times that: a gradient on a few cells would otherwise boost them 60 dB


@dataclass(frozen=True)
class Asked:
    """A parsed target: the classifier's file and the mix, one weight per class summing to 1."""

    classifier: Path
    mix: dict[str, float]

    def model(self) -> DrumClassifier:
        return _loaded(str(self.classifier), os.stat(self.classifier).st_mtime_ns)

    def weights(self) -> torch.Tensor:
        model = self.model()
        return torch.tensor([self.mix.get(name, 0.0) for name in model.classes])


def parse(target: str | None) -> Asked:
    """``kick``, ``kick*0.7+snare*0.3``, ``FILE.safetensors#kick`` (a classifier of your own)."""
    if not target:
        raise ConfigError(f"class: name the class: class=1:kick, or a mix: class=1:kick*0.7+snare*0.3 "
                          f"({_classes_of(DEFAULT_CLASSIFIER)})")
    path, _, text = target.rpartition("#")
    classifier = Path(path).expanduser() if path else DEFAULT_CLASSIFIER
    try:
        model = _loaded(str(classifier), os.stat(classifier).st_mtime_ns)
    except FileNotFoundError:
        raise ConfigError(f"class: no classifier {shown(str(classifier))}") from None
    mix: dict[str, float] = {}
    for part in text.split("+"):
        match = _PART.fullmatch(part)
        if match is None or match.group(1).lower() not in model.classes:
            raise ConfigError(f"class: cannot read {shown(part.strip())} in {shown(target)}: a class of "
                              f"{', '.join(model.classes)}, optionally *WEIGHT (kick*0.7+snare*0.3)")
        name, share = match.group(1).lower(), float(match.group(2) or 1)
        mix[name] = mix.get(name, 0.0) + share
    total = sum(mix.values())
    if not total > 0 or not math.isfinite(total):
        raise ConfigError(f"class: the mix {shown(text)} has no weight")
    return Asked(classifier, {name: share / total for name, share in mix.items()})


@functools.lru_cache(maxsize=4)
def _loaded(path: str, _mtime: int) -> DrumClassifier:
    """One loaded copy per file and version, shared by every render (a guide step only reads it)."""
    model, _card = load_classifier(path)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def _classes_of(path: Path) -> str:
    try:
        return "classes: " + ", ".join(_loaded(str(path), os.stat(path).st_mtime_ns).classes)
    except Exception:  # listing must not fail because the default is missing or broken
        return f"no classifier at {path}"


def logits(model: DrumClassifier, audio: torch.Tensor, rate: int) -> torch.Tensor:
    """The classifier's logits of [B, C, L] audio at ``rate``, on the audio's device."""
    if next(model.parameters()).device != audio.device:
        model.to(audio.device)
    own = model.features.sample_rate
    if rate != own:
        audio = F.interpolate(audio.float(), scale_factor=own / rate, mode="linear", align_corners=False)
    return model(audio)


class ClassGuide:
    """Found through the ``dd_bridge.guides`` entry point ``class``; ``value``/``named`` serve eval-guides."""

    name = "class"
    unit = "% of the asked class"
    summary = "toward a drum class or a mix of classes (negative: away from it)"

    @property
    def target_help(self) -> str:
        return ("a class, a mix, or a classifier of your own: kick, kick*0.7+snare*0.3, FILE.safetensors#hat; "
                f"the default's {_classes_of(DEFAULT_CLASSIFIER)}")

    def make(self, weight: float, target: str | None, context: GuideContext, *, t_min: float = 0.0,
             t_max: float = 1.0, full: bool = False) -> LossGuide:
        asked = parse(target)
        model, mix, rate = asked.model(), asked.weights(), context.sample_rate

        def loss(audio: torch.Tensor) -> torch.Tensor:
            return -(mix.to(audio.device) * logits(model, audio, rate).log_softmax(-1)).sum(-1)

        return EnvelopeGuide(loss, weight, rate, t_min=t_min, t_max=t_max, name=self.name)

    def resolved(self, target: str | None) -> str | None:
        """The target with its classifier's file made absolute (a stored recipe works from any folder)."""
        if target and "#" in target:
            path, _, text = target.rpartition("#")
            return f"{Path(path).expanduser().resolve()}#{text}"
        return target

    def value(self, audio: torch.Tensor, rate: int, target: str | None = None) -> list[float]:
        """The classifier's probability (%) of the asked mix for each item of [B, C, L] audio."""
        asked = parse(target)
        with torch.no_grad():
            probabilities = logits(asked.model(), audio.float(), rate).softmax(-1).cpu()
        return [100 * float(row @ asked.weights()) for row in probabilities]

    def asked(self, target: str | None) -> list[str]:
        """The classes the target asks for."""
        return list(parse(target).mix)

    def named(self, audio: torch.Tensor, rate: int, target: str | None = None) -> list[str]:
        """The class the classifier names for each item."""
        model = parse(target).model()
        with torch.no_grad():
            return [model.classes[int(k)] for k in logits(model, audio.float(), rate).argmax(-1)]


CLASS = ClassGuide()
