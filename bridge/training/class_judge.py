"""An independent judge of drum class for `dd-bridge eval-guides --class-judge`: a model that did not guide.

Multinomial logistic regression on `dd-bridge eval`'s features (log-mel mean and spread, envelope, level:
bridge.training.features.describe) — another model on another view of the sound than the classifier a class guide
follows, so a guide that fools its own classifier does not fool it as easily.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from bridge.training.classify import Accuracy, ClassSet, tally
from bridge.training.features import describe, standardiser


class FeatureJudge:
    """Trained on labelled windows at construction; ``names(audio)`` are its answers."""

    def __init__(self, windows: torch.Tensor, labels: torch.Tensor, classes, rate: int, steps: int = 500):
        self.classes, self.rate, self.window = tuple(classes), rate, windows.shape[-1]
        x = describe(windows, rate).double()
        self.mean, self.std = standardiser(x)
        x = (x - self.mean) / self.std
        self.linear = torch.nn.Linear(x.shape[1], len(self.classes)).double()
        optimiser = torch.optim.LBFGS(self.linear.parameters(), max_iter=steps)

        def closure():
            optimiser.zero_grad()
            loss = F.cross_entropy(self.linear(x), labels) + 1e-3 * self.linear.weight.pow(2).sum()
            loss.backward()
            return loss

        optimiser.step(closure)

    def predict(self, audio: torch.Tensor) -> torch.Tensor:
        """[N] class indices of [N, C, L] audio at ``rate``, cut or padded to the window it learnt on."""
        audio = F.pad(audio[..., :self.window], (0, max(0, self.window - audio.shape[-1])))
        with torch.no_grad():
            return self.linear((describe(audio, self.rate).double() - self.mean) / self.std).argmax(-1)

    def names(self, audio: torch.Tensor) -> list[str]:
        return [self.classes[int(k)] for k in self.predict(audio)]

    @classmethod
    def left_out_accuracy(cls, data: ClassSet) -> Accuracy:
        """Each kit judged by a judge trained on the other kits: how well the judge generalises."""
        order, guessed = [], []
        for kit in sorted(set(data.kits)):
            inside, outside = data.indices({kit}, True), data.indices({kit}, False)
            judge = cls(data.windows[outside], data.labels[outside], data.classes, data.sample_rate)
            order += inside
            guessed.append(judge.predict(data.windows[inside]))
        return tally(data, order, torch.cat(guessed))
