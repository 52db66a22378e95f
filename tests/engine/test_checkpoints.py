"""Loading the three layouts: parity with diffusers, the Lightning EMA copy, the own format, and refusing bad files."""

from __future__ import annotations

import json
import pickle

import pytest
import safetensors.torch
import torch

from bridge.engine.checkpoints import LoadedModel, load_model, read_safetensors, save_model
from bridge.engine.unet import DanceDiffusionUNet, UNetConfig
from bridge.errors import CheckpointError, ConfigError
from tests.support.model_files import (FULL_DIFFUSERS, SMALL_DIFFUSERS, Malicious, dance_diffusion_unet1d,
                                       random_native_state, write_diffusers_folder, write_lightning_checkpoint)

PARITY_TOLERANCE = 1e-4


def forward_both(reference, model, length, batch=2, seed=1):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 2, length, generator=generator)
    t = torch.rand(batch, generator=generator)
    with torch.no_grad():
        expected = reference(x, t).sample
        got = model(x, t)
    return expected, got


def assert_one_line_error(excinfo, *fragments):
    message = str(excinfo.value)
    assert "\n" not in message and message
    for fragment in fragments:
        assert fragment in message, message


@pytest.fixture(scope="module")
def small_reference():
    return dance_diffusion_unet1d(*SMALL_DIFFUSERS, sample_rate=44100, sample_size=32768)


@pytest.fixture(scope="module")
def small_folder(small_reference, tmp_path_factory):
    return write_diffusers_folder(small_reference, tmp_path_factory.mktemp("diffusers") / "dd-small")


def test_native_names_are_the_original_sample_generator_names():
    # Names as in Harmonai's DiffusionAttnUnet1D (and diffusers' conversion script): levels nest at index 3 of
    # the outer Sequential and index 7 of each SkipBlock; attention follows each ResConvBlock.
    with torch.device("meta"):
        keys = set(DanceDiffusionUNet(UNetConfig()).state_dict())
    innermost = "net.3.main." + "7.main." * 12
    for key in ("timestep_embed.weight", "net.0.main.0.weight", "net.0.skip.weight", "net.6.main.3.bias",
                "net.3.main.1.main.4.weight", "net.3.main.12.main.0.weight", "net.3.main.7.main.1.skip.weight",
                innermost + "2.qkv_proj.weight", innermost + "13.out_proj.bias", innermost + "12.main.3.weight"):
        assert key in keys, key
    assert not any(key.endswith("kernel") for key in keys)


def test_small_diffusers_folder_matches_diffusers(small_reference, small_folder):
    loaded = load_model(small_folder)
    assert loaded.architecture == UNetConfig(channels=(32, 64, 64, 64, 64), n_attn_layers=1)
    assert (loaded.sample_rate, loaded.window) == (44100, 32768)  # from config.json
    model = loaded.build()
    assert not model.training
    expected, got = forward_both(small_reference, model, length=1024)
    assert expected.abs().mean() > 0.1  # a live network, not zeros
    difference = (expected - got).abs().max().item()
    print(f"small-model parity with diffusers: max abs diff {difference:.2e}")
    assert difference <= PARITY_TOLERANCE


def test_hub_config_without_time_embedding_dim_takes_the_size_from_the_weights(small_reference, small_folder):
    config = json.loads((small_folder / "config.json").read_text())
    assert "time_embedding_dim" not in config  # newer diffusers would build a 256-wide embedding from this
    loaded = load_model(small_folder)
    assert loaded.state_dict["timestep_embed.weight"].shape == (8, 1)
    assert torch.equal(loaded.state_dict["timestep_embed.weight"][:, 0], small_reference.time_proj.weight)


def test_hub_pipeline_download_loads_from_its_unet_folder(small_reference, small_folder, tmp_path):
    # harmonai/* on the hub: model_index.json, scheduler/ and the network in unet/ (.bin weights, older diffusers).
    root = tmp_path / "maestro-150k"
    write_diffusers_folder(small_reference, root / "unet", safetensors=False)
    (root / "model_index.json").write_text(json.dumps(
        {"_class_name": "DanceDiffusionPipeline", "scheduler": ["diffusers", "IPNDMScheduler"],
         "unet": ["diffusers", "UNet1DModel"]}))
    (root / "scheduler").mkdir()
    (root / "scheduler" / "scheduler_config.json").write_text('{"_class_name": "IPNDMScheduler"}')
    for spec in (root, root / "unet"):
        loaded = load_model(spec)
        assert loaded.name == "maestro-150k"
        assert loaded.sha256 == load_model(small_folder).sha256


