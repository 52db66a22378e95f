"""Loading Dance Diffusion weights from the three layouts users have, and saving the project's own.

1. A Harmonai PyTorch Lightning ``.ckpt`` (the released models and fine-tunes of them): the EMA copy of the network.
2. A diffusers ``UNet1DModel`` folder (the ``harmonai/*`` ports on the Hugging Face hub).
3. The project's own: ``X.safetensors`` with the model card ``X.yaml`` beside it.

Whatever the layout, the result is a state dict under the original sample-generator names that
``bridge.engine.unet`` reproduces, plus a model card. Pickled files (``.ckpt``, ``.bin``) are read with
``torch.load(weights_only=True)``, which refuses any object that could run code instead of running it. Every
model file is opened as a regular file of at most MAX_MODEL_FILE_BYTES (bridge.files.open_regular): a FIFO or a
device named .ckpt is refused at once instead of blocking or filling memory.

Over 300 lines on purpose: the three layouts side by side, each mapped to the same names and refused in the same
words, so a change to the network's key names or to a refusal is made here once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import safetensors.torch
import torch

from bridge import constants, files
from bridge.engine.catalogue import release_for_file
from bridge.engine.modelcard import CARD_SUFFIX, WEIGHTS_SUFFIX, ModelCard, find_model, read_card, write_card
from bridge.engine.unet import TIMESTEP_FEATURES, DanceDiffusionUNet, UNetConfig
from bridge.errors import CheckpointError, ConfigError, described, one_line

log = logging.getLogger(__name__)

# The six released models share one architecture and their checkpoints carry no hyper-parameters (the training
# script never saves them), so nothing inside the file tells them apart: the file name does, as in diffusers'
# conversion script. Their sample rates and windows are in the catalogue (bridge.engine.catalogue).
RELEASED_ARCHITECTURE = UNetConfig()
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth")
MAX_MODEL_FILE_BYTES = 16 << 30  # the released .ckpt files, both networks and their Adam state, are a few GB
EMA_PREFIX = "diffusion_ema."


@dataclass
class LoadedModel:
    """Weights on the CPU under native names, with the card that says how to use them."""

    card: ModelCard
    state_dict: dict[str, torch.Tensor]
    source: Path
    rate_said: bool = True  # its files say its sample rate (False: a .ckpt, a config.json without one)

    @classmethod
    def from_network(cls, network: DanceDiffusionUNet, *, name: str, sample_rate: int, window: int,
                     provenance: str = "unknown", licence: str = "unknown", **extra) -> "LoadedModel":
        """Wraps a network made in this process (a training run, a test) so it saves and loads like any other."""
        card = ModelCard(name=name, sample_rate=sample_rate, window=window, architecture=network.config,
                         provenance=provenance, licence=licence, extra=extra)
        state = {key: value.detach().cpu().clone() for key, value in network.state_dict().items()}
        return cls(card=card, state_dict=state, source=Path(f"<{name} in memory>"))

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def sample_rate(self) -> int:
        return self.card.sample_rate

    @property
    def window(self) -> int:
        return self.card.window

    @property
    def architecture(self) -> UNetConfig:
        return self.card.architecture

    @property
    def num_parameters(self) -> int:
        return sum(tensor.numel() for tensor in self.state_dict.values())

    @cached_property
    def sha256(self) -> str:
        """Identifies the weights themselves (names, dtypes, shapes, values), whatever file they came from."""
        digest = hashlib.sha256()
        for key in sorted(self.state_dict):
            tensor = self.state_dict[key].detach().contiguous().cpu()
            digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
        return digest.hexdigest()

    def build(self) -> DanceDiffusionUNet:
        """A float32 network in eval mode with these weights, loaded strictly."""
        with torch.device("meta"):
            model = DanceDiffusionUNet(self.architecture)
        model = model.to_empty(device="cpu")  # skips random initialisation: every value is overwritten below
        model.load_state_dict(self.state_dict, strict=True)
        return model.eval()


def load_model(spec: str | os.PathLike | None = None, *, sample_rate: int | None = None,
               window: int | None = None) -> LoadedModel:
    """Loads a model by card name or by path in any of the three layouts (None: the bundled default).

    ``sample_rate`` and ``window`` override what the files say; a ``.ckpt`` that is not one of the six released
    models needs them (otherwise 48000 and 65536 are assumed).
    """
    path = find_model(constants.DEFAULT_MODEL if spec is None else spec)
    if path.is_dir():
        loaded = _load_diffusers(path)
    elif (path.parent / "config.json").is_file() and path.suffix in (".bin", WEIGHTS_SUFFIX) \
            and not path.with_suffix(CARD_SUFFIX).is_file():
        loaded = _load_diffusers(path.parent)
    elif path.suffix.lower() in PICKLE_SUFFIXES:
        loaded = _load_training_checkpoint(path, told_rate=sample_rate is not None and window is not None)
    elif path.suffix.lower() in (WEIGHTS_SUFFIX, CARD_SUFFIX, ".yml"):
        loaded = _load_own(path)
    else:
        raise CheckpointError(f"{path}: not a model file (expected a .ckpt, a .safetensors with its .yaml card, "
                              "or a diffusers model folder)")
    if sample_rate is not None and not loaded.rate_said and sample_rate != loaded.sample_rate \
            and "named like Harmonai's release" in loaded.card.provenance:
        log.info("%s: named like a release of %d Hz; taking the %d Hz given", path.name, loaded.sample_rate,
                 sample_rate)
    if sample_rate is not None and loaded.rate_said and sample_rate != loaded.sample_rate:
        # Its audio would be written at the rate given: 6 times too slow at 8000 for a 48 kHz model, pitched down.
        raise ConfigError(f"{path}: a {loaded.sample_rate} Hz model, as its files say; a sample rate is given only "
                          f"for a .ckpt that does not say its own (got {sample_rate})")
    changes = {key: value for key, value in (("sample_rate", sample_rate), ("window", window)) if value is not None}
    if changes:
        try:
            loaded.card = replace(loaded.card, **changes)
        except CheckpointError as error:  # the values given do not fit the model: theirs to change, not the file
            given = " and ".join(f"{key} {value}" for key, value in changes.items())
            raise ConfigError(f"{path}: the {given} given {'does' if len(changes) == 1 else 'do'} not fit this model "
                              f"({str(error).removeprefix('model card: ')})") from None
    log.debug("loaded %s from %s: %d parameters, %d Hz, window %d", loaded.name, loaded.source,
              loaded.num_parameters, loaded.sample_rate, loaded.window)
    return loaded


def save_model(loaded: LoadedModel, dst: str | os.PathLike, half: bool = False,
               name: str | None = None) -> tuple[Path, Path]:
    """Writes the own format: ``X.safetensors`` and the card ``X.yaml``; returns both paths.

    ``dst`` is ``X``, ``X.safetensors``, ``X.yaml`` or a folder. The card is named ``name``, else after the file
    ``X``, else (a folder) keeps the model's name, which then names the files. ``half`` stores fp16 weights.
    Existing files are never replaced; the card is written last, so a model appears in the registry only once it
    is complete.
    """
    dst = Path(dst).expanduser()
    if dst.is_dir():
        name = name or loaded.name
        weights_path = dst / f"{name}{WEIGHTS_SUFFIX}"
    else:
        weights_path = dst.with_suffix(WEIGHTS_SUFFIX) if dst.suffix.lower() in (WEIGHTS_SUFFIX, CARD_SUFFIX) \
            else dst.with_name(dst.name + WEIGHTS_SUFFIX)
        name = name or weights_path.stem
    card = replace(loaded.card, name=name, path=None)
    card_path = weights_path.with_suffix(CARD_SUFFIX)
    for path in (weights_path, card_path):
        files.check_new(path, CheckpointError)
    tensors = {key: tensor.detach().cpu().contiguous() for key, tensor in loaded.state_dict.items()}
    check_finite(tensors, loaded.source)  # never write a model that cannot render (a diverged run's export)
    if half:
        tensors = {key: tensor.half() if tensor.is_floating_point() else tensor for key, tensor in tensors.items()}
        overflowing = [key for key, tensor in tensors.items() if not torch.isfinite(tensor).all()]
        if overflowing:
            raise CheckpointError(f"{loaded.source}: weights too large for fp16 (first: {overflowing[0]}); "
                                  "convert without --half")
    files.create_new(weights_path, safetensors.torch.save(tensors, metadata={"format": "pt"}), CheckpointError)
    try:
        write_card(card, card_path)
    except BaseException:
        weights_path.unlink(missing_ok=True)
        raise
    return weights_path, card_path


# Layout 1: Harmonai training checkpoint (Lightning .ckpt, or the fine-tuning script's .pth) -----------------

def _load_training_checkpoint(path: Path, told_rate: bool = False) -> LoadedModel:
    checkpoint = _unpickle_weights(path)
    # Lightning (train_uncond.py) keeps the network under "state_dict"; finetune_dance_diffusion.py under "model".
    found = [checkpoint[key] for key in ("state_dict", "model") if isinstance(checkpoint, dict) and key in checkpoint]
    state = found[0] if found else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: no state_dict inside (not a Dance Diffusion training checkpoint)")
    ema = {key[len(EMA_PREFIX):]: value for key, value in state.items()
           if key.startswith(EMA_PREFIX) and not key.endswith("kernel")}  # kernels: fixed resampling taps
    if not ema:
        raise CheckpointError(f"{path}: no {EMA_PREFIX}* weights in its state_dict "
                              "(not a Dance Diffusion training checkpoint)")
    ema = {key: _tensor(value, key, path).clone() for key, value in ema.items()}  # owned, not a view of the file
    config = infer_architecture(ema, path)
    released = release_for_file(path.stem)
    if released and config == RELEASED_ARCHITECTURE:
        sample_rate, window = released.sample_rate, released.window
        # Named like a release, and its architecture: its rate and window are the release's. Not said to be the
        # release itself: a fine-tune of it is named so too (my-gwf-440k-ft.ckpt), and only `models get` checks
        # the published checksum (and then says "release").
        provenance = (f"{path.name} (a Dance Diffusion checkpoint named like Harmonai's release {released.name}: "
                      f"its {sample_rate} Hz and {window}-sample window), EMA weights")
    else:
        sample_rate, window = constants.DEFAULT_SAMPLE_RATE, max(constants.DEFAULT_WINDOW, config.shortest_length)
        provenance = f"{path.name} (Dance Diffusion training checkpoint), EMA weights"
        if not told_rate:
            log.info("%s is not one of the released models: assuming %d Hz and a %d-sample window unless given",
                     path.name, sample_rate, window)
    card = _card(path.stem, sample_rate, window, config, provenance)
    # Its rate is guessed from its name, not said by the file: a fine-tune named after its release
    # (maestro-uncond-150k-ft-22k.ckpt) may be at another rate, which --sample-rate then gives.
    return LoadedModel(card=card, state_dict=ema, source=path, rate_said=False)


def _unpickle_weights(path: Path) -> object:
    """``torch.load`` restricted to tensors and plain containers; anything else is refused, never run."""
    with _open_model_file(path) as file:
        try:
            # Zip checkpoints are memory-mapped: only the tensors kept are read from disk, not the optimizer state.
            return torch.load(files.name_of(file, path), map_location="cpu", weights_only=True,
                              mmap=zipfile.is_zipfile(file))
        except pickle.UnpicklingError as error:
            text = str(error)
            found_global = re.search(r"GLOBAL ([\w.]+)", text)
            if found_global:
                raise CheckpointError(f"{path}: refused: it refers to {found_global.group(1)}, which could run "
                                      "code; only tensors and plain containers are loaded") from None
            raise CheckpointError(f"{path}: not a PyTorch checkpoint ({_unpickling_reason(text)})") from None
        except (OSError, EOFError) as error:
            raise CheckpointError(f"{path}: cannot read: {one_line(error) or 'file is empty or truncated'}") \
                from None
        except Exception as error:  # torch raises assorted types for garbage bytes
            if CUT_ZIP in str(error):
                raise CheckpointError(f"{path}: {load_failure(error)}") from None
            raise CheckpointError(f"{path}: not a PyTorch checkpoint ({described(error)})") from None


CUT_ZIP = "central directory"  # in torch's error for a zip checkpoint whose end is missing


def load_failure(error: BaseException) -> str:
    """Why torch.load failed, in a few words and one line (a model file's, a training run's state.pt): a zip cut
    short said so (torch's own text runs on about it), else torch's reason without its advice to load with
    weights_only=False, which would run the code."""
    text = str(error)
    if CUT_ZIP in text:
        return "truncated or damaged: its zip archive ends without a central directory (a download or copy cut short?)"
    return _unpickling_reason(text) if text.strip() else "empty or cut short"


def _unpickling_reason(text: str) -> str:
    """torch's own reason without its advice to load with weights_only=False, which would run the code."""
    found = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    if found:
        return found.group(1).strip()[:200]
    lines = [line.strip() for line in text.splitlines() if line.strip()
             and not line.startswith(("Weights only load failed", "Check the documentation"))]
    return lines[0][:200] if lines else "not a pickle of tensors"


def _open_model_file(path: Path, limit: int = MAX_MODEL_FILE_BYTES):
    """The model file opened as a regular file of at most ``limit`` bytes: a FIFO, a device (/dev/zero) or a
    file larger than any model is refused before a byte is read."""
    try:
        return files.open_regular(path, limit)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read ({files.reason(error)})") from None


def _tensor(value: object, key: str, path: Path) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{path}: {key} is a {type(value).__name__}, not a tensor")
    return value


# Layout 2: diffusers UNet1DModel folder -------------------------------------------------------------------------

DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
# Settings that change the maths without changing any weight's shape: must be Dance Diffusion's.
DIFFUSERS_REQUIRED = {
    "time_embedding_type": "fourier",
    "use_timestep_embedding": False,
    "flip_sin_to_cos": True,
    "out_block_type": None,
    "mid_block_type": "UNetMidBlock1D",
    "extra_in_channels": TIMESTEP_FEATURES,
    "downsample_each_block": False,
}
DIFFUSERS_BLOCKS = {"DownBlock1DNoSkip", "DownBlock1D", "AttnDownBlock1D",
                    "UpBlock1DNoSkip", "UpBlock1D", "AttnUpBlock1D"}


def _load_diffusers(folder: Path) -> LoadedModel:
    # A hub download is the whole pipeline (model_index.json, scheduler/, unet/): the network is in unet/.
    if not (folder / "config.json").is_file() and (folder / "unet" / "config.json").is_file():
        folder = folder / "unet"
    name = folder.parent.name if folder.name == "unet" else folder.name
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{folder}: a folder without config.json (not a diffusers model folder)")
    try:
        config = json.loads(files.read_regular(config_path, files.YAML_BYTES).decode("utf-8"))
    except OSError as error:
        raise CheckpointError(f"{config_path}: cannot read ({files.reason(error)})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{config_path}: not valid JSON ({one_line(error)})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path}: expected a JSON object")
    _check_diffusers_config(config, config_path)
    state = _read_diffusers_weights(folder)
    native = diffusers_to_native(state, folder)
    architecture = infer_architecture(native, folder)
    sample_rate = config.get("sample_rate") or constants.DEFAULT_SAMPLE_RATE
    window = config.get("sample_size") or constants.DEFAULT_WINDOW
    try:
        card = _card(name, sample_rate, window, architecture, f"{name} (diffusers UNet1DModel)")
    except CheckpointError as error:  # said of the file the values came from, in its own words
        reason = str(error).removeprefix("model card: ").replace("window must", "sample_size (the window) must", 1)
        raise CheckpointError(f"{config_path}: {reason}") from None
    return LoadedModel(card=card, state_dict=native, source=folder, rate_said=bool(config.get("sample_rate")))


def _check_diffusers_config(config: dict, path: Path) -> None:
    if config.get("_class_name", "UNet1DModel") != "UNet1DModel":
        raise CheckpointError(f"{path}: a {config['_class_name']}, not a UNet1DModel")
    for key, expected in DIFFUSERS_REQUIRED.items():
        if key in config and config[key] != expected:
            raise CheckpointError(f"{path}: {key} is {config[key]!r}; Dance Diffusion's is {expected!r}")
    for key in ("down_block_types", "up_block_types"):
        listed = config.get(key, [])
        if not isinstance(listed, list) or not all(isinstance(block, str) for block in listed):
            raise CheckpointError(f"{path}: {key} must be a list of block names, got {files.shown(listed)}")
    blocks = list(config.get("down_block_types", [])) + list(config.get("up_block_types", []))
    unknown = [block for block in blocks if block not in DIFFUSERS_BLOCKS]
    if unknown:
        raise CheckpointError(f"{path}: block type {unknown[0]} is not part of Dance Diffusion's U-Net")


def _read_diffusers_weights(folder: Path) -> dict[str, torch.Tensor]:
    for name in DIFFUSERS_WEIGHTS:
        path = folder / name
        if not path.is_file():
            continue
        if path.suffix == WEIGHTS_SUFFIX:
            return read_safetensors(path)
        state = _unpickle_weights(path)
        if not isinstance(state, dict):
            raise CheckpointError(f"{path}: expected a dict of tensors")
        return {key: _tensor(value, key, path).clone() for key, value in state.items()}
    raise CheckpointError(f"{folder}: no {' or '.join(DIFFUSERS_WEIGHTS)} in the folder")


_RESNET_NAMES = {"conv_1": "main.0", "group_norm_1": "main.1", "conv_2": "main.3", "group_norm_2": "main.4",
                 "conv_skip": "skip"}
_DIFFUSERS_KEY = re.compile(r"^(?:down_blocks\.(\d+)|up_blocks\.(\d+)|mid_block)"
                            r"\.(resnets|attentions)\.(\d+)\.(\w+)\.(weight|bias)$")


def diffusers_to_native(state: dict[str, torch.Tensor], source: Path) -> dict[str, torch.Tensor]:
    """Renames a diffusers UNet1DModel state dict to the original names (the inverse of diffusers' conversion).

    diffusers numbers the down blocks outermost first, the up blocks innermost first, and puts the innermost level
    in ``mid_block``; the original nests each level at index 7 of its parent (index 3 for the outermost), with its
    layers at 1-6 on the way down and 8-13 on the way up. Attention's 1x1 convolutions are Linear layers there, and
    q, k and v are separate.
    """
    downs = {int(match.group(1)) for key in state if (match := re.match(r"down_blocks\.(\d+)\.", key))}
    if not downs or "time_proj.weight" not in state:
        raise CheckpointError(f"{source}: not a Dance Diffusion UNet1DModel (no down_blocks or time_proj weights)")
    n_down = max(downs) + 1
    native: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.endswith(".kernel"):
            continue  # fixed resampling taps
        if key == "time_proj.weight":
            frequencies = value.reshape(-1, 1)
            if frequencies.shape[0] * 2 != TIMESTEP_FEATURES:
                raise CheckpointError(f"{source}: time_proj.weight has {frequencies.shape[0]} frequencies; "
                                      f"Dance Diffusion uses {TIMESTEP_FEATURES // 2}")
            native["timestep_embed.weight"] = frequencies
            continue
        match = _DIFFUSERS_KEY.match(key)
        if not match:
            raise CheckpointError(f"{source}: unexpected weight {key} (not a Dance Diffusion UNet1DModel)")
        down, up, kind, index, layer, param = match.groups()
        index = int(index)
        if down is not None:
            level, side = int(down) + 1, "down"
        elif up is not None:
            level, side = n_down - int(up), "up"
        else:
            level, side = n_down + 1, "down" if index < 3 else "up"
            index %= 3
        prefix = _level_prefix(level) + _position(level, side, kind, index, key, source)
        if kind == "resnets":
            if layer not in _RESNET_NAMES:
                raise CheckpointError(f"{source}: unexpected weight {key}")
            native[f"{prefix}.{_RESNET_NAMES[layer]}.{param}"] = value
        elif layer == "group_norm":
            native[f"{prefix}.norm.{param}"] = value
        elif layer == "proj_attn":
            native[f"{prefix}.out_proj.{param}"] = value[..., None] if param == "weight" else value
        elif layer in ("query", "key", "value"):
            qkv.setdefault(f"{prefix}.qkv_proj.{param}", {})[layer] = value
        else:
            raise CheckpointError(f"{source}: unexpected weight {key}")
    for name, parts in qkv.items():
        missing = [part for part in ("query", "key", "value") if part not in parts]
        if missing:
            raise CheckpointError(f"{source}: attention {name} lacks its {missing[0]} weights")
        merged = torch.cat([parts["query"], parts["key"], parts["value"]])
        native[name] = merged[..., None] if name.endswith("weight") else merged
    return native


def _level_prefix(level: int) -> str:
    return "net." if level == 1 else "net.3.main." + "7.main." * (level - 2)


def _position(level: int, side: str, kind: str, index: int, key: str, source: Path) -> str:
    if level == 1:
        if kind != "resnets" or index > 2:
            raise CheckpointError(f"{source}: unexpected weight {key} in the outermost level")
        return str(index if side == "down" else 4 + index)
    first = 1 if side == "down" else 8
    return str(first + 2 * index + (1 if kind == "attentions" else 0))


# Layout 3: own format ---------------------------------------------------------------------------------------------

def _load_own(path: Path) -> LoadedModel:
    card_path = path if path.suffix.lower() in (CARD_SUFFIX, ".yml") else path.with_suffix(CARD_SUFFIX)
    if not card_path.is_file():
        raise CheckpointError(f"{path}: no model card {card_path.name} beside it "
                              "(a diffusers file? pass its folder instead)")
    card = read_card(card_path)
    weights_path = card.weights_path
    if not weights_path.is_file():
        raise CheckpointError(f"{card_path}: its weights {weights_path.name} are missing")
    state = read_safetensors(weights_path)
    check_shapes(state, card.architecture, weights_path)
    return LoadedModel(card=card, state_dict=state, source=weights_path)


def read_safetensors(path: Path, limit: int = MAX_MODEL_FILE_BYTES) -> dict[str, torch.Tensor]:
    """The tensors of a .safetensors file of at most ``limit`` bytes, on the CPU; CheckpointError, one line, for
    anything else (a pickle, a truncated file, a FIFO): safetensors never runs code."""
    with _open_model_file(path, limit) as file:
        try:
            return safetensors.torch.load_file(files.name_of(file, path), device="cpu")
        except Exception as error:  # safetensors raises its own error type for bad headers and truncation
            raise CheckpointError(f"{path}: not a readable safetensors file ({one_line(error)})") from None


# Architecture -----------------------------------------------------------------------------------------------------

def infer_architecture(state: dict[str, torch.Tensor], source: Path) -> UNetConfig:
    """Reads depth, channel counts and attention levels off native-named weights, then checks every shape."""
    first = state.get("net.0.main.0.weight")
    if first is None or first.ndim != 3:
        raise CheckpointError(f"{source}: no Dance Diffusion U-Net weights (net.0.main.0.weight is missing)")
    channels = [first.shape[0]]
    io_channels = first.shape[1] - TIMESTEP_FEATURES
    attention = []
    level = 2
    while (conv := state.get(_level_prefix(level) + "1.main.0.weight")) is not None:
        channels.append(conv.shape[0])
        if _level_prefix(level) + "2.qkv_proj.weight" in state:
            attention.append(level)
        level += 1
    # The original puts attention on the innermost n_attn_layers + 2 levels, or on none.
    n_attn_layers = len(attention) - 2 if attention else 0
    try:
        config = UNetConfig(channels=tuple(channels), n_attn_layers=n_attn_layers, io_channels=io_channels)
    except ValueError as error:
        raise CheckpointError(f"{source}: not a Dance Diffusion U-Net ({error})") from None
    if config.attention_levels != tuple(attention):
        raise CheckpointError(f"{source}: attention at levels {attention}; Dance Diffusion has it on the "
                              "innermost levels only, at least three of them")
    check_shapes(state, config, source)
    return config


def check_shapes(state: dict[str, torch.Tensor], config: UNetConfig, source: Path) -> None:
    """Fails with the first mismatched keys and both shapes, before any weight is copied."""
    with torch.device("meta"):
        expected = {key: tuple(value.shape) for key, value in DanceDiffusionUNet(config).state_dict().items()}
    wrong = [f"{key} is {tuple(state[key].shape)}, expected {shape}"
             for key, shape in expected.items() if key in state and tuple(state[key].shape) != shape]
    if wrong:
        raise CheckpointError(f"{source}: weights do not fit the architecture: {'; '.join(wrong[:3])}"
                              + (f" (and {len(wrong) - 3} more)" if len(wrong) > 3 else ""))
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else ""))
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:3])}" + (" ..." if len(unexpected) > 3 else ""))
        raise CheckpointError(f"{source}: weights do not fit the architecture: {'; '.join(parts)}")
    not_float = [key for key in expected if not state[key].is_floating_point()]
    if not_float:
        raise CheckpointError(f"{source}: {not_float[0]} holds {state[not_float[0]].dtype}, not floating point")
    check_finite(state, source)


def check_finite(state: dict[str, torch.Tensor], source: Path | str) -> None:
    """Fails on the first weight holding NaN or infinity: what a training run that diverged saves. Such a model
    loads and then renders nothing but NaN, which was reported as a render gone wrong, far from its cause."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{source}: {key} holds NaN or infinite values (saved by a training run that "
                                  "diverged?); not a usable model")


def _card(stem: str, sample_rate: int, window: int, config: UNetConfig, provenance: str) -> ModelCard:
    name = re.sub(r"[^A-Za-z0-9._+-]+", "-", stem).strip("-._+") or "model"
    return ModelCard(name=name, sample_rate=sample_rate, window=window, architecture=config, provenance=provenance)
