"""The service's one YAML config file: every key documented, every value validated with a clear error.

Lives at ``<user config dir>/dd-bridge/config.yaml`` (platformdirs); `dd-bridge serve` flags override it.
A missing file means all defaults.

KEYS is the one table of keys. The Config dataclass, DEFAULT_YAML (the documentation of every key, copied into
the README), the parser and serve's flags are all made from it, so a key is written once and they cannot drift
apart. The render section's keys are the fields of ``Settings``, checked by the same rules as OSC and MIDI.

Over 300 lines: about 80 of them are the KEYS table itself, the one place a key is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass, replace
from pathlib import Path
from typing import Any, Callable

import platformdirs
import yaml

from bridge import constants, files
from bridge.daemon.settings import (VALIDATORS, Settings, as_choice, as_float, as_folder, as_folders, as_int,
                                    as_mapping, as_midi_port, as_text, as_token)
from bridge.errors import ConfigError

APP = "dd-bridge"
HEADER = "# DD Bridge service configuration (dd-bridge serve). Every key is optional."
COMMENT_COLUMN = 23  # where the YAML doc's comments start, unless the line is longer

Read = Callable[[str, Any], Any]  # (the name an error shows, the value as given) -> the value Config holds


def config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "config.yaml"


def recipes_folder() -> Path:
    """Where guidance recipes are saved and found by name: beside the config file (docs/guidance.md)."""
    return config_path().parent / "recipes"


def default_folder() -> Path:
    return Path(platformdirs.user_music_dir()) / "DD Bridge"


# -- how values are read ---------------------------------------------------------------------------------------------
def _whole(low: int, high: int) -> Read:
    return lambda key, value: as_int(key, value, low, high)


def _real(low: float, high: float) -> Read:
    return lambda key, value: as_float(key, value, low, high)


def _reply_port(key: str, value) -> int | None:
    return None if value is None else as_int(key, value, 1, constants.MAX_PORT)


def _audio_output(key: str, value) -> str | int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else as_text(key, value)


def _latency(key: str, value):
    from bridge.playback.player import latency_setting  # the rule Player applies, in one place

    try:
        return latency_setting(value)
    except ConfigError as error:
        raise ConfigError(f"{key}: {error}") from None


def _midi_channel(key: str, value) -> int | None:
    """A channel as DAWs and controllers count them, 1..16, or all (also omni): None, every channel heard."""
    if isinstance(value, str) and value.strip().lower() in ("all", "omni"):
        return None
    try:
        return as_int(key, value, 1, MIDI_CHANNELS)
    except ConfigError:
        raise ConfigError(f"{key} must be a channel 1..{MIDI_CHANNELS} or all, not {files.shown(value)}") from None


def _setting(name: str) -> Read:
    return VALIDATORS[name]  # the rule /dd/set and the requests' options follow


# -- the table -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Key:
    """One config key: where it sits in the file, the Config attribute it sets, its default, how a value is read,
    its line in the YAML doc and, where `serve` has one, the flag that overrides it."""

    path: str  # "osc.port": section and key in the file ("model": a top-level key)
    attr: str  # the Config attribute ("osc_port"); "render.noise": field noise of Config.render (see GROUPS)
    default: Any  # what Config holds when the file leaves the key out; a function: worked out when Config is made
    doc: str = ""  # the YAML comment after the choices; a newline continues it on a second comment line
    read: Read | None = None  # None: one of ``choices``
    choices: tuple[str, ...] = ()  # the words accepted; the YAML comment and the flag list them
    shown: str | None = None  # the default as the YAML doc writes it, where it is worked out at start
    null_is_default: bool = False  # `key: null` keeps the default (else null is read like any value)
    flag: str | None = None  # serve's flag; its errors name the flag
    metavar: str | None = None

    def parse(self, name: str, value):
        return self.read(name, value) if self.read is not None else as_choice(name, value, self.choices)

    @property
    def section(self) -> str:
        return self.path.rpartition(".")[0]

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2]

    @property
    def comment(self) -> str:
        return "; ".join(part for part in (" | ".join(self.choices), self.doc) if part)

    @property
    def yaml_default(self) -> str:
        return self.shown if self.shown is not None else _yaml(self.default)


_RENDER = Settings()
MIDI = constants.MIDI_PORT_NAME
MIDI_CHANNELS = 16

KEYS: tuple[Key, ...] = (
    Key("model", "model", None, f"model card name, or a path (.ckpt, diffusers folder, .safetensors); null: "
        f"{constants.DEFAULT_MODEL}", as_text, null_is_default=True, flag="--model", metavar="M"),
    Key("device", "device", "auto", "auto: cuda, then mps, then cpu", choices=constants.DEVICES, flag="--device"),
    Key("precision", "precision", "auto", f"auto: the engine's default ({constants.DEFAULT_PRECISION})",
        choices=constants.AUTO_PRECISIONS),
    Key("backend", "backend", "torch", "onnx: ONNX Runtime (its first start exports the model once, minutes at "
        "full size)", choices=constants.BACKENDS, flag="--backend"),
    Key("folder", "folder", default_folder, 'the sample folder; null: "DD Bridge" in your music folder', as_folder,
        shown="null", null_is_default=True, flag="--folder", metavar="DIR"),
    Key("allowed_folders", "allowed_folders", (), "extra folders requests may write into (folder= option, "
        "/dd/set folder), e.g. your\nREAPER projects; the sample folder, your music and documents folders are "
        "always allowed", as_folders, null_is_default=True),
    Key("osc.host", "osc_host", constants.OSC_HOST, "the interface to listen on; anything else than 127.0.0.1 opens "
        "the service to the network", as_text),
    Key("osc.port", "osc_port", constants.OSC_PORT, "where requests arrive (0: any free port)",
        _whole(0, constants.MAX_PORT), flag="--osc-port", metavar="P"),
    Key("osc.reply_port", "reply_port", constants.OSC_REPLY_PORT, "replies also go to 127.0.0.1 on this port (the "
        "Max device); null: none", _reply_port),
    Key("osc.token", "osc_token", None, "a shared secret that other users and machines send as token=...; "
        "required if host is not 127.0.0.1", as_token, null_is_default=True),
    Key("midi.port", "midi_port", MIDI, f'an input port\'s name; "{MIDI}" opens a virtual port (Linux, macOS); '
        "none: no MIDI", as_midi_port, flag="--midi-port", metavar="NAME|none"),
    Key("midi.channel", "midi_channel", None, "1..16: only notes and knobs on that channel act; all: every "
        "channel's\n(a GM drum track on channel 10 sends note 36, its kick: on all, it varies)", _midi_channel,
        shown="all", null_is_default=True, flag="--midi-channel", metavar="1-16|all"),
    Key("midi.notes", "midi_notes", ((36, "vary"), (37, "generate"), (38, "keep")),
        f"note number -> action ({', '.join(constants.MIDI_ACTIONS)})", as_mapping(constants.MIDI_ACTIONS)),
    Key("midi.cc", "midi_cc", ((1, "noise"),), f"controller number -> setting "
        f"({', '.join(constants.MIDI_CC_SETTINGS)}), 0..127 scaled to its range\n(a guide's weight: -2..2, 64 "
        "off)", as_mapping(constants.MIDI_CC_SETTINGS)),
    Key("render.noise", "render.noise", _RENDER.noise, "0: the clip itself .. 1: a new sound", _setting("noise")),
    Key("render.steps", "render.steps", _RENDER.steps, "", _setting("steps")),
    Key("render.sampler", "render.sampler", _RENDER.sampler, f"auto: {constants.AUTO_SAMPLERS}",
        _setting("sampler")),
    Key("render.count", "render.count", _RENDER.count, "outputs per key press", _setting("count")),
    Key("render.seed", "render.seed", _RENDER.seed, "null: a fresh seed per variation", _setting("seed")),
    Key("render.prefetch", "render.prefetch", _RENDER.prefetch, "variations kept rendered ahead for the selected "
        "clip; 0: none", _setting("prefetch")),
    Key("render.format", "render.format", _RENDER.format, "", _setting("format"), choices=constants.OUTPUT_FORMATS),
    Key("render.audition", "render.audition", _RENDER.audition, "on: a vary press plays its variation and holds it "
        "back;\na keep press (/dd/keep, MIDI keep) writes it into the sample folder", _setting("audition"),
        shown="off"),
    Key("render.guide", "render.guide", _RENDER.guide, "guides steering every render: [brightness=1, decay=-1:0.3s] "
        "(docs/guidance.md)", _setting("guide")),
    Key("render.recipe", "render.recipe", _RENDER.recipe, "a saved set of guides: a name in the recipes folder, or "
        "a file", _setting("recipe")),
    Key("audio.output", "audio_output", None, "where /dd/play and audition play: an index or a part of a name from "
        "`dd-bridge devices`;\nnull: the system's default output", _audio_output, null_is_default=True),
    Key("audio.latency", "audio_latency", "low", "low | high | seconds, e.g. 0.02", _latency),
    Key("limits.queue", "max_queue", 32, "requests waiting to render; more are refused with /dd/error",
        _whole(1, constants.MAX_QUEUE)),
    Key("limits.pending", "max_pending", 256, "outputs waiting to render over all queued requests",
        _whole(1, constants.MAX_PENDING)),
    Key("limits.prefetch_clips", "prefetch_clips", 4, "clips whose prefetched variations are kept (the selected "
        "one and those before it)", _whole(1, constants.MAX_PREFETCH_CLIPS)),
    Key("limits.prefetch_seconds", "prefetch_seconds", 30.0, "clips longer than this are not prefetched",
        _real(constants.MIN_SECONDS, constants.MAX_SECONDS)),
    Key("limits.prefetch_memory_mb", "prefetch_memory_mb", 512.0, "decoded audio kept for prefetch, all clips "
        "together; a long multichannel clip gets fewer", _real(1, constants.MAX_PREFETCH_MEMORY_MB)),
)
GROUPS = {"render": Settings}  # a Config attribute that holds a whole section: its keys are the class's fields
SECTION_DOCS = {"render": "how variations are rendered until /dd/set changes it"}
FLAGS = tuple(key for key in KEYS if key.flag)


def _sections() -> dict[str, tuple[str, ...]]:
    """The keys known in each section; the top level ("") also knows the sections."""
    known: dict[str, list[str]] = {"": []}
    for key in KEYS:
        if key.section and key.section not in known:
            known[""].append(key.section)
            known[key.section] = []
        known[key.section].append(key.name)
    return {section: tuple(names) for section, names in known.items()}


SECTIONS = _sections()


def _yaml(value) -> str:
    """A default as the YAML doc writes it (the tests read the doc back and compare with Config())."""
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple) and value and all(isinstance(item, tuple) for item in value):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value) + "}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_yaml(item) for item in value) + "]"
    return f'"{value}"' if " " in str(value) else str(value)


def _commented(line: str, comment: str) -> list[str]:
    if not comment:
        return [line]
    first, *more = comment.split("\n")
    width = max(COMMENT_COLUMN, len(line) + 2)
    return [f"{line:<{width}}# {first}"] + [f"{'':<{COMMENT_COLUMN}}# {text}" for text in more]


def _default_yaml() -> str:
    lines, section = [HEADER], ""
    for key in KEYS:
        if key.section != section:
            section = key.section
            lines += _commented(f"{section}:", SECTION_DOCS.get(section, ""))
        indent = "  " if key.section else ""
        lines += _commented(f"{indent}{key.name}: {key.yaml_default}", key.comment)
    return "\n".join(lines) + "\n"


DEFAULT_YAML = _default_yaml()


# -- the dataclass ---------------------------------------------------------------------------------------------------
def _factory(default) -> Callable[[], Any]:
    return default if callable(default) else lambda: default


def _fields() -> list[tuple[str, Any, Any]]:
    made, found = [], set()
    for key in KEYS:
        attr = key.attr.partition(".")[0]
        if attr not in found:
            found.add(attr)
            default = GROUPS[attr] if attr in GROUPS else _factory(key.default)
            made.append((attr, Any, field(default_factory=default)))
    return made


_Fields = make_dataclass("_Fields", _fields(), frozen=True)  # one field per key of KEYS (a group: one field)


@dataclass(frozen=True)
class Config(_Fields):
    """The service's settings: the attributes named in KEYS (``Config().osc_port``), and where they were read."""

    source: Path | None = None  # the file it was read from

    def __post_init__(self):
        if self.reply_port and self.reply_port == self.osc_port:  # the service would answer its own replies
            raise ConfigError(f"osc.reply_port {self.reply_port} is osc.port, where the service listens: give it "
                              "the port your DAW listens on, or null")

    @property
    def writable_folders(self) -> tuple[Path, ...]:
        """Where the service may write: the sample folder, the user's music and documents, and those configured."""
        base = (self.folder, Path(platformdirs.user_music_dir()), Path(platformdirs.user_documents_dir()))
        return tuple(dict.fromkeys(base + self.allowed_folders))

    def with_overrides(self, **flags) -> "Config":
        """`serve` flags by attribute (None: not given) over the file's values, validated the same way."""
        by_attr = {key.attr: key for key in FLAGS}
        unknown = sorted(set(flags) - set(by_attr))
        if unknown:
            raise TypeError(f"no serve flag sets {', '.join(unknown)}")
        return replace(self, **{attr: by_attr[attr].parse(by_attr[attr].flag, value)
                                for attr, value in flags.items() if value is not None})

    def with_flags(self, args) -> "Config":
        """The flags ``add_flags`` added, as argparse parsed them, over these values."""
        return self.with_overrides(**{key.attr: getattr(args, key.attr) for key in FLAGS})


def add_flags(parser) -> None:
    """serve's flags, one per key of KEYS that has one; read by Config.with_flags."""
    for key in FLAGS:
        text = f"{key.comment} (config: {key.path}, default {key.yaml_default})".replace("\n", " ")
        parser.add_argument(key.flag, dest=key.attr, default=None, choices=key.choices or None, metavar=key.metavar,
                            help=text.replace("%", "%%"))


# -- reading the file ------------------------------------------------------------------------------------------------
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
    sections = {name: _section(top.get(name), name) if name else top for name in SECTIONS}
    values: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {group: {} for group in GROUPS}
    for key in KEYS:
        given = sections[key.section]
        if key.name not in given or (given[key.name] is None and key.null_is_default):
            continue
        value = key.parse(key.path, given[key.name])
        attr, _, member = key.attr.partition(".")
        if member:
            groups[attr][member] = value
        else:
            values[attr] = value
    return Config(source=source, **values, **{group: GROUPS[group](**found) for group, found in groups.items()})


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
