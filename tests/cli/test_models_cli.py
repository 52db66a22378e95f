"""`dd-bridge convert` and `dd-bridge models` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys

import torch
import yaml

from bridge import constants
from bridge.cli import main
from bridge.engine.checkpoints import load_model
from tests.support.model_files import (SMALL_DIFFUSERS, Malicious, dance_diffusion_unet1d, random_native_state,
                                       write_diffusers_folder, write_lightning_checkpoint)


def run_cli(capsys, *argv):
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_convert_checkpoint_with_its_sample_rate_and_window(tmp_path, capsys, tiny_config):
    ckpt = write_lightning_checkpoint(tmp_path / "my-training-run.ckpt", random_native_state(tiny_config))
    code, out, err = run_cli(capsys, "convert", ckpt, tmp_path / "my-kit", "--sample-rate", 44100,
                             "--window", 32768)
    assert code == 0, err
    assert out.splitlines() == [str(tmp_path / "my-kit.safetensors"), str(tmp_path / "my-kit.yaml")]
    card = yaml.safe_load((tmp_path / "my-kit.yaml").read_text())
    assert (card["name"], card["sample_rate"], card["window"]) == ("my-kit", 44100, 32768)
    assert "my-training-run.ckpt" in card["provenance"]
    assert load_model(tmp_path / "my-kit.safetensors").sha256 == load_model(ckpt).sha256


def test_convert_diffusers_folder_half_into_a_folder_with_a_name(tmp_path, capsys):
    folder = write_diffusers_folder(dance_diffusion_unet1d(*SMALL_DIFFUSERS), tmp_path / "hub-download")
    out_dir = tmp_path / "models"
    out_dir.mkdir()
    code, out, err = run_cli(capsys, "convert", folder, out_dir, "--half", "--name", "kit-half")
    assert code == 0, err
    weights = out_dir / "kit-half.safetensors"
    assert out.splitlines() == [str(weights), str(out_dir / "kit-half.yaml")]
    half = load_model(weights)
    assert half.name == "kit-half"
    assert {value.dtype for value in half.state_dict.values()} == {torch.float16}
    full = load_model(folder)
    for key, value in full.state_dict.items():
        assert torch.equal(half.state_dict[key], value.half()), key


def test_models_lists_what_convert_put_in_the_user_folder(tmp_path, tiny_config):
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"), PYTHONPATH=str(constants.REPO_DIR))
    folder = tmp_path / "data" / "dd-bridge" / "models"
    folder.mkdir(parents=True)
    ckpt = write_lightning_checkpoint(tmp_path / "snare-finetune.ckpt", random_native_state(tiny_config))

    def dd_bridge(*argv):
        return subprocess.run([sys.executable, "-m", "bridge", *map(str, argv)], env=env, capture_output=True,
                              text=True, timeout=300, cwd=tmp_path)

    converted = dd_bridge("convert", ckpt, folder / "snare", "--window", 16384)
    assert converted.returncode == 0, converted.stderr
    (folder / "orphan.yaml").write_text((folder / "snare.yaml").read_text().replace("name: snare", "name: orphan"))
    listed = dd_bridge("models")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0] == ["NAME", "SAMPLE", "RATE", "WINDOW", "PARAMETERS", "PATH"]
    parameters = sum(value.numel() for value in random_native_state(tiny_config).values())
    assert ["snare", "48000", "16384", f"{parameters / 1e6:.1f}M", str(folder / "snare.safetensors")] in rows
    assert ["orphan", "48000", "16384", f"{parameters / 1e6:.1f}M", str(folder / "orphan.safetensors"),
            "(weights", "missing)"] in rows


def test_convert_refuses_a_pickle_that_runs_code(tmp_path, capsys):
    marker = tmp_path / "pwned"
    torch.save({"state_dict": {}, "payload": Malicious(marker)}, tmp_path / "gwf-440k.ckpt")
    code, out, err = run_cli(capsys, "convert", tmp_path / "gwf-440k.ckpt", tmp_path / "out")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "refused" in err and "dd-bridge convert: error:" in err
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()


def test_convert_never_overwrites(tmp_path, capsys, tiny_config):
    ckpt = write_lightning_checkpoint(tmp_path / "a.ckpt", random_native_state(tiny_config))
    (tmp_path / "kit.safetensors").write_bytes(b"someone's weights")
    code, out, err = run_cli(capsys, "convert", ckpt, tmp_path / "kit.safetensors")
    assert code == 1 and out == "" and "already exists" in err
    assert (tmp_path / "kit.safetensors").read_bytes() == b"someone's weights"
    assert not (tmp_path / "kit.yaml").exists()
