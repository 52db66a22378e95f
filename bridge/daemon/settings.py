"""The render settings a producer changes while working, and the one place values are validated: the settings,
the requests' options and the config file's keys (ranges and choices from bridge/constants.py).

Used by the config file, the OSC requests (`/dd/set` and per-request options) and the MIDI mapping, so every
front end accepts the same values and names the same allowed range. No torch here: transports import this.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from bridge import constants, files
from bridge.engine import tempo
from bridge.errors import ConfigError

# What a sampler setting may hold before the engine checks the name: letters, digits and - _ + . (an option in a
# name: dpmpp-2m-sde-karras-eta0.5), nothing that could be a path or a command.
SAMPLER_NAME = re.compile(r"^[a-z0-9][a-z0-9_+.-]{0,31}$")


def as_number(key: str, value) -> float:
    """Int or float, as OSC senders send them (Max and Pure Data send floats for counts); also numeric text."""
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number, not {value!r}")
    if isinstance(value, str):
        try:  # whole numbers as int: a seed beyond 2**53 would lose its last digits through float
            value = int(value.strip()) if re.fullmatch(r"\s*[-+]?\d+\s*", value) else float(value.strip())
        except ValueError:
            raise ConfigError(f"{key} must be a number, not {value!r}") from None
    if not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be a number, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number, not {value}")
    return value


def as_int(key: str, value, low: int, high: int) -> int:
    number = as_number(key, value)
    if number != int(number):
        raise ConfigError(f"{key} must be a whole number in {low}..{high}, not {value}")
    number = int(number)
    if not low <= number <= high:
        raise ConfigError(f"{key} must be in {low}..{high}, not {number}")
    return number


def as_float(key: str, value, low: float, high: float) -> float:
    try:
        number = float(as_number(key, value))
    except OverflowError:  # whole-number text is read as int, and past 1.8e308 an int has no float
        raise ConfigError(f"{key} must be in {low:g}..{high:g}, not {files.shown(value)}") from None
    if not low <= number <= high:
        raise ConfigError(f"{key} must be in {low:g}..{high:g}, not {number:g}")
    return number


def as_text(key: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a non-empty text, not {value!r}")
    if any(ord(ch) < 32 for ch in value):
        raise ConfigError(f"{key} must not contain control characters")
    return value.strip()


def as_sampler(key: str, value) -> str:
    name = as_text(key, value).lower()
    if not SAMPLER_NAME.match(name):
        raise ConfigError(f"{key} must be a sampler name such as {constants.DEFAULT_SAMPLER}, not {value!r}")
    return name


def as_seed(key: str, value) -> int | None:
    """A seed, or None for a fresh random seed per render ("random", "none", -1 or an empty text)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "random", "none")):
        return None
    if as_number(key, value) == -1:
        return None
    try:
        return as_int(key, value, 0, constants.MAX_SEED)
    except ConfigError as error:  # the range said with the words that mean "a fresh one each time"
        raise ConfigError(f"{error}; or random (-1) for a fresh seed each render") from None


def as_choice(key: str, value, choices: tuple[str, ...]) -> str:
    """One of the words in ``choices`` (constants), in any case."""
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, not {files.shown(value)}")
    return text


# The config file's own values (bridge/daemon/config.py)
def as_folder(key: str, value) -> Path:
    text = as_text(key, value if isinstance(value, str) else str(value) if isinstance(value, Path) else value)
    path = Path(os.path.expanduser(text))
    if not path.is_absolute():
        path = Path.cwd() / path
    return Path(os.path.abspath(path))


def as_folders(key: str, value) -> tuple[Path, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{key} must be a list of folders")
    return tuple(as_folder(key, item) for item in value)


def as_midi_port(key: str, value) -> str | None:
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("none", "off", "")):
        return None
    return as_text(key, value)


def as_switch(key: str, value) -> bool:
    """on or off (also true/false, yes/no, 1/0, as YAML, OSC senders and MIDI send them)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int, float)) else None
    if text in ("on", "true", "yes", "1", "1.0"):
        return True
    if text in ("off", "false", "no", "0", "0.0"):
        return False
    raise ConfigError(f"{key} must be on or off, not {files.shown(value)}")


# One OSC string carries several guides: ';' appears in no guide request (NAME=WEIGHT[:TARGET][@FROM-TO]); a match
# target's file name with ';' in it cannot be named here (docs/osc.md).
GUIDE_SEPARATOR = ";"
OFF = ("", "off", "none")


def as_guides(key: str, value) -> tuple[str, ...]:
    """Guide requests as text, ``brightness=1;decay=-1:0.3s`` (or a YAML list of them); off, none or empty: none.
    Read into guides, and checked against the installed ones, by bridge.daemon.steering (it needs torch)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in OFF):
        return ()
    items = value if isinstance(value, (list, tuple)) else [value]
    texts = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{key} must be guides such as brightness=1;decay=-1, not {files.shown(item)}")
        texts += [as_text(key, text) for text in item.split(GUIDE_SEPARATOR) if text.strip()]
    return tuple(texts)


def as_recipe(key: str, value) -> str | None:
    """A guidance recipe: a name in the recipes folder or a YAML file's full path; off, none or empty: none."""
    if value is None or (isinstance(value, str) and value.strip().lower() in OFF):
        return None
    return as_name(key, value)


