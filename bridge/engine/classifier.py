"""A small drum classifier: which class (kick, snare, hat, ...) a sound is, differentiable in the audio.

The `class` guide (bridge/engine/guides/classes.py) steers renders with its gradient, so everything from the
samples to the logits is torch: the mid channel's first ``window`` samples (shorter sounds padded with silence),
a log-mel spectrogram in dB relative to the sound's own loudest cell (the level does not count, only its shape),
then a few 3x3 convolutions, an average over time (not over frequency: where a sound lies in frequency is most
of its class) and one linear layer. About 17 000 weights (70 kB): a training step and a guide step stay cheap on
a CPU.

Stored as ``NAME.safetensors`` with a YAML card ``NAME.yaml`` beside it (classes, sample rate, features, layer
widths; the training data with its licences and the held-out accuracy, written by `dd-bridge train-classifier`).
Beside the weights a classifier may carry its classes' envelope ceilings (``ceilings``: how loud each class's
training sounds get, per band and moment; bridge/engine/guides/classes.py makes and uses them), read without them
from older files.
Weights are read with safetensors only: a pickled checkpoint is refused, never unpickled. The shipped default
lives in models/classifiers/ (a sub-folder: the model registry reads every card directly in models/).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import safetensors.torch
import torch
import yaml
from torch import nn

from bridge import constants, files
from bridge.engine.checkpoints import read_safetensors
from bridge.engine.guidance import stft
from bridge.errors import CheckpointError, one_line
from bridge.training.features import mel_filterbank

CLASSIFIERS_DIR = constants.MODELS_DIR / "classifiers"
DEFAULT_CLASSIFIER = CLASSIFIERS_DIR / "dd-drum-classes.safetensors"
KIND = "dd-bridge drum classifier"  # the card's `kind`: a model card is not a classifier's
MAX_WEIGHTS_BYTES = 16 << 20  # a classifier is well under 1 MB; anything this large is something else
CEILINGS_KEY = "class_ceilings"  # the tensor beside the weights; the card's `ceilings` says what it is
CEILING_GRID = ("sample_rate", "n_fft", "hop", "bands", "lowest_hz")  # what the card's `ceilings: grid:` names


@dataclass(frozen=True)
class Features:
    """What the network sees: the first ``window`` samples at ``sample_rate``, as a log-mel spectrogram."""

    sample_rate: int = constants.DEFAULT_SAMPLE_RATE
    window: int = 32768  # 0.68 s: a one-shot's attack and body (the bundled model's window)
    n_fft: int = 1024
    hop: int = 512
    n_mels: int = 64
    # A soft floor 40 dB under the loudest cell: dB of (power / peak + 10^-4). Its gradient is bounded where the
    # sound is quiet, so a guide's normalised step moves what is heard; with a hard floor far down, the step went
    # to the near-silent cells, whose dB move most per unit of signal, and guidance changed nothing a listener (or
    # the denoiser) would call a class.
    floor_db: float = -40.0

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """[B, 1, n_mels, frames]: dB relative to each sound's loudest cell, softly floored, scaled to -1..1."""
        audio = audio if audio.dtype == torch.float64 else audio.float()  # float64 kept: the gradient checks
        mid = audio.mean(dim=1)[:, :self.window]
        mid = nn.functional.pad(mid, (0, self.window - mid.shape[-1]))
        spec = stft(mid[:, None], self.n_fft, self.hop)[:, 0]
        power = spec.real.pow(2) + spec.imag.pow(2)  # |X|^2 without abs(): its gradient at 0 is finite
        bank = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels).to(power)
        mel = torch.einsum("mf,bft->bmt", bank, power)
        peak = mel.amax(dim=(1, 2), keepdim=True).clamp(min=1e-20)
        db = 10 * torch.log10(mel / peak + 10 ** (self.floor_db / 10))
        return (db / (-self.floor_db / 2) + 1)[:, None]


