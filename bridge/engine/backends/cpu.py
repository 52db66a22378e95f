"""The torch backend on the CPU: the same function of the same weights, ``network(x, t) -> v``, computed faster.

Nearly all the time goes into the k=5 convolutions, which oneDNN already runs close to the cores' peak. The
network runs channels-last as 2-D convolutions (oneDNN's fastest layout, no reorders between layers). Run on one
thread, its k=5 convolutions with more than a few channels also run as Winograd F(4, 5): eight products per four
outputs instead of twenty, exact in real arithmetic, in float32 off by ~1e-5 (fp32 only; with bf16 the transforms
would lose too much). Measured on the full model: 1.4x less CPU time than channels-last alone on one thread, but
more on two (its many small products split badly between threads), hence only there. Derived weights are made
once and again only when the module's own change (training).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from bridge.engine import unet

WINOGRAD_OUTPUTS = 4  # F(4, 5): tiles of 8 inputs give 4 outputs
WINOGRAD_POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5)  # and infinity: the usual points, small exact transforms
WINOGRAD_MIN_CHANNELS = 64  # below this the transforms cost more than the products they save
TILES_PER_CHUNK = 1024  # a chunk's transforms stay in cache
CHANNELS_LAST = torch.channels_last


def uses_winograd(dtype: torch.dtype) -> bool:
    """Winograd where it pays: float32 on one thread (see above)."""
    return dtype == torch.float32 and torch.get_num_threads() == 1


def winograd_transforms(outputs: int, taps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lavin & Gray (2016)'s F(m, r) for correlation, from Toom-Cook at WINOGRAD_POINTS and infinity.

    Returns float64 (BT [a, a], G [a, r], AT [m, a]), a = m + r - 1, such that for one tile d of a inputs and a
    filter g of r taps, ``AT @ ((G @ g) * (BT @ d))`` equals ``y[k] = sum_i g[i] d[k + i]``, k < m.
    """
    size = outputs + taps - 1
    if size - 1 > len(WINOGRAD_POINTS):
        raise ValueError(f"F({outputs}, {taps}) needs {size - 1} points, {len(WINOGRAD_POINTS)} known")
    points = torch.tensor(WINOGRAD_POINTS[:size - 1], dtype=torch.float64)

    def evaluation(n: int) -> torch.Tensor:  # a polynomial's n coefficients -> its values at the points and at oo
        at_infinity = torch.zeros(1, n, dtype=torch.float64)
        at_infinity[0, -1] = 1.0  # the leading coefficient
        return torch.cat([points[:, None] ** torch.arange(n), at_infinity])

    # Convolution is evaluation, products, interpolation; correlation is its transpose.
    return torch.linalg.inv(evaluation(size)).T, evaluation(taps), evaluation(outputs).T


class _Derived:
    """A tensor computed from a parameter, computed again only when the parameter has changed (a training step
    updates parameters in place, which bumps their version counter)."""

    def __init__(self, compute: Callable[[torch.Tensor], torch.Tensor]):
        self.compute = compute
        self.key = None
        self.value = None

    def __call__(self, parameter: torch.Tensor) -> torch.Tensor:
        # Tensors made under inference_mode keep no version counter; nothing trains them, so they do not change.
        version = None if parameter.is_inference() else parameter._version
        key = (parameter.data_ptr(), version, parameter.dtype, parameter.device)
        if key != self.key:
            with torch.no_grad():
                self.value = self.compute(parameter.detach())
            self.key = key
        return self.value


class ChannelsLastConv(nn.Module):
    """A Conv1d run as a 2-D convolution on [B, C, 1, L] channels-last activations."""

    def __init__(self, conv: nn.Conv1d):
        super().__init__()
        self.conv = conv
        self.padding = (0, conv.padding[0])
        self.weight = _Derived(lambda w: w[:, :, None, :].contiguous(memory_format=CHANNELS_LAST))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight(self.conv.weight), self.conv.bias, padding=self.padding)


