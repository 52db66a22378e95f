"""Model cards (YAML next to the weights) and the registry of named models.

A card says what the weights cannot: the sample rate and window the model was trained at, where the weights came
from and under which licence. Fields the project does not know (training notes, ...) are kept as they are and
written back unchanged. Cards are read with ``bridge.files.load_yaml``
(safe types, no aliases, bounded size): a card never runs code nor expands into gigabytes, and a message never
repeats more than the start of a bad value.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs
import yaml

from bridge import constants, files
from bridge.engine.unet import UNetConfig
from bridge.errors import CheckpointError

log = logging.getLogger(__name__)

CARD_SUFFIX = ".yaml"
WEIGHTS_SUFFIX = ".safetensors"
KNOWN_FIELDS = ("name", "sample_rate", "window", "architecture", "provenance", "licence")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
SAMPLE_RATE_RANGE = (1000, 384000)
MAX_CARD_BYTES = files.YAML_BYTES  # a card is a few kB; a larger one is not a card


@dataclass(frozen=True)
class ModelCard:
    name: str
    sample_rate: int
    window: int
    architecture: UNetConfig
    provenance: str = "unknown"
    licence: str = "unknown"
    extra: dict = field(default_factory=dict)  # any other fields, kept on round trip
    path: Path | None = field(default=None, compare=False)  # where the card was read from; never written

    def __post_init__(self):
        where = f"model card {self.path}" if self.path else "model card"
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise CheckpointError(f"{where}: name must be letters, digits, '.', '_', '+' or '-', "
                                  f"got {files.shown(self.name)}")
        low, high = SAMPLE_RATE_RANGE
        if not _is_int(self.sample_rate) or not low <= self.sample_rate <= high:
            raise CheckpointError(f"{where}: sample_rate must be an integer in [{low}, {high}], "
                                  f"got {files.shown(self.sample_rate)}")
        problem = window_problem(self.architecture, self.window)
        if problem:
            raise CheckpointError(f"{where}: {problem}")
        for key in ("provenance", "licence"):
            if not isinstance(getattr(self, key), str):
                raise CheckpointError(f"{where}: {key} must be text, got {files.shown(getattr(self, key))}")
        # What a run made here records, read by eval, bench and a fine-tune's run (held-out files, data folders):
        # checked here, once, so a hand-edited card is refused in one line naming it, not met as a crash there.
        training = self.extra.get("training")
        if training is not None and not isinstance(training, dict):
            raise CheckpointError(f"{where}: training must be a mapping, got {files.shown(training)}")
        bases = (training or {}).get("base_training")
        if bases is not None and not (isinstance(bases, list) and all(isinstance(x, dict) for x in bases)):
            raise CheckpointError(f"{where}: training.base_training must be a list of mappings, "
                                  f"got {files.shown(bases)}")
        for at, record in [("training", training or {})] + [(f"training.base_training[{i}]", record)
                                                             for i, record in enumerate(bases or [])]:
            for key in ("held_out_files", "data"):
                listed = record.get(key)
                if listed is not None and not (isinstance(listed, list) and all(isinstance(x, str) for x in listed)):
                    raise CheckpointError(f"{where}: {at}.{key} must be a list of paths, got {files.shown(listed)}")

    @property
    def held_out_files(self) -> list[Path]:
        """The files a model trained here kept out of training (``training.held_out_files``), for eval."""
        training = self.extra.get("training") or {}
        return [Path(name) for name in training.get("held_out_files") or []]

    @property
    def lineage(self) -> list[dict]:
        """What the model trained on here, as {data: folders, held_out_files: files}: its own training, then its
        base's and the base's bases' (``training.base_training``, which a fine-tune's run copies from its base's
        card), so a judge leaves out of a reference every file the weights learnt from. Empty for a model whose
        card names no training data (a third party's)."""
        training = self.extra.get("training") or {}
        records = [training, *(training.get("base_training") or [])]
        return [{"data": list(record.get("data") or []), "held_out_files": list(record.get("held_out_files") or [])}
                for record in records if record.get("data")]

    @property
    def weights_path(self) -> Path:
        """The card ``X.yaml`` describes the weights ``X.safetensors`` beside it."""
        if self.path is None:
            raise CheckpointError(f"model card {self.name!r} was not read from a file: its weights have no path")
        return self.path.with_suffix(WEIGHTS_SUFFIX)

    def to_dict(self) -> dict:
        data = {
            "name": self.name,
            "sample_rate": self.sample_rate,
            "window": self.window,
            "architecture": self.architecture.to_dict(),
            "provenance": self.provenance,
            "licence": self.licence,
        }
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: object, path: Path | None = None) -> "ModelCard":
        where = f"model card {path}" if path else "model card"
        if not isinstance(data, dict):
            raise CheckpointError(f"{where}: expected a mapping of fields, got {type(data).__name__}")
        missing = [key for key in ("name", "sample_rate", "window", "architecture") if key not in data]
        if missing:
            raise CheckpointError(f"{where}: missing field(s) {', '.join(missing)}")
        architecture = data["architecture"]
        if not isinstance(architecture, dict):
            raise CheckpointError(f"{where}: architecture must be a mapping, got {files.shown(architecture)}")
        try:
            config = UNetConfig.from_dict(architecture)
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{where}: architecture: {str(error)[:200]}") from None
        extra = {key: value for key, value in data.items() if key not in KNOWN_FIELDS}
        return cls(name=data["name"], sample_rate=data["sample_rate"], window=data["window"], architecture=config,
                   provenance=data.get("provenance", "unknown"), licence=data.get("licence", "unknown"),
                   extra=extra, path=path)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def window_problem(architecture: UNetConfig, window: object) -> str | None:
    """What is wrong with ``window`` for a network of ``architecture`` ("window must be ..."), or None: the one
    check of a card's window, and of a training run's before anything is written (bridge.training.session)."""
    multiple, shortest = architecture.length_multiple, architecture.shortest_length
    if not _is_int(window) or window < shortest or window % multiple:
        return (f"window must be a multiple of {multiple} samples, at least {shortest}, for this architecture; "
                f"got {files.shown(window)}")
    return None


