"""The words a producer writes to ask for guidance, read in one place: a guide ``NAME=WEIGHT[:TARGET][@FROM-TO]``
and a recipe's name or file.

Without torch on purpose: `dd-bridge send` (which makes a guide's or a recipe's file absolute before the service
reads it) and `dd-bridge check-pack` (which reads a pack's planned guides) start without it, and they must read
these words exactly as the registry and the recipes do, not by a copy of the rule.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from bridge.errors import ConfigError
from bridge.files import shown

MAX_WEIGHT = 10.0  # beyond this a step is many times the sound's own level: noise, not guidance
RECIPE_SUFFIXES = (".yaml", ".yml")
_REQUEST = re.compile(r"\s*(?P<name>[A-Za-z][\w-]*)\s*=\s*(?P<weight>[-+]?\d+(?:\.\d+)?)(?::(?P<target>.*?))?"
                      r"(?:@(?P<t_min>\d+(?:\.\d+)?)-(?P<t_max>\d+(?:\.\d+)?))?\s*")


@dataclass(frozen=True)
class GuideRequest:
    """One guide as a producer asks for it: its name, weight, target (None: a direction) and range of t."""

    name: str
    weight: float
    target: str | None = None
    t_min: float = 0.0
    t_max: float = 1.0

    def __post_init__(self):
        if not math.isfinite(self.weight) or abs(self.weight) > MAX_WEIGHT:
            raise ConfigError(f"{self.name}: the weight must be in -{MAX_WEIGHT:g}..{MAX_WEIGHT:g}, got {self.weight}")
        if not 0 <= self.t_min < self.t_max <= 1:
            raise ConfigError(f"{self.name}: the range must be 0 <= from < to <= 1, got {self.t_min}-{self.t_max}")

    @property
    def text(self) -> str:
        """The request as --guide takes it: parse_request(request.text) == request."""
        text = f"{self.name}={self.weight:g}"
        if self.target is not None:
            text += f":{self.target}"
        if (self.t_min, self.t_max) != (0.0, 1.0):
            text += f"@{self.t_min:g}-{self.t_max:g}"
        return text


def parse_request(text: str) -> GuideRequest:
    """``NAME=WEIGHT[:TARGET][@TMIN-TMAX]``: brightness=1, decay=1:0.3s, tuning=1:A1, width=-0.5@0.2-1. Names are
    read in lower case."""
    match = _REQUEST.fullmatch(text)
    if match is None:
        raise ConfigError(f"cannot read the guide {shown(text)}: NAME=WEIGHT, NAME=WEIGHT:TARGET, or either "
                          "followed by @FROM-TO (noise levels), e.g. brightness=1 or decay=1:0.3s")
    return GuideRequest(match["name"].lower(), float(match["weight"]), match["target"] or None,
                        float(match["t_min"] or 0), float(match["t_max"] or 1))


def weight_of(text: object) -> float | None:
    """The weight a request's text asks for, without checking the rest of it; None where it is not one."""
    match = _REQUEST.fullmatch(str(text))
    return float(match["weight"]) if match else None


def target_span(text: str) -> tuple[int, int] | None:
    """Where a request's target lies in ``text`` (start, end), for rewriting it in place (`dd-bridge send` makes a
    match target's file absolute); None without a target or where ``text`` is not a request."""
    match = _REQUEST.fullmatch(text)
    return match.span("target") if match and match["target"] else None


def names_a_file(spec: str) -> bool:
    """Whether a recipe ``spec`` asks for a recipe by its file: it has a folder separator or ends in .yaml/.yml.
    Anything else is a name, looked up only among the recipes: never in the working folder, where an output folder
    named after the recipe (or a sample folder's "kick") would hide it."""
    return any(sep in spec for sep in (os.sep, os.altsep) if sep) or Path(spec).suffix.lower() in RECIPE_SUFFIXES
