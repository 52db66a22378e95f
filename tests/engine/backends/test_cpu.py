"""The CPU fast path computes the network the reference computes: resampling, attention, Winograd, the whole U-Net."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from bridge.engine import backends, unet
from bridge.engine.backends import cpu
from bridge.engine.checkpoints import diffusers_to_native, infer_architecture
from bridge.engine.unet import DanceDiffusionUNet, UNetConfig
from tests.support.model_files import SMALL_DIFFUSERS, dance_diffusion_unet1d

CPU = torch.device("cpu")
# Wide enough that the Winograd convolutions are used (WINOGRAD_MIN_CHANNELS), still fast.
WIDE = UNetConfig(channels=(64, 64, 128, 128), n_attn_layers=2)


pytestmark = pytest.mark.usefixtures("one_thread")


def dense_resampling_weight(channels: int, scale: float) -> torch.Tensor:
    """The reference's C x C x 8 weight: the cubic kernel on the diagonal, zeros elsewhere."""
    weight = torch.zeros(channels, channels, len(unet.CUBIC_KERNEL), dtype=torch.float64)
    kernel = torch.tensor(unet.CUBIC_KERNEL, dtype=torch.float64) * scale
    weight[torch.arange(channels), torch.arange(channels)] = kernel
    return weight


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    return x[:, :, None, :].contiguous(memory_format=torch.channels_last)


def test_depthwise_downsampling_equals_the_dense_formulation():
    x = torch.randn(2, 12, 64, dtype=torch.float64)
    pad = unet.Downsample1d.pad
    dense = F.conv1d(F.pad(x, (pad, pad), mode="reflect"), dense_resampling_weight(12, 1.0), stride=2)
    assert torch.allclose(unet.Downsample1d()(x), dense, atol=1e-12)
    fast = cpu.ChannelsLastDownsample()(to_channels_last(x))[:, :, 0]
    assert torch.allclose(fast, dense, atol=1e-12)


def test_depthwise_upsampling_equals_the_dense_formulation():
    x = torch.randn(2, 12, 32, dtype=torch.float64)
    pad = unet.Upsample1d.pad
    edge = (pad + 1) // 2
    dense = F.conv_transpose1d(F.pad(x, (edge, edge), mode="reflect"), dense_resampling_weight(12, 2.0),
                               stride=2, padding=pad * 2 + 1)
    assert dense.shape[-1] == 64
    assert torch.allclose(unet.Upsample1d()(x), dense, atol=1e-12)
    fast = cpu.ChannelsLastUpsample()(to_channels_last(x))[:, :, 0]
    assert torch.allclose(fast, dense, atol=1e-12)


def explicit_attention(attention: unet.SelfAttention1d, x: torch.Tensor) -> torch.Tensor:
    """The original's formula: q and k each scaled by d^-1/4, softmax over keys, heads of 32 channels."""
    n, c, s = x.shape
    heads, d = attention.n_head, c // attention.n_head
    qkv = attention.qkv_proj(attention.norm(x))
    q, k, v = (part.reshape(n, heads, d, s).transpose(2, 3) for part in qkv.chunk(3, dim=1))
    scale = d ** -0.25
    weights = torch.softmax((q * scale) @ (k * scale).transpose(2, 3), dim=-1)
    return x + attention.out_proj((weights @ v).transpose(2, 3).reshape(n, c, s))


@torch.inference_mode()
def test_attention_equals_the_explicit_formula():
    attention = unet.SelfAttention1d(64).double().eval()
    with torch.no_grad():
        attention.norm.weight.add_(torch.randn(64, dtype=torch.float64) * 0.1)
    x = torch.randn(3, 64, 40, dtype=torch.float64)
    expected = explicit_attention(attention, x)
    assert torch.allclose(attention(x), expected, atol=1e-10)
    fast = cpu.ChannelsLastAttention(attention, winograd=False)(to_channels_last(x))[:, :, 0]
    assert torch.allclose(fast, expected, atol=1e-10)


