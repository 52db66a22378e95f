"""The service's one YAML config file: every key documented here, every value validated with a clear error.

Lives at ``<user config dir>/dd-bridge/config.yaml`` (platformdirs); `dd-bridge serve` flags override it.
A missing file means all defaults. DEFAULT_YAML below is the documentation of every key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import platformdirs
import yaml

from bridge import constants, files
from bridge.daemon.settings import Settings, as_float, as_int, as_text, validate
from bridge.errors import ConfigError

APP = "dd-bridge"
ACTIONS = ("vary", "generate")  # what a MIDI note can trigger
CC_TARGETS = ("noise",)  # what a MIDI controller can set

DEFAULT_YAML = f"""\
# DD Bridge service configuration (dd-bridge serve). Every key is optional.
model: null            # model card name, or a path (.ckpt, diffusers folder, .safetensors); null: {constants.DEFAULT_MODEL}
device: auto           # auto (cuda, then mps, then cpu) | cuda | mps | cpu
precision: auto        # auto (the engine's default: fp32) | fp32 | fp16 | bf16
backend: torch         # torch | onnx (ONNX Runtime; its first start exports the model once, minutes at full size)
folder: null           # the sample folder; null: "DD Bridge" in your music folder
allowed_folders: []    # extra folders requests may write into (folder= option, /dd/set folder), e.g. your
                       # REAPER projects; the sample folder, your music and documents folders are always allowed
osc:
  host: {constants.OSC_HOST}      # the interface to listen on; anything else than 127.0.0.1 opens the service to the network
  port: {constants.OSC_PORT}           # where requests arrive
  reply_port: {constants.OSC_REPLY_PORT}     # replies also go to 127.0.0.1 on this port (the Max device); null: none
  token: null          # a shared secret that other users and machines send as token=...; required if host is not 127.0.0.1
midi:
  port: "{constants.MIDI_PORT_NAME}"    # an input port's name; "{constants.MIDI_PORT_NAME}" opens a virtual port (Linux, macOS); none: no MIDI
  notes: {{36: vary, 37: generate}}   # note number -> action ({", ".join(ACTIONS)})
  cc: {{1: noise}}                     # controller number -> setting ({", ".join(CC_TARGETS)}), 0..127 scaled to its range
render:                # how variations are rendered until /dd/set changes it
  noise: {constants.DEFAULT_NOISE}           # 0: the clip itself .. 1: a new sound
  steps: {constants.DEFAULT_STEPS}
  sampler: {constants.DEFAULT_SAMPLER}
  count: {constants.DEFAULT_COUNT}             # outputs per key press
  seed: null           # null: a fresh seed per variation
  format: {constants.DEFAULT_OUTPUT_FORMAT}        # pcm16 | pcm24 | float
  prefetch: 4          # variations kept rendered ahead for the selected clip; 0: none
limits:
  queue: 32            # requests waiting to render; more are refused with /dd/error
  pending: 256         # outputs waiting to render over all queued requests
  prefetch_clips: 4    # clips whose prefetched variations are kept (the selected one and those before it)
  prefetch_seconds: 30 # clips longer than this are not prefetched
  prefetch_memory_mb: 512  # decoded audio kept for prefetch, all clips together; a long multichannel clip gets fewer
"""

SECTIONS = {
    "": ("model", "device", "precision", "backend", "folder", "allowed_folders", "osc", "midi", "render", "limits"),
    "osc": ("host", "port", "reply_port", "token"),
    "midi": ("port", "notes", "cc"),
    "render": ("noise", "steps", "sampler", "count", "seed", "format", "prefetch"),
    "limits": ("queue", "pending", "prefetch_clips", "prefetch_seconds", "prefetch_memory_mb"),
}
DEVICES = ("auto", "cuda", "mps", "cpu")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
BACKENDS = ("torch", "onnx")


def config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "config.yaml"


def default_folder() -> Path:
    return Path(platformdirs.user_music_dir()) / "DD Bridge"


@dataclass(frozen=True)
class Config:
    model: str | None = None
    device: str = "auto"
    precision: str = "auto"
    backend: str = "torch"
    folder: Path = field(default_factory=default_folder)
    allowed_folders: tuple[Path, ...] = ()
    osc_host: str = constants.OSC_HOST
    osc_port: int = constants.OSC_PORT
    reply_port: int | None = constants.OSC_REPLY_PORT
    osc_token: str | None = None
    midi_port: str | None = constants.MIDI_PORT_NAME
    midi_notes: tuple[tuple[int, str], ...] = ((36, "vary"), (37, "generate"))
    midi_cc: tuple[tuple[int, str], ...] = ((1, "noise"),)
    render: Settings = field(default_factory=Settings)
    max_queue: int = 32
    max_pending: int = 256
    prefetch_clips: int = 4
    prefetch_seconds: float = 30.0
    prefetch_memory_mb: float = 512.0
    source: Path | None = None  # the file it was read from

    @property
    def writable_folders(self) -> tuple[Path, ...]:
        """Where the service may write: the sample folder, the user's music and documents, and those configured."""
        base = (self.folder, Path(platformdirs.user_music_dir()), Path(platformdirs.user_documents_dir()))
        return tuple(dict.fromkeys(base + self.allowed_folders))

    def with_overrides(self, **flags) -> "Config":
        """`serve` flags (None: not given) over the file's values, validated the same way."""
        changes = {}
        if flags.get("model") is not None:
            changes["model"] = as_text("--model", flags["model"])
        if flags.get("device") is not None:
            changes["device"] = _choice("--device", flags["device"], DEVICES)
        if flags.get("backend") is not None:
            changes["backend"] = _choice("--backend", flags["backend"], BACKENDS)
        if flags.get("osc_port") is not None:
            changes["osc_port"] = as_int("--osc-port", flags["osc_port"], 0, 65535)
        if flags.get("folder") is not None:
            changes["folder"] = _folder("--folder", flags["folder"])
        if flags.get("midi_port") is not None:
            changes["midi_port"] = _midi_port("--midi-port", flags["midi_port"])
        return replace(self, **changes)


