"""The service's YAML config: documented defaults, every bad value one clear error, flags over the file."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

import platformdirs
import pytest
import yaml

from bridge.cli import build_parser
from bridge.daemon.config import DEFAULT_YAML, FLAGS, KEYS, Config, config_path, load_config, parse_config
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
        "osc: {port: 9100.0, reply_port: null}\n"
        "midi: {port: none, channel: 10, notes: {48: generate}, cc: {74: noise}}\n"
        "render: {noise: 0.2, steps: 20, sampler: dpmpp-2m, seed: 5, prefetch: 8}\nlimits: {queue: 4}\n")
    config = load_config()
    assert config.osc_port == 9100 and config.reply_port is None and config.midi_port is None
    assert config.midi_notes == ((48, "generate"),) and config.midi_cc == ((74, "noise"),)
    assert config.midi_channel == 10
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
    ("midi: {channel: 17}\n", "midi.channel must be a channel 1..16 or all, not 17"),  # as a producer counts them
    ("midi: {channel: 0}\n", "midi.channel must be a channel 1..16 or all, not 0"),
    ("midi: {channel: drums}\n", "midi.channel must be a channel 1..16 or all, not 'drums'"),
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


def test_a_midi_channel_is_1_to_16_or_all():
    """midi.channel: 1..16 as DAWs count them; all (or omni, null) keeps every channel's notes, the default."""
    assert Config().midi_channel is None
    for written in ("all", " Omni", None):
        assert parse_config({"midi": {"channel": written}}).midi_channel is None
    assert parse_config({"midi": {"channel": "16"}}).midi_channel == 16
    with pytest.raises(ConfigError, match=r"^--midi-channel must be a channel 1..16 or all, not 'ten'$"):
        Config().with_overrides(midi_channel="ten")


def test_a_named_config_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="--osc-port must be in 0..65535"):
        Config().with_overrides(osc_port=123456)


def test_a_reply_port_that_is_the_services_own_port_is_refused(tmp_path):
    """Replies sent to the service's own port come back as requests: it answered itself forever (review s39)."""
    path = tmp_path / "config.yaml"
    path.write_text("osc: {port: 19124, reply_port: 19124}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (f"config {path}: osc.reply_port 19124 is osc.port, where the service listens: give "
                                 "it the port your DAW listens on, or null")
    with pytest.raises(ConfigError, match="osc.reply_port 9001 is osc.port"):
        Config().with_overrides(osc_port=9001)


def test_the_readme_documents_every_key():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert DEFAULT_YAML in readme


# A value unlike the default for every key of the table, as the file writes it and as Config holds it. A key added
# to the table without an example here fails the test below, so the parser is tried on every key.
EXAMPLES = {
    "model": ("my.ckpt", "my.ckpt"),
    "device": (" CPU", "cpu"),
    "precision": ("bf16", "bf16"),
    "backend": ("onnx", "onnx"),
    "folder": ("/srv/samples", Path("/srv/samples")),
    "allowed_folders": (["/srv/a", "/srv/b"], (Path("/srv/a"), Path("/srv/b"))),
    "osc.host": ("0.0.0.0", "0.0.0.0"),
    "osc.port": (9100.0, 9100),
    "osc.reply_port": (None, None),
    "osc.token": ("a-secret-of-sixteen", "a-secret-of-sixteen"),
    "midi.port": ("none", None),
    "midi.channel": (10, 10),
    "midi.notes": ({48: "generate"}, ((48, "generate"),)),
    "midi.cc": ({74: "noise"}, ((74, "noise"),)),
    "render.noise": (0.2, 0.2),
    "render.steps": (40, 40),
    "render.sampler": ("dpmpp-2m", "dpmpp-2m"),
    "render.count": (3, 3),
    "render.seed": (2**63 - 1, 2**63 - 1),
    "render.prefetch": (0, 0),
    "render.format": ("float", "float"),
    "render.audition": ("on", True),
    "render.guide": (["brightness=1", "decay=-1:0.3s;punch=0.5"], ("brightness=1", "decay=-1:0.3s", "punch=0.5")),
    "render.recipe": ("tight", "tight"),
    "audio.output": ("USB Audio", "USB Audio"),
    "audio.latency": ("0.02", 0.02),
    "limits.queue": (4, 4),
    "limits.pending": (9, 9),
    "limits.prefetch_clips": (2, 2),
    "limits.prefetch_seconds": (12.5, 12.5),
    "limits.prefetch_memory_mb": (64, 64.0),
}
# serve's flags as typed on the command line, and what Config then holds.
FLAG_EXAMPLES = {
    "--model": ("my.ckpt", "my.ckpt"),
    "--device": ("cpu", "cpu"),
    "--backend": ("onnx", "onnx"),
    "--folder": ("/srv/samples", Path("/srv/samples")),
    "--osc-port": ("9100", 9100),
    "--midi-port": ("none", None),
    "--midi-channel": ("10", 10),
}