def read_card(path: str | os.PathLike) -> ModelCard:
    path = Path(path)
    data = files.read_yaml(path, CheckpointError, MAX_CARD_BYTES)
    return ModelCard.from_dict(data, path=path.resolve())


def write_card(card: ModelCard, path: str | os.PathLike) -> Path:
    """Writes the card to a new file; an existing file is never replaced."""
    path = Path(path)
    text = yaml.safe_dump(card.to_dict(), sort_keys=False, allow_unicode=True)
    return files.create_new(path, text.encode("utf-8"), CheckpointError)


# The registry ---------------------------------------------------------------------------------------------------

def user_models_dir() -> Path:
    return Path(platformdirs.user_data_dir("dd-bridge")) / "models"


def model_folders() -> list[Path]:
    """Where model names are looked up, in order: the bundled models, then the user's own."""
    return [constants.MODELS_DIR, user_models_dir()]


def list_models() -> list[ModelCard]:
    """Every readable card in the model folders; a broken card is skipped with a warning, not fatal."""
    cards = []
    for folder in model_folders():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"*{CARD_SUFFIX}")):
            try:
                cards.append(read_card(path))
            except CheckpointError as error:
                log.warning("skipping %s", error)
    return cards


def find_model(name_or_path: str | os.PathLike) -> Path:
    """The path of a model: an existing path as it is (any layout), or a name resolved to its card."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        return path
    if _looks_like_path(text):
        raise CheckpointError(f"{text}: no such file or directory")
    for card in list_models():
        if card.name == text:
            return card.path
    folders = ", ".join(str(folder) for folder in model_folders())
    raise CheckpointError(f"no model named {text!r} (looked in {folders}); `dd-bridge models` lists the known ones")


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or Path(text).suffix.lower() in {
        ".ckpt", ".pt", ".pth", ".bin", WEIGHTS_SUFFIX, CARD_SUFFIX, ".yml"}