def _choice(key: str, value, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower() if isinstance(value, str) else value
    if text not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, not {files.shown(value)}")
    return text


def _folder(key: str, value) -> Path:
    text = as_text(key, value if isinstance(value, str) else str(value) if isinstance(value, Path) else value)
    path = Path(os.path.expanduser(text))
    if not path.is_absolute():
        path = Path.cwd() / path
    return Path(os.path.abspath(path))


def _midi_port(key: str, value) -> str | None:
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("none", "off", "")):
        return None
    return as_text(key, value)


def _token(key: str, value) -> str:
    text = as_text(key, value if isinstance(value, str) else str(value))
    if len(text) < 12 or any(ch.isspace() for ch in text):
        raise ConfigError(f"{key} must be at least 12 characters without spaces (a secret: e.g. the output of "
                          "`python3 -c 'import secrets; print(secrets.token_urlsafe())'`)")
    return text


def _mapping(key: str, value, targets: tuple[str, ...]) -> tuple[tuple[int, str], ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a mapping of number -> {' or '.join(targets)}, not {files.shown(value)}")
    found = []
    for number, target in value.items():
        number = as_int(f"{key} number", number, 0, 127)
        found.append((number, _choice(f"{key}.{number}", target, targets)))
    return tuple(sorted(found))


def _section(data, name: str) -> dict:
    if data is None:
        return {}
    where = f"section {name!r}" if name else "the config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of keys to values, not {type(data).__name__}")
    unknown = [str(k) for k in data if k not in SECTIONS[name]]
    if unknown:
        raise ConfigError(f"unknown key {(name + '.' if name else '') + unknown[0]!r} in {where}; "
                          f"known: {', '.join(SECTIONS[name])}")
    return data


def parse_config(data, source: Path | None = None) -> Config:
    top = _section(data, "")
    osc = _section(top.get("osc"), "osc")
    midi = _section(top.get("midi"), "midi")
    render = _section(top.get("render"), "render")
    limits = _section(top.get("limits"), "limits")
    changes: dict = {"source": source}
    if top.get("model") is not None:
        changes["model"] = as_text("model", top["model"])
    if "device" in top:
        changes["device"] = _choice("device", top["device"], DEVICES)
    if "precision" in top:
        changes["precision"] = _choice("precision", top["precision"], PRECISIONS)
    if "backend" in top:
        changes["backend"] = _choice("backend", top["backend"], BACKENDS)
    if top.get("folder") is not None:
        changes["folder"] = _folder("folder", top["folder"])
    if top.get("allowed_folders") is not None:
        if not isinstance(top["allowed_folders"], list):
            raise ConfigError("allowed_folders must be a list of folders")
        changes["allowed_folders"] = tuple(_folder("allowed_folders", f) for f in top["allowed_folders"])
    if "host" in osc:
        changes["osc_host"] = as_text("osc.host", osc["host"])
    if "port" in osc:
        changes["osc_port"] = as_int("osc.port", osc["port"], 0, 65535)
    if "reply_port" in osc:
        changes["reply_port"] = None if osc["reply_port"] is None else as_int("osc.reply_port", osc["reply_port"], 1, 65535)
    if osc.get("token") is not None:
        changes["osc_token"] = _token("osc.token", osc["token"])
    if "port" in midi:
        changes["midi_port"] = _midi_port("midi.port", midi["port"])
    if "notes" in midi:
        changes["midi_notes"] = _mapping("midi.notes", midi["notes"] or {}, ACTIONS)
    if "cc" in midi:
        changes["midi_cc"] = _mapping("midi.cc", midi["cc"] or {}, CC_TARGETS)
    changes["render"] = Settings().updated(**{f"{k}": v for k, v in render.items()})
    if "queue" in limits:
        changes["max_queue"] = as_int("limits.queue", limits["queue"], 1, 10000)
    if "pending" in limits:
        changes["max_pending"] = as_int("limits.pending", limits["pending"], 1, 100000)
    if "prefetch_clips" in limits:
        changes["prefetch_clips"] = as_int("limits.prefetch_clips", limits["prefetch_clips"], 1, 64)
    if "prefetch_seconds" in limits:
        changes["prefetch_seconds"] = float(validate("seconds", limits["prefetch_seconds"]))
    if "prefetch_memory_mb" in limits:
        changes["prefetch_memory_mb"] = as_float("limits.prefetch_memory_mb", limits["prefetch_memory_mb"], 1, 2**20)
    return replace(Config(), **changes)


def load_config(path: Path | str | None = None) -> Config:
    """The config at ``path`` (must exist), or at the default place (may be missing: all defaults)."""
    explicit = path is not None
    path = Path(path) if explicit else config_path()
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {path} does not exist")
        return Config()
    try:
        data = files.load_yaml(path)  # no aliases, bounded size: a few hundred bytes cannot expand to gigabytes
    except (OSError, UnicodeDecodeError) as error:
        detail = files.reason(error) if isinstance(error, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read config {path}: {detail}") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        what = f": {error.args[0]}" if isinstance(error, files.AliasError) else ""
        raise ConfigError(f"config {path} is not valid YAML{line}{what}") from None
    try:
        return parse_config(data, path)
    except ConfigError as error:
        raise ConfigError(f"config {path}: {error}") from None
