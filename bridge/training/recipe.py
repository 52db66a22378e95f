"""The training recipe's knobs: how noise levels are drawn and how the v error is weighted into the loss.

Each knob is one small function, parsed once from run.yaml's text into a `Recipe`. The defaults (`uniform`, `flat`,
no pre-emphasis) are the original trainer's loss to the bit, so a run.yaml written before these existed continues
exactly as it started. docs/benchmarks.md ("Training recipe") has what each one measured on held-out kits.

Why weighting the v error is the same as weighting the x0 error: with x_t = alpha x0 + sigma eps and
v = alpha eps - sigma x0, the network's clip estimate is x0_hat = alpha x_t - sigma v_hat, so
x0_hat - x0 = -sigma (v_hat - v) at every sample. Any linear, time-invariant filter P of the error (pre-emphasis)
therefore gives P(x0 error) = -sigma P(v error): the same filtered loss on either target, up to the per-clip factor
sigma^2 that the weighting over noise levels absorbs. The same identity gives min-SNR's v form below.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bridge.engine.schedules import crash_inverse
from bridge.errors import ConfigError

LOSS_WEIGHTS = "flat | min-snr:GAMMA"
T_SAMPLINGS = "uniform | low:T:FRACTION"


@dataclass(frozen=True)
class Recipe:
    """What a run's settings say about the loss, parsed and checked once."""

    gamma: float | None = None  # min-SNR's cap; None: flat
    pre_emphasis: float = 0.0
    low_t: float = 1.0  # low:T:FRACTION: FRACTION of each batch's times at or below T
    low_fraction: float | None = None

    @classmethod
    def from_settings(cls, settings) -> Recipe:
        gamma = parse_loss_weight(getattr(settings, "loss_weight", "flat"))
        low_t, fraction = parse_t_sampling(getattr(settings, "t_sampling", "uniform"))
        coeff = float(getattr(settings, "pre_emphasis", 0.0))
        if not 0 <= coeff < 1:
            raise ConfigError(f"pre-emphasis must be in [0, 1), got {coeff:g}")
        return cls(gamma=gamma, pre_emphasis=coeff, low_t=low_t, low_fraction=fraction)

    @property
    def is_original(self) -> bool:
        return self.gamma is None and self.pre_emphasis == 0

    def times(self, u: torch.Tensor) -> torch.Tensor:
        return warp_low(u, self.low_t, self.low_fraction) if self.low_fraction is not None else u

    def loss(self, predicted: torch.Tensor, target: torch.Tensor, alpha: torch.Tensor,
             sigma: torch.Tensor) -> torch.Tensor:
        """The weighted mean squared v error; alpha, sigma: each clip's, shaped (batch, 1, 1)."""
        error = pre_emphasise(predicted - target, self.pre_emphasis)
        per_clip = error.pow(2).mean(dim=(1, 2))
        if self.gamma is not None:
            per_clip = per_clip * min_snr_weight(alpha.flatten(), sigma.flatten(), self.gamma).to(per_clip.dtype)
        return per_clip.mean()


def parse_loss_weight(text: str) -> float | None:
    """`flat` (None) or `min-snr:GAMMA` (GAMMA > 0)."""
    text = str(text).strip()
    if text == "flat":
        return None
    kind, _, value = text.partition(":")
    try:
        gamma = float(value)
    except ValueError:
        gamma = -1.0
    if kind != "min-snr" or not gamma > 0:
        raise ConfigError(f"loss weight must be {LOSS_WEIGHTS} (GAMMA > 0, e.g. min-snr:5), got {text!r}")
    return gamma


def parse_t_sampling(text: str) -> tuple[float, float | None]:
    """`uniform` (1, None) or `low:T:FRACTION` (0 < T < 1, 0 < FRACTION < 1)."""
    text = str(text).strip()
    if text == "uniform":
        return 1.0, None
    parts = text.split(":")
    try:
        t, fraction = (float(p) for p in parts[1:]) if parts[0] == "low" and len(parts) == 3 else (-1.0, -1.0)
    except ValueError:
        t, fraction = -1.0, -1.0
    if not (0 < t < 1 and 0 < fraction < 1):
        raise ConfigError(f"t sampling must be {T_SAMPLINGS} (0 < T < 1, 0 < FRACTION < 1, e.g. low:0.3:0.6), "
                          f"got {text!r}")
    return t, fraction


def min_snr_weight(alpha: torch.Tensor, sigma: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma (Hang et al. 2023) in the v form: min(SNR, gamma) / (SNR + 1), with SNR = alpha^2 / sigma^2.

    The v error is the x0 error over sigma (module docstring), and SNR + 1 = 1 / sigma^2, so this weight on the v
    loss is min(SNR, gamma) on the x0 loss: the flat v loss weights the x0 error by SNR + 1, without a cap, and so
    spends most of its gradient on the lowest noise levels. Written as min(alpha^2, gamma sigma^2) it is exact at
    t = 0 (sigma = 0), where SNR is infinite.
    """
    return torch.minimum(alpha**2, gamma * sigma**2)


def pre_emphasise(error: torch.Tensor, coeff: float) -> torch.Tensor:
    """A first-order high-pass e[n] - coeff e[n-1] along time (the first sample as it is), over the white-noise gain.

    Linear, so filtering the v error is filtering the x0 error (module docstring). Drums put most of their energy
    low, and the squared error follows it: this lets the quiet high end (a hat's air, the hiss of a decay) count.
    Dividing by 1 + coeff^2 keeps a white error's loss where it was, so the learning rate means the same.
    """
    if coeff == 0:
        return error
    shifted = torch.cat([error[..., :1], error[..., 1:] - coeff * error[..., :-1]], dim=-1)
    return shifted / (1 + coeff**2) ** 0.5


def warp_low(u: torch.Tensor, t_max: float, fraction: float) -> torch.Tensor:
    """Move `fraction` of the uniform u (before the crash warp) to times at or below t_max, the rest above.

    Piecewise linear and increasing, so a batch's stratification over u survives: [0, fraction) maps onto
    [0, u_max) and [fraction, 1) onto [u_max, 1), where crash_schedule(u_max) = t_max. The uniform draw already puts
    crash_inverse(t_max) of the times there (64 % at or below 0.5, 47 % at or below 0.3, 26 % at or below 0.1).
    """
    u_max = crash_inverse(t_max)
    low = u / fraction * u_max
    high = u_max + (u - fraction) / (1 - fraction) * (1 - u_max)
    return torch.where(u < fraction, low, high)