def as_name(key: str, value) -> str:
    """A name, such as a recipe's: a name of digits (808) comes as a number from Max and `dd-bridge send`, and as a
    float (808.0) from Pure Data and Max's float boxes, which send every number so: a whole one is its digits."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    return as_text(key, value)


def as_token(key: str, value) -> str:
    text = as_text(key, value if isinstance(value, str) else str(value))
    if len(text) < constants.MIN_TOKEN_LENGTH or any(ch.isspace() for ch in text):
        raise ConfigError(f"{key} must be at least {constants.MIN_TOKEN_LENGTH} characters without spaces (a secret: "
                          "e.g. the output of `python3 -c 'import secrets; print(secrets.token_urlsafe())'`)")
    return text


def as_mapping(targets: tuple[str, ...]) -> Callable[[str, object], tuple[tuple[int, str], ...]]:
    """MIDI note or controller number -> one of ``targets``; null is an empty mapping."""
    def read(key: str, value) -> tuple[tuple[int, str], ...]:
        value = value or {}
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping of number -> {' or '.join(targets)}, not {files.shown(value)}")
        found = []
        for number, target in value.items():
            number = as_int(f"{key} number", number, 0, constants.MAX_MIDI_NUMBER)
            found.append((number, as_choice(f"{key}.{number}", target, targets)))
        return tuple(sorted(found))
    return read


MAX_RESAMPLE = 10  # RePaint's own largest U: each pass costs a render of its stretch again

VALIDATORS = {
    "noise": lambda k, v: as_float(k, v, 0.0, 1.0),
    "shape": lambda k, v: as_float(k, v, 0.0, 1.0),
    "steps": lambda k, v: as_int(k, v, 1, constants.MAX_STEPS),
    "sampler": as_sampler,
    "count": lambda k, v: as_int(k, v, 1, constants.MAX_COUNT),
    "seed": as_seed,
    "prefetch": lambda k, v: as_int(k, v, 0, constants.MAX_PREFETCH),
    "seconds": lambda k, v: as_float(k, v, constants.MIN_SECONDS, constants.MAX_SECONDS),
    "format": lambda k, v: as_choice(k, v, constants.OUTPUT_FORMATS),
    # A region of the source file (bridge.engine.regions), seconds; b_: an interpolation's second file.
    "start": lambda k, v: as_float(k, v, 0.0, constants.MAX_POSITION),
    "end": lambda k, v: as_float(k, v, 0.0, constants.MAX_POSITION),
    "tail": lambda k, v: as_float(k, v, 0.0, constants.MAX_SECONDS),
    "b_start": lambda k, v: as_float(k, v, 0.0, constants.MAX_POSITION),
    "b_end": lambda k, v: as_float(k, v, 0.0, constants.MAX_POSITION),
    # A repaint's clip: the part of the file it plays (start/end are then the range to repaint in it).
    "clip_start": lambda k, v: as_float(k, v, 0.0, constants.MAX_POSITION),
    "clip_end": lambda k, v: as_float(k, v, 0.0, constants.MAX_POSITION),
    "model": as_text,
    "folder": as_text,
    # A loop's or an extension's length in bars at a tempo (bridge.engine.tempo).
    "bars": lambda k, v: as_float(k, v, tempo.MIN_BARS, tempo.MAX_BARS),
    "bpm": lambda k, v: as_float(k, v, tempo.MIN_BPM, tempo.MAX_BPM),
    "loop": as_switch,  # a request's: render loops (bridge.engine.clips.vary_loop, generate_loops)
    # RePaint's resampling on repaint, extend and loops: each stretch rendered this many times (bridge.engine.inpaint)
    "resample": lambda k, v: as_int(k, v, 1, MAX_RESAMPLE),
    "audition": as_switch,
    "velocity": lambda k, v: as_int(k, v, 1, constants.MAX_MIDI_NUMBER),  # 0 is a MIDI note's off: no level
    # Guidance (docs/guidance.md): steer every render toward measures of the sound.
    "guide": as_guides,
    "recipe": as_recipe,
}


def validate(key: str, value):
    """The typed value of setting or option ``key``, or a ConfigError that names the allowed values."""
    try:
        check = VALIDATORS[key]
    except KeyError:
        raise ConfigError(f"unknown setting {key!r}; known: {', '.join(VALIDATORS)}") from None
    return check(key, value)


@dataclass(frozen=True)
class Settings:
    """How variations are rendered now. Replaced as a whole on every change; prefetch is keyed by it."""

    noise: float = constants.DEFAULT_NOISE
    steps: int = constants.DEFAULT_STEPS
    sampler: str = constants.AUTO_SAMPLER  # auto: the one measured best for each kind (constants.sampler_for)
    count: int = constants.DEFAULT_COUNT
    seed: int | None = None
    prefetch: int = constants.DEFAULT_PREFETCH
    format: str = constants.DEFAULT_OUTPUT_FORMAT
    audition: bool = False  # a vary press plays its variation and keeps it aside until a keep press
    guide: tuple[str, ...] = ()  # guide requests (NAME=WEIGHT[:TARGET]) every render is steered by
    recipe: str | None = None  # a saved set of guides, applied before ``guide``

    def updated(self, **changes) -> "Settings":
        return replace(self, **{key: validate(key, value) for key, value in changes.items()})
