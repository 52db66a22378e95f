"""The service's YAML config: documented defaults, every bad value one clear error, flags over the file."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest
import yaml

from bridge.daemon.config import DEFAULT_YAML, Config, config_path, load_config, parse_config
from bridge.daemon.settings import Settings
from bridge.errors import ConfigError


def test_the_documented_file_is_the_defaults(platformdirs_isolated):
    assert parse_config(yaml.safe_load(DEFAULT_YAML)) == Config()
    assert load_config() == Config()  # no file yet: all defaults
    assert Config().folder == Path(platformdirs.user_music_dir()) / "DD Bridge"
    assert config_path() == Path(platformdirs.user_config_dir("dd-bridge")) / "config.yaml"


def test_a_file_in_the_config_folder_is_read(platformdirs_isolated, tmp_path):
    config_path().parent.mkdir(parents=True)
    config_path().write_text(
        "model: ./my.ckpt\nfolder: ~/beats\nallowed_folders: [/srv/projects]\n"
        "osc: {port: 9100.0, reply_port: null}\nmidi: {port: none, notes: {48: generate}, cc: {74: noise}}\n"
        "render: {noise: 0.2, steps: 20, sampler: dpmpp-2m, seed: 5, prefetch: 8}\nlimits: {queue: 4}\n")
    config = load_config()
    assert config.osc_port == 9100 and config.reply_port is None and config.midi_port is None
    assert config.midi_notes == ((48, "generate"),) and config.midi_cc == ((74, "noise"),)
    assert config.render == Settings(noise=0.2, steps=20, sampler="dpmpp-2m", seed=5, prefetch=8)
    assert config.folder == Path("~/beats").expanduser() and config.max_queue == 4
    assert Path("/srv/projects") in config.writable_folders and config.folder in config.writable_folders


def test_flags_override_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: a\ndevice: cpu\nosc: {port: 9100}\n")
    config = load_config(path).with_overrides(model="b", osc_port=0, folder=str(tmp_path / "out"),
                                              midi_port="none", device=None)
    assert (config.model, config.device, config.osc_port, config.midi_port) == ("b", "cpu", 0, None)
    assert config.folder == tmp_path / "out" and config.source == path


@pytest.mark.parametrize("text, message", [
    ("colour: red\n", "unknown key 'colour' in the config; known: model, device"),
    ("osc: {prot: 1}\n", "unknown key 'osc.prot'"),
    ("osc: {port: 70000}\n", "osc.port must be in 0..65535, not 70000"),
    ("osc: {port: nine}\n", "osc.port must be a number, not 'nine'"),
    ("osc: 5\n", "section 'osc' must be a mapping"),
    ("device: tpu\n", "device must be one of auto, cuda, mps, cpu"),
    ("precision: fp8\n", "precision must be one of auto, fp32, fp16, bf16"),
    ("render: {noise: 3}\n", "noise must be in 0..1, not 3"),
    ("render: {steps: 2.5}\n", "steps must be a whole number in 1..1000"),
    ("render: {format: mp3}\n", "format must be one of pcm16, pcm24, float"),
    ("midi: {notes: {200: vary}}\n", "midi.notes number must be in 0..127"),
    ("midi: {notes: {36: explode}}\n", "midi.notes.36 must be one of vary, generate"),
    ("allowed_folders: /x\n", "allowed_folders must be a list"),
    ("limits: {queue: 0}\n", "limits.queue must be in 1..10000"),
    ("- just\n- a list\n", "the config must be a mapping"),
    ("render: {noise: [1\n", "is not valid YAML (line"),
])
def test_bad_values_are_one_clear_error(tmp_path, text, message):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_a_named_config_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="--osc-port must be in 0..65535"):
        Config().with_overrides(osc_port=123456)


def test_the_readme_documents_every_key():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert DEFAULT_YAML in readme
