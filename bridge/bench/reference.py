"""The reference implementation: diffusers' UNet1DModel and DanceDiffusionPipeline, with our weights or random
ones, in Dance Diffusion's block layout. The benchmark times the engine against it and the parity tests check the
engine against it (tests/support/model_files.py builds its networks here).

diffusers is a test-only dependency: ``MISSING`` is the one line that says how to get it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from bridge.engine.checkpoints import LoadedModel, diffusers_to_native
from bridge.engine.unet import TIMESTEP_FEATURES, DanceDiffusionUNet, UNetConfig

MISSING = "diffusers is not installed (the reference; .venv/bin/pip install -e '.[test]' adds it)"


def diffusers_available() -> bool:
    try:
        import diffusers  # noqa: F401
    except ImportError:
        return False
    return True


def unet1d(block_out_channels: Sequence[int], attention_blocks: int, *, sample_rate: int, sample_size: int,
           io_channels: int = 2):
    """A diffusers UNet1DModel (diffusers' own random initialisation) in Dance Diffusion's block layout, as on the
    hub: ``attention_blocks`` of the innermost down blocks with attention."""
    from diffusers import UNet1DModel

    plain = len(block_out_channels) - 1 - attention_blocks
    return UNet1DModel(
        sample_size=sample_size, sample_rate=sample_rate, in_channels=io_channels, out_channels=io_channels,
        extra_in_channels=TIMESTEP_FEATURES, time_embedding_type="fourier", time_embedding_dim=TIMESTEP_FEATURES,
        flip_sin_to_cos=True, use_timestep_embedding=False,
        down_block_types=("DownBlock1DNoSkip",) + ("DownBlock1D",) * plain + ("AttnDownBlock1D",) * attention_blocks,
        up_block_types=("AttnUpBlock1D",) * attention_blocks + ("UpBlock1D",) * plain + ("UpBlock1DNoSkip",),
        mid_block_type="UNetMidBlock1D", block_out_channels=tuple(block_out_channels),
    ).eval()


def diffusers_unet(config: UNetConfig, sample_rate: int, window: int):
    """``unet1d`` laid out as ``config``, or None when diffusers cannot express it: its innermost level always
    has attention, and every level with attention must be as wide as the level around it (true of the released
    architecture)."""
    depth, channels = config.depth, config.channels
    if depth < 3 or depth not in config.attention_levels or \
            any(channels[level - 1] != channels[level - 2] for level in config.attention_levels):
        return None
    attention_blocks = sum(level in config.attention_levels for level in range(2, depth))
    return unet1d(channels[:-1], attention_blocks, sample_rate=sample_rate, sample_size=window,
                  io_channels=config.io_channels)


def native_to_diffusers(state: dict[str, torch.Tensor], reference) -> dict[str, torch.Tensor]:
    """Our weights under diffusers' names: ``diffusers_to_native`` run on element numbers tells where each of
    our values came from, so the renaming (and the q/k/v split) is known in one place only."""
    # The resamplers' fixed kernels are buffers diffusers saves and we compute: the model keeps its own.
    layout = {key: value for key, value in reference.state_dict().items()
              if value.is_floating_point() and not key.endswith(".kernel")}
    numbered, offset = {}, 0
    for key, value in layout.items():
        numbered[key] = torch.arange(offset, offset + value.numel(), dtype=torch.float64).view(value.shape)
        offset += value.numel()
    origin = diffusers_to_native(numbered, Path("diffusers layout"))
    flat = torch.full((offset,), math.nan, dtype=torch.float32)
    for key, positions in origin.items():
        flat[positions.reshape(-1).long()] = state[key].detach().float().reshape(-1)
    result, offset = {}, 0
    for key, value in layout.items():
        result[key] = flat[offset:offset + value.numel()].view(value.shape)
        offset += value.numel()
    if torch.isnan(flat).any():
        raise ValueError("some diffusers weights have no counterpart in ours")
    return result


def diffusers_twin(loaded: LoadedModel):
    """diffusers' UNet1DModel with the weights of ``loaded``; None without diffusers or where it cannot express
    the architecture."""
    if not diffusers_available():
        return None
    reference = diffusers_unet(loaded.architecture, loaded.sample_rate, loaded.window)
    if reference is not None:
        reference.load_state_dict(native_to_diffusers(loaded.state_dict, reference), strict=False)
    return reference


def reference_pair(config: UNetConfig, sample_rate: int, window: int, seed: int = 0):
    """Random weights in both implementations: (LoadedModel, our module, diffusers model or None). Seeded, so
    that a cached ONNX export of them is found again next time."""
    torch.manual_seed(seed)
    network = DanceDiffusionUNet(config).eval()
    loaded = LoadedModel.from_network(network, name=f"bench-{'-'.join(map(str, config.channels))}",
                                      sample_rate=sample_rate, window=window, provenance="random weights")
    return loaded, network, diffusers_twin(loaded)


def pipeline_render(unet, *, count: int, steps: int, seconds: float,
                    generator: torch.Generator | list[torch.Generator]) -> torch.Tensor:
    """DanceDiffusionPipeline with IPNDMScheduler (its default sampler) on ``unet``: [count, 2, L] float32, as
    the pipeline writes it (clamped to [-1, 1])."""
    from diffusers import DanceDiffusionPipeline, IPNDMScheduler

    pipeline = DanceDiffusionPipeline(unet=unet, scheduler=IPNDMScheduler())
    pipeline.set_progress_bar_config(disable=True)
    audio = pipeline(batch_size=count, num_inference_steps=steps, generator=generator,
                     audio_length_in_s=seconds).audios
    return torch.from_numpy(audio)
