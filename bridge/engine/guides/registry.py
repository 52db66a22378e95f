"""The guides a render can name, and a request for one: ``NAME=WEIGHT[:TARGET][@TMIN-TMAX]``.

Guides are found through the ``dd_bridge.guides`` entry-point group: the built-ins are declared there in
pyproject.toml, and a user's package declares its own the same way (docs/guidance.md, "Your own guide"), so a
guide is shared by installing a package, not by editing this one. An entry point names an object with ``name``,
``unit``, ``summary``, ``target_help`` and ``make(weight, target, context, *, t_min, t_max, full) -> LossGuide``
(``builtin.Measured`` builds one from any differentiable measure), and may have a ``stage`` (``in_order``). One that
fails to load is reported once and left out; the others still work.
"""

from __future__ import annotations

import logging
import math
import re
import sys
import threading
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from bridge.engine.guidance import LossGuide
from bridge.engine.guides.builtin import SHAPE, GuideContext
from bridge.errors import ConfigError
from bridge.files import shown

log = logging.getLogger(__name__)

GROUP = "dd_bridge.guides"
PACKAGE = "dd-bridge"  # the distribution whose entry points are the built-ins
MAX_WEIGHT = 10.0  # beyond this a step is many times the sound's own level: noise, not guidance
MODES = ("auto", "cheap", "full")
_REQUEST = re.compile(r"\s*([A-Za-z][\w-]*)\s*=\s*([-+]?\d+(?:\.\d+)?)(?::(.*?))?(?:@(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?))?\s*")
_reported: set[str] = set()
_found: tuple[tuple[str, ...], dict[str, object]] | None = None  # (sys.path, the guides found along it)
_finding = threading.Lock()


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
    """``NAME=WEIGHT[:TARGET][@TMIN-TMAX]``: brightness=1, decay=1:0.3s, tuning=1:A1, width=-0.5@0.2-1."""
    match = _REQUEST.fullmatch(text)
    if match is None:
        raise ConfigError(f"cannot read the guide {shown(text)}: NAME=WEIGHT, NAME=WEIGHT:TARGET, or either "
                          "followed by @FROM-TO (noise levels), e.g. brightness=1 or decay=1:0.3s")
    name, weight, target, t_min, t_max = match.groups()
    return GuideRequest(name.lower(), float(weight), target or None, float(t_min or 0), float(t_max or 1))


def available() -> dict[str, object]:
    """Every guide the installed packages declare, by name. A built-in's name stays the built-in's; otherwise the
    first package on the path wins. Read once per sys.path (reading every installed package's metadata costs tens
    of ms, and the service checks guides at every knob turn): a package installed while the process runs is found
    once the path changes, or after reload()."""
    global _found
    path = tuple(sys.path)
    with _finding:
        if _found is None or _found[0] != path:
            _found = (path, _load())
        return dict(_found[1])


def reload() -> None:
    """Read the entry points again at the next available()."""
    global _found
    with _finding:
        _found = None


def _load() -> dict[str, object]:
    kinds: dict[str, object] = {}
    ours = [entry for entry in entry_points(group=GROUP) if _package(entry) == PACKAGE]
    for entry in ours + [entry for entry in entry_points(group=GROUP) if _package(entry) != PACKAGE]:
        if entry.name in kinds:
            _report(f"{entry.name} {entry.value}", f"guide {entry.name!r} is taken; {entry.value} is ignored")
            continue
        try:
            kind = entry.load()
        except Exception as error:  # a user's package: whatever breaks in it, the other guides still work
            _report(entry.name, f"guide {entry.name!r} ({entry.value}) cannot be loaded: {type(error).__name__}: "
                                f"{error}")
            continue
        if not callable(getattr(kind, "make", None)):
            _report(entry.name, f"guide {entry.name!r} ({entry.value}) has no make(): not a guide")
            continue
        kinds[entry.name] = kind
    return kinds


def _package(entry) -> str | None:
    return getattr(getattr(entry, "dist", None), "name", None)


def _report(name: str, message: str) -> None:
    if name not in _reported:
        _reported.add(name)
        log.warning("%s", message)


def build(requests, context: GuideContext, *, full: bool = False) -> list[LossGuide]:
    """The guides ``requests`` ask for, in the order they act (``in_order``). ConfigError for an unknown name or a
    target the guide refuses."""
    if not requests:
        return []
    kinds = check(requests)
    return [kinds[request.name].make(request.weight, request.target, context, t_min=request.t_min,
                                     t_max=request.t_max, full=full) for request in in_order(requests, kinds)]


def in_order(requests, kinds: dict[str, object] | None = None) -> list[GuideRequest]:
    """``requests`` in the order their guides act, whatever order they were given in: by their kind's stage
    (builtin.WHAT, SHAPE, NOTE; SHAPE when it has none), then name, then text. The same guides make the same sound
    (and the service's same prefetched set) from a recipe, a command line, the Live device or REAPER, however each
    lists them; until 2026-12-04 they acted in the order given, and two orders of one set rendered two sounds."""
    kinds = kinds if kinds is not None else check(requests)  # build has them checked already
    return sorted(requests, key=lambda request: (getattr(kinds[request.name], "stage", SHAPE), request.name,
                                                 request.text))


def check(requests) -> dict[str, object]:
    """The installed guides, after checking that each request names one (ConfigError naming them if not): asked
    before a model is loaded, so a typo costs nothing."""
    kinds = available()
    for request in requests:
        if request.name not in kinds:
            known = ", ".join(sorted(kinds)) or "none installed (run from a source tree? `pip install -e .` " \
                "registers the built-ins' entry points)"
            raise ConfigError(f"no guide named {shown(request.name)}: {known} (dd-bridge guides lists them)")
    return kinds


def with_file_targets_resolved(requests) -> list[GuideRequest]:
    """Requests, checked, whose targets are files (``match``) or name one (a guide's ``resolved(target)``: the
    classifier of ``class``) made absolute, so a stored recipe works from any folder."""
    kinds = check(requests)
    resolved = []
    for request in requests:
        kind = kinds.get(request.name)
        if request.target is not None and getattr(kind, "target_is_file", False):
            request = GuideRequest(request.name, request.weight, str(Path(request.target).expanduser().resolve()),
                                   request.t_min, request.t_max)
        elif request.target is not None and callable(getattr(kind, "resolved", None)):  # a file inside the target
            request = GuideRequest(request.name, request.weight, kind.resolved(request.target), request.t_min,
                                   request.t_max)
        resolved.append(request)
    return resolved


def resolve_mode(mode: str, device_type: str, backend: str) -> str:
    """cheap or full: ``auto`` is full on a CUDA GPU with the torch backend (a backward pass per step is cheap
    there), cheap elsewhere."""
    if mode not in MODES:
        raise ConfigError(f"the guide mode must be one of {', '.join(MODES)}, got {shown(mode)}")
    if mode == "auto":
        return "full" if device_type == "cuda" and backend == "torch" else "cheap"
    return mode
