"""How `dd-bridge train-classifier` trains: one ``Recipe``, its defaults the shipped classifier's.

Kept free of torch so the command line can show the defaults without loading it (docs/guidance.md, "The
classifier's figures", measures each choice on held-out kits).
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.constants import MAX_CLASSIFIER_MEMBERS
from bridge.errors import BridgeError

AUGMENTS = ("blur", "model", "none")
BATCH = 32  # sounds per step
ROUNDS = 8  # augmented copies of each training sound
MAX_MEMBERS = MAX_CLASSIFIER_MEMBERS  # the limit the classifier's loader holds a card to


@dataclass(frozen=True)
class Recipe:
    """The network, the augmentation and the optimiser of a training run."""

    steps: int = 1500  # per network
    batch: int = BATCH
    lr: float = 3e-3
    augment: str = "none"  # besides the clean sounds: blurred copies, or a diffusion model's estimates
    rough: float = 0.0  # the share of training sounds in a room, soft-clipped, over a noise floor (classify.roughen)
    masks: int = 2  # SpecAugment: bands and spans of each training spectrogram set to the floor (classify.mask)
    channels: tuple[int, ...] = (8, 16, 32, 32)
    n_mels: int = 64
    dropout: float = 0.3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    members: int = 1  # networks averaged in logits, each from its own seed (classifier.Ensemble)
    rounds: int = ROUNDS

    def __post_init__(self):
        if self.augment not in AUGMENTS:
            raise BridgeError(f"augment must be one of {', '.join(AUGMENTS)}, got {self.augment!r}")
        if not 1 <= self.members <= MAX_MEMBERS:
            raise BridgeError(f"members must be 1 to {MAX_MEMBERS}, got {self.members}")