@pytest.mark.parametrize("outputs, taps", [(2, 3), (4, 5), (2, 5), (3, 5)])
def test_winograd_transforms_compute_correlation_exactly(outputs, taps):
    BT, G, AT = cpu.winograd_transforms(outputs, taps)
    d = torch.randn(outputs + taps - 1, dtype=torch.float64)
    g = torch.randn(taps, dtype=torch.float64)
    direct = torch.stack([(g * d[k:k + taps]).sum() for k in range(outputs)])
    assert torch.allclose(AT @ ((G @ g) * (BT @ d)), direct, atol=1e-12)


@torch.inference_mode()
@pytest.mark.parametrize("length", [5, 24, 4096 + 3])
def test_winograd_convolution_matches_conv1d(length):
    conv = torch.nn.Conv1d(64, 96, 5, padding=2)
    x = torch.randn(2, 64, length)
    expected = F.conv1d(x.double(), conv.weight.double(), conv.bias.double(), padding=2)
    fast = cpu.WinogradConv(conv)(to_channels_last(x))
    assert fast.shape == (2, 96, 1, length)
    assert (fast[:, :, 0].double() - expected).abs().max() < 1e-4


@torch.inference_mode()
@pytest.mark.parametrize("config", [UNetConfig(channels=(32, 32, 64, 64), n_attn_layers=2), WIDE],
                         ids=["tiny", "wide"])
def test_fast_network_equals_the_module(config):
    model = DanceDiffusionUNet(config).eval()
    for winograd in (False, True):
        network = cpu.ChannelsLastUNet(model, winograd=winograd)
        for batch, length in ((1, 3 * config.length_multiple), (2, 200)):
            x, t = torch.randn(batch, 2, length), torch.rand(batch)
            assert (network(x, t) - model(x, t)).abs().max() < 1e-4
        kinds = {type(module).__name__ for module in network.modules()}
        assert {"ChannelsLastConv", "ChannelsLastAttention"} <= kinds
        assert ("WinogradConv" in kinds) == winograd


@pytest.mark.parametrize("threads", [1, 2])
def test_winograd_only_single_threaded(threads, monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    network = backends.fast_network(DanceDiffusionUNet(WIDE).eval(), CPU, "fp32")
    kinds = {type(module).__name__ for module in network.module.modules()}
    assert ("WinogradConv" in kinds) == (threads == 1)


@torch.inference_mode()
def test_fast_network_equals_diffusers_on_the_same_weights():
    reference = dance_diffusion_unet1d(*SMALL_DIFFUSERS, sample_size=64)
    native = diffusers_to_native(reference.state_dict(), Path("diffusers"))
    model = DanceDiffusionUNet(infer_architecture(native, Path("diffusers"))).eval()
    model.load_state_dict(native)
    network = cpu.ChannelsLastUNet(model, winograd=True)
    x, t = torch.randn(2, 2, 256), torch.rand(2)
    expected = reference(x, t).sample
    assert (network(x, t) - expected).abs().max() < 1e-4


def test_fast_network_follows_weights_changed_in_place():
    """Training keeps updating the module an evaluation Engine wraps: the transformed weights must follow."""
    model = DanceDiffusionUNet(WIDE).eval()
    network = cpu.ChannelsLastUNet(model, winograd=True)
    x, t = torch.randn(1, 2, 64), torch.rand(1)
    with torch.inference_mode():
        network(x, t)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(1.1)
    with torch.inference_mode():
        assert (network(x, t) - model(x, t)).abs().max() < 1e-4


@torch.inference_mode()
def test_bf16_on_cpu_stays_close():
    model = DanceDiffusionUNet(WIDE).eval()
    network = backends.fast_network(model, CPU, "bf16")
    x, t = torch.randn(1, 2, 256), torch.rand(1)
    v, expected = network(x, t), model(x, t)
    assert v.dtype == torch.float32
    assert (v - expected).abs().max() < 0.1 * expected.abs().max()