def _paths(data: dict, section: str = "") -> list[str]:
    """The keys of a parsed YAML doc as the table names them: "osc.port"."""
    found = []
    for name, value in data.items():
        if isinstance(value, dict) and not section and name in ("osc", "midi", "render", "audio", "limits"):
            found += _paths(value, name)
        else:
            found.append(f"{section}.{name}" if section else name)
    return found


def _held(config: Config, attr: str):
    owner, _, member = attr.partition(".")
    return getattr(getattr(config, owner), member) if member else getattr(config, owner)


def _changed(config: Config) -> set[str]:
    return {f.name for f in fields(Config) if f.name != "source" and getattr(config, f.name) != getattr(Config(), f.name)}


def test_the_doc_the_dataclass_and_the_parser_have_every_key_of_the_table(platformdirs_isolated):
    assert _paths(yaml.safe_load(DEFAULT_YAML)) == [key.path for key in KEYS]  # every key documented, in order
    assert [f.name for f in fields(Config)] == list(dict.fromkeys(k.attr.partition(".")[0] for k in KEYS)) + ["source"]
    assert [f.name for f in fields(Settings)] == [key.name for key in KEYS if key.section == "render"]
    assert set(EXAMPLES) == {key.path for key in KEYS}
    for key in KEYS:
        written, held = EXAMPLES[key.path]
        data = {key.section: {key.name: written}} if key.section else {key.name: written}
        config = parse_config(data)
        assert _changed(config) == {key.attr.partition(".")[0]}, key.path  # the key sets its attribute alone
        assert _held(config, key.attr) == held, key.path
        assert _held(Config(), key.attr) == _held(parse_config(yaml.safe_load(DEFAULT_YAML)), key.attr)


def test_every_flag_of_serve_is_a_key_of_the_table_and_sets_it_alone(platformdirs_isolated):
    parser = build_parser()
    serve = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["serve"]
    offered = {option for action in serve._actions for option in action.option_strings} - {
        "-h", "--help", "--config", "--debug", "--quiet"}  # the last two: every command's, after it as before it
    assert offered == {key.flag for key in FLAGS} == set(FLAG_EXAMPLES)
    for key in FLAGS:
        text, held = FLAG_EXAMPLES[key.flag]
        config = Config().with_flags(parser.parse_args(["serve", key.flag, text]))
        assert _changed(config) == {key.attr} and _held(config, key.attr) == held, key.flag
    assert Config().with_flags(parser.parse_args(["serve"])) == Config()  # no flag: the file's values stay
    with pytest.raises(ConfigError, match="--osc-port must be a number, not 'nine'"):
        Config().with_flags(parser.parse_args(["serve", "--osc-port", "nine"]))
    with pytest.raises(TypeError, match="no serve flag sets precision"):
        Config().with_overrides(precision="fp16")
