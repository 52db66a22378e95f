"""The render settings a producer changes while working, and the one place their values are validated.

Used by the config file, the OSC requests (`/dd/set` and per-request options) and the MIDI mapping, so every
front end accepts the same values and names the same allowed range. No torch here: transports import this.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields, replace

from bridge import constants
from bridge.errors import ConfigError

MAX_STEPS = 1000
MAX_SEED = 2**63 - 1
MAX_PREFETCH = 16
MAX_SECONDS = 600.0
MAX_POSITION = 24 * 3600.0  # a region's start or end, in seconds of the source file
SAMPLER_NAME = re.compile(r"^[a-z0-9][a-z0-9_+-]{0,31}$")


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
    number = float(as_number(key, value))
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
    return as_int(key, value, 0, MAX_SEED)


def as_format(key: str, value) -> str:
    text = as_text(key, value).lower()
    if text not in constants.OUTPUT_FORMATS:
        raise ConfigError(f"{key} must be one of {', '.join(constants.OUTPUT_FORMATS)}, not {value!r}")
    return text


VALIDATORS = {
    "noise": lambda k, v: as_float(k, v, 0.0, 1.0),
    "shape": lambda k, v: as_float(k, v, 0.0, 1.0),
    "steps": lambda k, v: as_int(k, v, 1, MAX_STEPS),
    "sampler": as_sampler,
    "count": lambda k, v: as_int(k, v, 1, constants.MAX_COUNT),
    "seed": as_seed,
    "prefetch": lambda k, v: as_int(k, v, 0, MAX_PREFETCH),
    "seconds": lambda k, v: as_float(k, v, 0.01, MAX_SECONDS),
    "format": as_format,
    # A region of the source file (bridge.engine.regions), seconds; b_: an interpolation's second file.
    "start": lambda k, v: as_float(k, v, 0.0, MAX_POSITION),
    "end": lambda k, v: as_float(k, v, 0.0, MAX_POSITION),
    "tail": lambda k, v: as_float(k, v, 0.0, MAX_SECONDS),
    "b_start": lambda k, v: as_float(k, v, 0.0, MAX_POSITION),
    "b_end": lambda k, v: as_float(k, v, 0.0, MAX_POSITION),
    "model": as_text,
    "folder": as_text,
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
    sampler: str = constants.DEFAULT_SAMPLER
    count: int = constants.DEFAULT_COUNT
    seed: int | None = None
    prefetch: int = 4
    format: str = constants.DEFAULT_OUTPUT_FORMAT

    def updated(self, **changes) -> "Settings":
        return replace(self, **{key: validate(key, value) for key, value in changes.items()})

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))
