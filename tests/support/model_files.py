"""Model files in the exact layouts users bring, with random weights: diffusers folders and Lightning checkpoints.

diffusers is a test-only dependency: it is the reference the native U-Net and the key renaming are checked against
(bridge.bench.reference builds its networks, for the benchmark and these tests alike).
"""

from __future__ import annotations

import builtins
import json
from collections import OrderedDict
from pathlib import Path

import torch

from bridge.bench.reference import unet1d
from bridge.engine.unet import CUBIC_KERNEL, DanceDiffusionUNet

# diffusers' block_out_channels and how many of the innermost down blocks have attention.
SMALL_DIFFUSERS = ((32, 64, 64, 64), 2)  # native: channels (32, 64, 64, 64, 64), attention on levels 3-5
FULL_DIFFUSERS = ((128, 128, 256, 256) + (512,) * 9, 5)  # the released 221M-parameter configuration


def dance_diffusion_unet1d(block_out_channels, attention_blocks, *, sample_rate=48000, sample_size=65536,
                           seed=0):
    """A diffusers UNet1DModel with Dance Diffusion's block layout (as on the hub) and random weights, the norms'
    affine parameters included so that their renaming is checked too."""
    torch.manual_seed(seed)
    model = unet1d(block_out_channels, attention_blocks, sample_rate=sample_rate, sample_size=sample_size)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    return model.eval()


def write_diffusers_folder(model, folder: Path, *, hub_config: bool = True, safetensors: bool = True) -> Path:
    """save_pretrained, then (hub_config) drop time_embedding_dim as the real hub configs lack it."""
    model.save_pretrained(folder, safe_serialization=safetensors)
    if hub_config:
        config_path = folder / "config.json"
        config = json.loads(config_path.read_text())
        del config["time_embedding_dim"]
        config_path.write_text(json.dumps(config, indent=2))
    return folder


def resampler_kernel_keys(state: dict) -> list[str]:
    """The original's down/upsampler buffers: index 0 and 14 of every level below the outermost."""
    keys = []
    for key in state:
        if key.endswith(".1.main.0.weight") and key.startswith("net.3."):
            prefix = key[: -len("1.main.0.weight")]
            keys += [prefix + "0.kernel", prefix + "14.kernel"]
    return keys


def write_lightning_checkpoint(path: Path, ema: dict, *, online: dict | None = None,
                               global_step: int = 190000) -> Path:
    """A checkpoint as Harmonai's train_uncond.py leaves it: both copies of the network with their resampler
    buffers, Adam state, callback and AMP state. ``online`` defaults to ``ema`` itself (shared storage)."""
    online = ema if online is None else online
    state = OrderedDict()
    for prefix, weights in (("diffusion.", online), ("diffusion_ema.", ema)):
        for key, value in weights.items():
            state[prefix + key] = value
        for key in resampler_kernel_keys(weights):
            state[prefix + key] = torch.tensor(CUBIC_KERNEL)
    parameters = [value for key, value in online.items()]
    checkpoint = {
        "epoch": 41,
        "global_step": global_step,
        "pytorch-lightning_version": "1.6.5",
        "state_dict": state,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_loop.state_dict": {"_batches_that_stepped": global_step}}},
        "callbacks": {"ModelCheckpoint{'monitor': None, 'mode': 'min', 'every_n_train_steps': 10000}": {
            "monitor": None, "best_model_score": None, "best_model_path": "", "current_score": None,
            "dirpath": "/content/ckpts", "best_k_models": {}, "kth_best_model_path": "",
            "kth_value": torch.tensor(float("inf")), "last_model_path": ""}},
        "optimizer_states": [{
            "state": {i: {"step": torch.tensor(float(global_step)), "exp_avg": torch.randn_like(p) * 1e-3,
                          "exp_avg_sq": torch.rand_like(p) * 1e-6} for i, p in enumerate(parameters[:4])},
            "param_groups": [{"lr": 4e-5, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False,
                              "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                              "fused": None, "params": list(range(len(parameters)))}],
        }],
        "lr_schedulers": [],
        "native_amp_scaling_state": {"scale": torch.tensor(32768.0), "growth_factor": 2.0, "backoff_factor": 0.5,
                                     "growth_interval": 2000, "_growth_tracker": torch.tensor(17)},
    }
    torch.save(checkpoint, path)
    return path


def random_native_state(config, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    return {key: value.detach().clone() for key, value in DanceDiffusionUNet(config).state_dict().items()}


class Malicious:
    """Unpickling this calls open(marker, "w"): a stand-in for any code an attacker would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))