class WinogradConv(nn.Module):
    """A stride-1 Conv1d as Winograd F(m, r) on [B, C, 1, L] channels-last activations (float32 only)."""

    def __init__(self, conv: nn.Conv1d, outputs: int = WINOGRAD_OUTPUTS):
        super().__init__()
        self.conv = conv
        self.outputs = outputs
        self.taps = conv.kernel_size[0]
        self.pad = conv.padding[0]
        BT, G, AT = winograd_transforms(outputs, self.taps)
        self.register_buffer("BT", BT.float(), persistent=False)
        self.register_buffer("AT", AT.float(), persistent=False)
        # U[a] = (G w)[a] as a [C_in, C_out] matrix: each tile point is one matrix product over channels.
        self.U = _Derived(lambda w: torch.einsum("ai,oci->aco", G.to(w.device), w.double()).float().contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, _, length = x.shape
        m, BT, AT, U, bias = self.outputs, self.BT, self.AT, self.U(self.conv.weight), self.conv.bias
        size = BT.shape[0]
        tiles = -(-length // m)
        padded = F.pad(x, (self.pad, tiles * m + self.taps - 1 - length - self.pad, 0, 0))
        rows = padded.permute(0, 2, 3, 1)  # [B, 1, L', C]: the channels-last memory, viewed as it is laid out
        out = x.new_empty(batch, tiles, m, U.shape[2])
        for b in range(batch):
            for first in range(0, tiles, TILES_PER_CHUNK):
                n = min(TILES_PER_CHUNK, tiles - first)
                d = rows[b, 0, first * m:].as_strided((size, n, channels), (channels, m * channels, 1))
                v = (BT @ d.reshape(size, -1)).view(size, n, channels)
                y = (AT @ torch.bmm(v, U).view(size, -1)).view(m, n, -1).transpose(0, 1)
                if bias is None:
                    out[b, first:first + n].copy_(y)
                else:
                    torch.add(y, bias, out=out[b, first:first + n])
        return out.view(batch, 1, tiles * m, -1)[:, :, :length].permute(0, 3, 1, 2)


class ChannelsLastAttention(nn.Module):
    def __init__(self, attention: unet.SelfAttention1d, winograd: bool):
        super().__init__()
        self.n_head = attention.n_head
        self.norm = attention.norm
        self.qkv_proj = _convert(attention.qkv_proj, winograd)
        self.out_proj = _convert(attention.out_proj, winograd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, _, s = x.shape
        # Channels-last memory is [n, s, c]; the original splits c as (q|k|v, head, d).
        qkv = self.qkv_proj(self.norm(x)).permute(0, 2, 3, 1).reshape(n, s, 3, self.n_head, c // self.n_head)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, 1, s, c).permute(0, 3, 1, 2)
        return x + self.out_proj(y)


def _cubic_kernel(channels: int, scale: float, like: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor(unet.CUBIC_KERNEL, dtype=like.dtype, device=like.device) * scale
    return kernel.expand(channels, 1, 1, len(unet.CUBIC_KERNEL)).contiguous(memory_format=CHANNELS_LAST)


class ChannelsLastDownsample(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = unet.Downsample1d.pad
        x = F.pad(x, (pad, pad, 0, 0), mode="reflect")
        return F.conv2d(x, _cubic_kernel(x.shape[1], 1.0, x), stride=(1, 2), groups=x.shape[1])


class ChannelsLastUpsample(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = unet.Upsample1d.pad
        edge = (pad + 1) // 2
        x = F.pad(x, (edge, edge, 0, 0), mode="reflect")
        return F.conv_transpose2d(x, _cubic_kernel(x.shape[1], 2.0, x), stride=(1, 2), padding=(0, pad * 2 + 1),
                                  groups=x.shape[1])


def _convert(module: nn.Module, winograd: bool) -> nn.Module:
    """The channels-last twin of ``module``, sharing its parameters (norms, biases) instead of copying them."""
    if isinstance(module, nn.Conv1d):
        wide = module.in_channels >= WINOGRAD_MIN_CHANNELS and module.out_channels >= WINOGRAD_MIN_CHANNELS
        if winograd and wide and module.kernel_size[0] > 1 and module.stride == (1,) and module.groups == 1 \
                and module.dilation == (1,):
            return WinogradConv(module)
        return ChannelsLastConv(module)
    if isinstance(module, unet.SelfAttention1d):
        return ChannelsLastAttention(module, winograd)
    if isinstance(module, unet.Downsample1d):
        return ChannelsLastDownsample()
    if isinstance(module, unet.Upsample1d):
        return ChannelsLastUpsample()
    if not module._modules:
        return module  # GroupNorm, GELU, Identity: any layout
    twin = copy.copy(module)
    twin._modules = {name: _convert(child, winograd) for name, child in module._modules.items()}
    return twin


class ChannelsLastUNet(nn.Module):
    """``DanceDiffusionUNet`` computed channels-last (and with Winograd convolutions when ``winograd``)."""

    def __init__(self, model: unet.DanceDiffusionUNet, winograd: bool = True):
        super().__init__()
        self.config = model.config
        self.timestep_embed = model.timestep_embed
        self.net = _convert(model.net, winograd)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.to(x.dtype).reshape(-1, 1).expand(x.shape[0], 1)
        embed = self.timestep_embed(t)[:, :, None].expand(-1, -1, x.shape[2])
        h = torch.cat([x, embed], dim=1)[:, :, None, :].contiguous(memory_format=CHANNELS_LAST)
        return self.net(h)[:, :, 0, :].contiguous()
