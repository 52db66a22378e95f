"""Dance Diffusion's DiffusionAttnUnet1D, written natively.

The module tree reproduces the original's parameter names (``net.3.main.1.main.0.weight``, ...), so the EMA
weights of a Harmonai ``.ckpt`` load by stripping their ``diffusion_ema.`` prefix. The fixed resampling kernels are
not parameters here: down- and upsampling run as depthwise convolutions, which compute what the original's dense
C x C x 8 weight (only its diagonal non-zero) computes, at a fraction of the cost.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from bridge.constants import MIN_LENGTH_MULTIPLES

CUBIC_KERNEL = (-0.01171875, -0.03515625, 0.11328125, 0.43359375,
                0.43359375, 0.11328125, -0.03515625, -0.01171875)
TIMESTEP_FEATURES = 16  # Fourier features of t appended to the input channels
HEAD_CHANNELS = 32  # attention heads = channels // 32


@dataclass(frozen=True)
class UNetConfig:
    """The architecture: one channel count per level (outermost first) and how many levels have attention.

    Attention sits at level i (1-based, outermost = 1) when ``i >= depth - n_attn_layers - 1`` and
    ``n_attn_layers > 0``, as in the original. The released models use 14 levels
    ``[128, 128, 256, 256] + [512] * 10`` and ``n_attn_layers=4``.
    """

    channels: tuple[int, ...] = (128, 128, 256, 256) + (512,) * 10
    n_attn_layers: int = 4
    io_channels: int = 2

    def __post_init__(self):
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if len(self.channels) < 2:
            raise ValueError("a U-Net needs at least 2 levels")
        if any(c <= 0 for c in self.channels):
            raise ValueError("channel counts must be positive")
        for level in self.attention_levels:
            if self.channels[level - 1] % HEAD_CHANNELS or self.channels[level - 2] % HEAD_CHANNELS:
                raise ValueError(f"attention levels need channel counts divisible by {HEAD_CHANNELS}")

    @property
    def depth(self) -> int:
        return len(self.channels)

    @property
    def attention_levels(self) -> tuple[int, ...]:
        if self.n_attn_layers <= 0:
            return ()
        first = self.depth - self.n_attn_layers - 1
        return tuple(i for i in range(2, self.depth + 1) if i >= first)

    @property
    def length_multiple(self) -> int:
        """Input lengths must be a multiple of this: each level below the first halves the time axis."""
        return 2 ** (self.depth - 1)

    @property
    def shortest_length(self) -> int:
        """The shortest input the network takes: MIN_LENGTH_MULTIPLES length multiples."""
        return MIN_LENGTH_MULTIPLES * self.length_multiple

    def padded_length(self, length: int) -> int:
        """The length an input of ``length`` samples runs at: the next multiple of the length multiple, and at
        least the shortest length."""
        return max(math.ceil(length / self.length_multiple) * self.length_multiple, self.shortest_length)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["channels"] = list(self.channels)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "UNetConfig":
        known = {"channels", "n_attn_layers", "io_channels"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown architecture keys: {', '.join(sorted(unknown))}")
        return cls(**data)


class FourierFeatures(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features // 2, in_features))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """The features of ``t`` in fp32 whatever the network's precision (autocast off, half weights taken up):
        rounded to fp16/bf16 first, two steps of a grid fell on one time, a noise level up to 14 % off in bf16.
        The caller casts the result to its own dtype; in fp32 this is the plain product, to the bit."""
        with _autocast_off(t.device.type):
            f = 2 * math.pi * t.float() @ self.weight.float().T
            return torch.cat([f.cos(), f.sin()], dim=-1)


def _autocast_off(device_type: str):
    """Autocast turned off for ``device_type`` where it is on (CPU bf16, MPS); nothing to do elsewhere."""
    if device_type in ("cpu", "cuda", "mps", "xpu") and torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


class ResConvBlock(nn.Module):
    def __init__(self, c_in: int, c_mid: int, c_out: int, is_last: bool = False):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(c_in, c_mid, 5, padding=2),
            nn.GroupNorm(1, c_mid),
            nn.GELU(),
            nn.Conv1d(c_mid, c_out, 5, padding=2),
            nn.Identity() if is_last else nn.GroupNorm(1, c_out),
            nn.Identity() if is_last else nn.GELU(),
        )
        self.skip = nn.Identity() if c_in == c_out else nn.Conv1d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.skip(x)


class SelfAttention1d(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.n_head = channels // HEAD_CHANNELS
        self.norm = nn.GroupNorm(1, channels)
        self.qkv_proj = nn.Conv1d(channels, channels * 3, 1)
        self.out_proj = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, s = x.shape
        qkv = self.qkv_proj(self.norm(x)).view(n, 3 * self.n_head, c // self.n_head, s).transpose(2, 3)
        q, k, v = qkv.chunk(3, dim=1)
        # q and k each scaled by d^-1/4 in the original: the same as SDPA's 1/sqrt(d).
        y = F.scaled_dot_product_attention(q, k, v)
        return x + self.out_proj(y.transpose(2, 3).reshape(n, c, s))


def _resampling_kernel(channels: int, scale: float, like: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor(CUBIC_KERNEL, dtype=like.dtype, device=like.device) * scale
    return kernel.expand(channels, 1, len(CUBIC_KERNEL))


class Downsample1d(nn.Module):
    """Halves the time axis with the cubic kernel and reflect padding, channel by channel."""

    pad = len(CUBIC_KERNEL) // 2 - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.pad, self.pad), mode="reflect")
        return F.conv1d(x, _resampling_kernel(x.shape[1], 1.0, x), stride=2, groups=x.shape[1])


class Upsample1d(nn.Module):
    """Doubles the time axis with the cubic kernel (x2) and reflect padding, channel by channel."""

    pad = len(CUBIC_KERNEL) // 2 - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        edge = (self.pad + 1) // 2
        x = F.pad(x, (edge, edge), mode="reflect")
        return F.conv_transpose1d(x, _resampling_kernel(x.shape[1], 2.0, x), stride=2,
                                  padding=self.pad * 2 + 1, groups=x.shape[1])


class SkipBlock(nn.Module):
    def __init__(self, *main: nn.Module):
        super().__init__()
        self.main = nn.Sequential(*main)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.main(x), x], dim=1)


def _attention(channels: int, enabled: bool) -> nn.Module:
    return SelfAttention1d(channels) if enabled else nn.Identity()


class DanceDiffusionUNet(nn.Module):
    """Predicts v for a batch of stereo windows ``x`` [B, C, L] at diffusion times ``t`` [B] in [0, 1]."""

    def __init__(self, config: UNetConfig = UNetConfig()):
        super().__init__()
        self.config = config
        ch = config.channels
        depth = config.depth
        self.timestep_embed = FourierFeatures(1, TIMESTEP_FEATURES)
        block: nn.Module = nn.Identity()
        for i in range(depth, 0, -1):
            c = ch[i - 1]
            if i > 1:
                c_prev = ch[i - 2]
                attn = i in config.attention_levels
                block = SkipBlock(
                    Downsample1d(),
                    ResConvBlock(c_prev, c, c), _attention(c, attn),
                    ResConvBlock(c, c, c), _attention(c, attn),
                    ResConvBlock(c, c, c), _attention(c, attn),
                    block,
                    ResConvBlock(c * 2 if i != depth else c, c, c), _attention(c, attn),
                    ResConvBlock(c, c, c), _attention(c, attn),
                    ResConvBlock(c, c, c_prev), _attention(c_prev, attn),
                    Upsample1d(),
                )
            else:
                block = nn.Sequential(
                    ResConvBlock(config.io_channels + TIMESTEP_FEATURES, c, c),
                    ResConvBlock(c, c, c),
                    ResConvBlock(c, c, c),
                    block,
                    ResConvBlock(c * 2 if depth > 1 else c, c, c),
                    ResConvBlock(c, c, c),
                    ResConvBlock(c, c, config.io_channels, is_last=True),
                )
        self.net = block

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(-1, 1).expand(x.shape[0], 1)
        embed = self.timestep_embed(t).to(x.dtype)[:, :, None].expand(-1, -1, x.shape[2])
        return self.net(torch.cat([x, embed], dim=1))

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