def test_diffusers_bin_weights_load_the_same(small_reference, small_folder, tmp_path):
    folder = write_diffusers_folder(small_reference, tmp_path / "dd-small-bin", safetensors=False)
    assert (folder / "diffusion_pytorch_model.bin").is_file()
    from_bin, from_safetensors = load_model(folder), load_model(small_folder)
    assert from_bin.sha256 == from_safetensors.sha256


@pytest.mark.parametrize("key, value", [("flip_sin_to_cos", False), ("use_timestep_embedding", True),
                                        ("downsample_each_block", True), ("_class_name", "UNet2DModel")])
def test_diffusers_settings_that_change_the_maths_are_refused(small_folder, tmp_path, key, value):
    folder = tmp_path / "odd"
    folder.mkdir()
    config = json.loads((small_folder / "config.json").read_text())
    config[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "diffusion_pytorch_model.safetensors").symlink_to(small_folder / "diffusion_pytorch_model.safetensors")
    with pytest.raises(CheckpointError) as excinfo:
        load_model(folder)
    assert_one_line_error(excinfo, "odd", "config.json")


def test_lightning_checkpoint_loads_the_ema_copy(small_reference, small_folder, tmp_path):
    ema = load_model(small_folder).state_dict
    online = {key: value + 0.5 * torch.randn_like(value) for key, value in ema.items()}
    path = write_lightning_checkpoint(tmp_path / "my-finetune.ckpt", ema, online=online)
    written = torch.load(path, weights_only=True)["state_dict"]
    assert any(key.endswith(".kernel") for key in written) and any(key.startswith("diffusion.") for key in written)

    loaded = load_model(path)
    assert loaded.state_dict.keys() == ema.keys()  # kernels, optimizer state and the online copy dropped
    for key, value in ema.items():
        assert torch.equal(loaded.state_dict[key], value), key
    assert (loaded.name, loaded.sample_rate, loaded.window) == ("my-finetune", 48000, 65536)
    expected, got = forward_both(small_reference, loaded.build(), length=1024)
    assert (expected - got).abs().max().item() <= PARITY_TOLERANCE


def test_finetune_script_checkpoint_loads_the_ema_copy(tmp_path, tiny_config):
    # finetune_dance_diffusion.py saves {"model": network state, "opt", "sched", "ema_sched", "epoch", "step"}.
    ema, online = random_native_state(tiny_config, seed=1), random_native_state(tiny_config, seed=2)
    model = {**{f"diffusion.{k}": v for k, v in online.items()}, **{f"diffusion_ema.{k}": v for k, v in ema.items()}}
    torch.save({"model": model, "opt": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0]}]},
                "sched": {"inv_gamma": 20000.0, "power": 1.0, "warmup": 0.99, "last_epoch": 500},
                "ema_sched": {"power": 2 / 3, "max_value": 0.9999, "last_epoch": 500}, "epoch": 3, "step": 500},
               tmp_path / "my-kit_00000500.pth")
    loaded = load_model(tmp_path / "my-kit_00000500.pth")
    assert all(torch.equal(loaded.state_dict[key], value) for key, value in ema.items())


def test_lightning_checkpoint_takes_sample_rate_and_window_when_given(tmp_path, tiny_config):
    path = write_lightning_checkpoint(tmp_path / "custom.ckpt", random_native_state(tiny_config))
    loaded = load_model(path, sample_rate=22050, window=32768)
    # Attention on all inner levels: n_attn_layers 1 and tiny_config's 2 mean the same network.
    assert (loaded.architecture.channels, loaded.architecture.attention_levels) == \
        (tiny_config.channels, tiny_config.attention_levels)
    assert (loaded.sample_rate, loaded.window) == (22050, 32768)
    with pytest.raises(ConfigError) as excinfo:  # the value given is wrong, not the file
        load_model(path, window=1001)
    assert_one_line_error(excinfo, "custom.ckpt: the window 1001 given does not fit", "multiple of 8 samples")