class DrumClassifier(nn.Module):
    """``forward(audio [B, C, L]) -> logits [B, classes]`` at ``features.sample_rate``."""

    def __init__(self, classes, features: Features = Features(), channels=(8, 16, 32, 32), dropout: float = 0.0):
        super().__init__()
        self.classes, self.features, self.channels = tuple(classes), features, tuple(channels)
        # [classes, bands + 1, frames] dB and the card's `ceilings` entry describing them, or None (not weights)
        self.ceilings: tuple[torch.Tensor, dict] | None = None
        self.dropout = nn.Dropout(dropout)  # training only: no weights, nothing in the card
        layers, width = [], 1
        for i, out in enumerate(self.channels):
            layers += [nn.Conv2d(width, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
            if i < len(self.channels) - 1:
                layers.append(nn.MaxPool2d(2))
            width = out
        self.body = nn.Sequential(*layers)
        # Averaged over time only: where in frequency a sound lies (a kick's low, a hat's high) is most of its class.
        self.head = nn.Linear(width * (features.n_mels >> (len(self.channels) - 1)), len(self.classes))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features.log_mel(audio))

    def classify(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Logits of ``features.log_mel(audio)``: training draws from spectrograms made once."""
        return self.head(self.dropout(self.body(log_mel).mean(dim=3).flatten(1)))

    def probabilities(self, audio: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self(audio).softmax(-1)

    def card(self, **extra) -> dict:
        return {"kind": KIND, "classes": list(self.classes), "sample_rate": self.features.sample_rate,
                "features": {k: v for k, v in asdict(self.features).items() if k != "sample_rate"},
                "architecture": {"channels": list(self.channels)}, **extra}


class Ensemble(nn.Module):
    """Classifiers of the same classes and features, each trained from its own seed, averaged in logits: one
    differentiable module, as a single classifier is (``forward``, ``classes``, ``features``, ``card``)."""

    def __init__(self, members: list[DrumClassifier]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.classes, self.features, self.channels = members[0].classes, members[0].features, members[0].channels
        self.ceilings = members[0].ceilings

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features.log_mel(audio))  # the spectrogram once for all of them

    def classify(self, log_mel: torch.Tensor) -> torch.Tensor:
        return torch.stack([member.classify(log_mel) for member in self.members]).mean(0)

    probabilities = DrumClassifier.probabilities

    def card(self, **extra) -> dict:
        card = self.members[0].card(**extra)
        card["architecture"]["members"] = len(self.members)
        return card


def card_path(weights: Path) -> Path:
    return weights.with_suffix(".yaml")


def save_classifier(model: "DrumClassifier | Ensemble", path: str | os.PathLike, **card) -> tuple[Path, Path]:
    """``X.safetensors`` and its card ``X.yaml``, both new files (never replacing one); the card last."""
    weights = Path(path).expanduser()
    if weights.suffix.lower() != ".safetensors":
        weights = weights.with_name(weights.name + ".safetensors")
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    if model.ceilings is not None:
        values, card["ceilings"] = model.ceilings
        state[CEILINGS_KEY] = values.detach().float().cpu().contiguous()
    text = yaml.safe_dump(model.card(**card), sort_keys=False, allow_unicode=True, width=116)
    for target in (weights, card_path(weights)):
        files.check_new(target, CheckpointError)
    files.create_new(weights, safetensors.torch.save(state, metadata={"format": "pt"}), CheckpointError)
    try:
        files.create_new(card_path(weights), text.encode("utf-8"), CheckpointError)
    except BaseException:
        weights.unlink(missing_ok=True)
        raise
    return weights, card_path(weights)


def load_classifier(path: str | os.PathLike | None = None) -> tuple["DrumClassifier | Ensemble", dict]:
    """The classifier at ``path`` (its .safetensors or .yaml; None: the shipped default), in eval mode, and its
    card. CheckpointError, one line, for anything else: a pickle, no card, a card or weights that do not fit."""
    weights = Path(DEFAULT_CLASSIFIER if path is None else path).expanduser()
    if weights.suffix.lower() in (".yaml", ".yml"):
        weights = weights.with_suffix(".safetensors")
    if weights.suffix.lower() != ".safetensors":
        raise CheckpointError(f"{weights}: a classifier is a .safetensors file with its .yaml card beside it "
                              "(pickled checkpoints are never loaded: they can run code)")
    card = files.read_yaml(card_path(weights), CheckpointError)
    if not isinstance(card, dict) or card.get("kind") != KIND:
        raise CheckpointError(f"{card_path(weights)}: not a classifier's card (kind: {KIND!r} missing)")
    try:
        features = Features(sample_rate=int(card["sample_rate"]), **card.get("features", {}))
        classes, channels = [str(name) for name in card["classes"]], [int(w) for w in card["architecture"]["channels"]]
        members = int(card["architecture"].get("members", 1))
        if not 1 <= members <= constants.MAX_CLASSIFIER_MEMBERS:
            raise ValueError(f"members must be 1 to {constants.MAX_CLASSIFIER_MEMBERS}, not {members}")
        model = DrumClassifier(classes, features, channels) if members == 1 else \
            Ensemble([DrumClassifier(classes, features, channels) for _ in range(members)])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{card_path(weights)}: cannot read the card ({type(error).__name__}: "
                              f"{one_line(error)})") from None
    state = read_safetensors(weights, MAX_WEIGHTS_BYTES)
    ceilings = state.pop(CEILINGS_KEY, None)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{weights}: the weights do not fit the card ({one_line(error)})") from None
    if ceilings is not None:
        entry = card.get("ceilings")
        grid = entry.get("grid") if isinstance(entry, dict) else None
        # every figure of the grid a positive number: the guide interpolates with them
        numbers = isinstance(grid, dict) and all(isinstance(grid.get(key), (int, float)) and not isinstance(
            grid.get(key), bool) and grid[key] > 0 for key in CEILING_GRID)
        if not numbers or ceilings.dim() != 3 or len(ceilings) != len(classes) \
                or ceilings.shape[1] != int(grid["bands"]) + 1 or not torch.isfinite(ceilings).all():
            raise CheckpointError(f"{weights}: its class ceilings do not fit the card (a [classes, bands, frames] "
                                  "tensor described by the card's `ceilings`)")
        model.ceilings = (ceilings.float(), entry)
    return model.eval(), card