def test_a_sample_rate_given_for_a_model_that_says_its_own_is_refused(tmp_path, tiny_config):
    """Review s42 F4: --sample-rate 8000 on the bundled 48 kHz model wrote its sounds as 8 kHz files, six times too
    slow. A rate is taken only where the files say none (a plain .ckpt, a config.json without one)."""
    with pytest.raises(ConfigError) as excinfo:
        load_model(None, sample_rate=8000)
    assert_one_line_error(excinfo, "a 48000 Hz model, as its files say; a sample rate is given only for a .ckpt "
                                   "that does not say its own (got 8000)")
    assert load_model(None, sample_rate=48000).sample_rate == 48000  # the same: nothing changes
    # A .ckpt named like a release is guessed at the release's rate, not told it (review s42 diff M3): a fine-tune
    # named after its release may be at another rate, which --sample-rate gives.
    named = write_lightning_checkpoint(tmp_path / "jmann-small-190k-ft-44k.ckpt", random_native_state(UNetConfig()))
    assert load_model(named).sample_rate == 48000 and load_model(named, sample_rate=44100).sample_rate == 44100


@pytest.mark.parametrize("architecture", [UNetConfig(channels=(16, 32, 32), n_attn_layers=0),
                                          UNetConfig(channels=(32, 32, 64, 64, 64), n_attn_layers=2)])
def test_architecture_is_read_from_the_weights(tmp_path, architecture):
    path = write_lightning_checkpoint(tmp_path / "any.ckpt", random_native_state(architecture))
    assert load_model(path).architecture == architecture


def test_full_size_diffusers_parity_and_released_checkpoint(tmp_path):
    """The 221M-parameter model: hub-style diffusers folder and a released .ckpt name, one forward each."""
    reference = dance_diffusion_unet1d(*FULL_DIFFUSERS, sample_rate=48000, sample_size=131072)
    folder = write_diffusers_folder(reference, tmp_path / "jmann-large-580k")
    loaded = load_model(folder)
    assert loaded.architecture == UNetConfig()
    assert 221e6 < loaded.num_parameters < 222e6
    model = loaded.build()
    # 3 x 8192 is the shortest input the full model takes: reflect padding needs 3 samples at the innermost level.
    expected, got = forward_both(reference, model, length=24576, batch=1)
    difference = (expected - got).abs().max().item()
    print(f"full-size parity with diffusers: max abs diff {difference:.2e}")
    assert difference <= PARITY_TOLERANCE
    del reference, model

    # Released checkpoints carry no hyper-parameters: the file name says which one it is.
    ckpt = load_model(write_lightning_checkpoint(tmp_path / "jmann-large-580k.ckpt", loaded.state_dict))
    assert (ckpt.sample_rate, ckpt.window, ckpt.name) == (48000, 131072, "jmann-large-580k")
    assert "named like Harmonai's release jmann-large-580k" in ckpt.card.provenance  # named like it, not said to be
    assert ckpt.sha256 == loaded.sha256


def test_own_format_round_trip_by_path_and_name(small_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder = tmp_path / "data" / "dd-bridge" / "models"
    folder.mkdir(parents=True)
    original = load_model(small_folder)
    weights, card = save_model(original, folder / "kick-model")
    assert (weights.name, card.name) == ("kick-model.safetensors", "kick-model.yaml")

    for spec in (weights, card, "kick-model"):
        again = load_model(spec)
        assert again.name == "kick-model"
        assert again.sha256 == original.sha256
        assert (again.sample_rate, again.window, again.architecture) == (44100, 32768, original.architecture)
    assert load_model("kick-model").card.provenance == original.card.provenance


def test_half_precision_save(small_reference, small_folder, tmp_path):
    original = load_model(small_folder)
    weights, _ = save_model(original, tmp_path / "half.safetensors", half=True)
    half = load_model(weights)
    assert all(value.dtype == torch.float16 for value in half.state_dict.values())
    assert weights.stat().st_size < 0.6 * sum(v.numel() * 4 for v in original.state_dict.values())
    expected, got = forward_both(small_reference, half.build(), length=1024)
    assert (expected - got).abs().max().item() < 2e-2  # fp16 rounding of the weights only


def test_save_never_replaces_files(small_folder, tmp_path):
    loaded = load_model(small_folder)
    (tmp_path / "taken.yaml").write_text("mine")
    with pytest.raises(CheckpointError) as excinfo:
        save_model(loaded, tmp_path / "taken")
    assert_one_line_error(excinfo, "taken.yaml", "already exists")
    assert (tmp_path / "taken.yaml").read_text() == "mine"
    assert not (tmp_path / "taken.safetensors").exists()
    save_model(loaded, tmp_path)  # a folder: named after the model
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dd-small.safetensors", "dd-small.yaml", "taken.yaml"]


def test_from_network_saves_and_loads(tmp_path, tiny_config):
    network = DanceDiffusionUNet(tiny_config)
    loaded = LoadedModel.from_network(network, name="trained", sample_rate=48000, window=8192,
                                      training={"steps": 10})
    save_model(loaded, tmp_path / "trained")
    again = load_model(tmp_path / "trained.yaml")
    assert again.card.extra == {"training": {"steps": 10}}
    x, t = torch.randn(1, 2, 64), torch.tensor([0.5])
    with torch.no_grad():
        assert torch.equal(again.build()(x, t), network.eval()(x, t))


# Bad files: each one clear line ------------------------------------------------------------------------------------

def test_wrong_shape_checkpoint_names_the_keys_and_shapes(tmp_path, tiny_config):
    state = random_native_state(tiny_config)
    state["net.3.main.7.main.1.main.3.weight"] = torch.randn(64, 64, 3)
    with pytest.raises(CheckpointError) as excinfo:
        load_model(write_lightning_checkpoint(tmp_path / "wrong.ckpt", state))
    assert_one_line_error(excinfo, "wrong.ckpt", "net.3.main.7.main.1.main.3.weight", "(64, 64, 3)", "(64, 64, 5)")


def test_card_that_does_not_fit_its_weights(small_folder, tmp_path):
    weights, card = save_model(load_model(small_folder), tmp_path / "m")
    card.write_text(card.read_text().replace("- 64\n  n_attn_layers", "- 128\n  n_attn_layers"))
    with pytest.raises(CheckpointError) as excinfo:
        load_model(card)
    assert_one_line_error(excinfo, "m.safetensors", "expected (128,")


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_pickle_that_would_run_code_is_refused_and_does_not_run(tmp_path, tiny_config, writer):
    marker = tmp_path / "pwned"
    payload = {"state_dict": {f"diffusion_ema.{k}": v for k, v in random_native_state(tiny_config).items()},
               "hook": Malicious(marker)}
    path = tmp_path / "gwf-440k.ckpt"
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(CheckpointError) as excinfo:
        load_model(path)
    assert_one_line_error(excinfo, "gwf-440k.ckpt", "refused")
    if writer == "torch.save":
        assert "open" in str(excinfo.value)  # names what it would have called
    assert not marker.exists()


def test_malicious_diffusers_bin_is_refused(small_folder, tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text((small_folder / "config.json").read_text())
    marker = tmp_path / "pwned"
    torch.save({"time_proj.weight": torch.randn(8), "x": Malicious(marker)}, folder / "diffusion_pytorch_model.bin")
    with pytest.raises(CheckpointError) as excinfo:
        load_model(folder)
    assert_one_line_error(excinfo, "refused")
    assert not marker.exists()


def test_bad_files_each_give_one_line(tmp_path, small_folder):
    (tmp_path / "empty.ckpt").write_bytes(b"")
    (tmp_path / "garbage.ckpt").write_bytes(b"definitely not a checkpoint" * 100)
    torch.save([1, 2, 3], tmp_path / "list.ckpt")
    torch.save({"state_dict": {"model.weight": torch.zeros(3)}}, tmp_path / "no-ema.ckpt")
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    weights, _ = save_model(load_model(small_folder), tmp_path / "cut")
    weights.write_bytes(weights.read_bytes()[:5000])  # truncated download
    (tmp_path / "lonely.safetensors").write_bytes(b"\x00" * 64)
    broken_config = tmp_path / "broken-config"
    broken_config.mkdir()
    (broken_config / "config.json").write_text("{not json")
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((small_folder / "config.json").read_text())

    cases = {
        "missing.ckpt": "no such file",
        "empty.ckpt": "empty",
        "garbage.ckpt": "not a PyTorch checkpoint",
        "list.ckpt": "no state_dict",
        "no-ema.ckpt": "diffusion_ema",
        "folder": "without config.json",
        "notes.txt": "not a model file",
        "cut.yaml": "not a readable safetensors file",
        "lonely.safetensors": "no model card",
        "broken-config": "not valid JSON",
        "no-weights": "diffusion_pytorch_model",
    }
    for name, fragment in cases.items():
        with pytest.raises(CheckpointError) as excinfo:
            load_model(tmp_path / name)
        assert_one_line_error(excinfo, name.split(".")[0], fragment)


def test_weights_holding_nan_are_refused_in_every_layout_and_never_saved(tmp_path, tiny_config, small_folder):
    """A training run that diverged saves NaN weights (s41 review #3): they loaded, and every render then failed as
    "the render went wrong", far from the cause; `convert --half` called them too large for fp16."""
    state = random_native_state(tiny_config)
    state["net.0.main.0.bias"][3] = float("nan")
    lightning = write_lightning_checkpoint(tmp_path / "diverged.ckpt", state)
    own = tmp_path / "own"
    own.mkdir()
    weights, card = save_model(load_model(small_folder), own / "diverged")
    tensors = read_safetensors(weights)
    tensors["net.0.main.0.weight"][0, 0, 0] = float("inf")
    weights.unlink()
    weights.write_bytes(safetensors.torch.save(tensors))
    diffusers = tmp_path / "diverged-diffusers"
    diffusers.mkdir()
    (diffusers / "config.json").write_text((small_folder / "config.json").read_text())
    native = read_safetensors(small_folder / "diffusion_pytorch_model.safetensors")
    native[next(iter(native))] = torch.full_like(native[next(iter(native))], float("nan"))
    (diffusers / "diffusion_pytorch_model.safetensors").write_bytes(safetensors.torch.save(native))
    for path, key in ((lightning, "net.0.main.0.bias"), (card, "net.0.main.0.weight"), (diffusers, "")):
        with pytest.raises(CheckpointError) as excinfo:
            load_model(path)
        assert_one_line_error(excinfo, path.stem, key, "NaN or infinite", "diverged")
    good = LoadedModel.from_network(DanceDiffusionUNet(tiny_config), name="x", sample_rate=48000, window=8192)
    good.state_dict["net.0.main.0.bias"][0] = float("nan")  # an export of a diverged run: never written
    for half in (False, True):
        with pytest.raises(CheckpointError) as excinfo:
            save_model(good, tmp_path / f"export-{half}", half=half)
        assert_one_line_error(excinfo, "NaN or infinite")
        assert not list(tmp_path.glob("export-*"))


def test_a_cut_zip_checkpoint_and_bad_diffusers_and_card_fields_each_give_one_line(tmp_path, small_folder,
                                                                                  tiny_config):
    """s41 review #12, #13, #18: a zip .ckpt cut short read "... your checkpoint file is)" cut mid-sentence; a
    diffusers config.json with a block list that is no list crashed (TypeError), and one with a bad sample_rate was
    blamed on a "model card" the user does not have; a card whose training section is no mapping crashed eval."""
    path = write_lightning_checkpoint(tmp_path / "cut.ckpt", random_native_state(tiny_config))
    path.write_bytes(path.read_bytes()[:-2000])
    with pytest.raises(CheckpointError) as excinfo:
        load_model(path)
    assert_one_line_error(excinfo, "cut.ckpt", "truncated or damaged", "cut short")
    assert str(excinfo.value).endswith("?)")
    for key, value, fragment in (("down_block_types", 5, "must be a list of block names"),
                                 ("sample_rate", "abc", "sample_rate must be an integer"),
                                 ("sample_size", 1000, "sample_size (the window) must be a multiple")):
        folder = tmp_path / f"odd-{key}"
        folder.mkdir()
        config = json.loads((small_folder / "config.json").read_text())
        config[key] = value
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "diffusion_pytorch_model.safetensors").symlink_to(
            small_folder / "diffusion_pytorch_model.safetensors")
        with pytest.raises(CheckpointError) as excinfo:
            load_model(folder)
        assert_one_line_error(excinfo, f"odd-{key}/config.json: ", fragment)
    weights, card = save_model(load_model(small_folder), tmp_path / "carded")
    text = card.read_text()
    for training, fragment in (("training: abc\n", "training must be a mapping"),
                               ("training:\n  held_out_files: 5\n", "training.held_out_files must be a list"),
                               ("training:\n  data: [1, 2]\n", "training.data must be a list of paths"),
                               ("training:\n  base_training: x\n", "training.base_training must be a list of map"),
                               ("training:\n  base_training: [{data: a}]\n",
                                "training.base_training[0].data must be a list of paths")):
        card.write_text(text + training)
        with pytest.raises(CheckpointError) as excinfo:
            load_model(card)
        assert_one_line_error(excinfo, "carded.yaml", fragment)


def test_unknown_name_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    with pytest.raises(CheckpointError) as excinfo:
        load_model("no-such-model")
    assert_one_line_error(excinfo, "no-such-model", str(tmp_path), "dd-bridge models")
