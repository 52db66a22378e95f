"""The guides a render can name, and what a request for one (``NAME=WEIGHT[:TARGET][@TMIN-TMAX]``, read by
``grammar``) makes of them.

Guides are found through the ``dd_bridge.guides`` entry-point group: the built-ins are declared there in
pyproject.toml, and a user's package declares its own the same way (docs/guidance.md, "Your own guide"), so a
guide is shared by installing a package, not by editing this one. An entry point names an object with ``name``,
``unit``, ``summary``, ``target_help`` and ``make(weight, target, context, *, t_min, t_max, full) -> LossGuide``
(``builtin.Measured`` builds one from any differentiable measure), and may have a ``stage`` (``in_order``). A guide
is named in lower case, as requests are read. One that fails to load (whatever it raises, an exit included) is
reported once and left out; the others still work. A plug-in is only loaded when a guide is asked for: an unguided
render never imports one. A plug-in's failure in make() or in its loss is one line naming the guide and its
package (``_made``, ``_answerable``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import sys
import threading
from importlib.metadata import entry_points
from pathlib import Path

import torch

from bridge.engine.guidance import LossGuide
from bridge.engine.guides.builtin import SHAPE, GuideContext
from bridge.engine.guides.grammar import GuideRequest, parse_request  # noqa: F401 (registry.parse_request)
from bridge.errors import BridgeError, Cancelled, ConfigError, described, one_line
from bridge.files import shown

log = logging.getLogger(__name__)

GROUP = "dd_bridge.guides"
PACKAGE = "dd-bridge"  # the distribution whose entry points are the built-ins
MODES = ("auto", "cheap", "full")
_reported: set[str] = set()
# (sys.path, the guides found along it, the distribution of each plug-in among them)
_found: tuple[tuple[str, ...], dict[str, object], dict[str, str]] | None = None
_finding = threading.Lock()


def available() -> dict[str, object]:
    """Every guide the installed packages declare, by name. A built-in's name stays the built-in's; otherwise the
    first package on the path wins. Read once per sys.path (reading every installed package's metadata costs tens
    of ms, and the service checks guides at every knob turn): a package installed while the process runs is found
    once the path changes, or after reload()."""
    return dict(_loaded()[0])


def plug_in(name: str) -> str | None:
    """The distribution a guide of that name comes from when it is a plug-in's; None for a built-in."""
    return _loaded()[1].get(name)


def _loaded() -> tuple[dict[str, object], dict[str, str]]:
    global _found
    path = tuple(sys.path)
    with _finding:
        if _found is None or _found[0] != path:
            _found = (path, *_load())
        return _found[1], _found[2]


def reload() -> None:
    """Read the entry points again at the next available()."""
    global _found
    with _finding:
        _found = None


def _load() -> tuple[dict[str, object], dict[str, str]]:
    kinds: dict[str, object] = {}
    plug_ins: dict[str, str] = {}
    ours = [entry for entry in entry_points(group=GROUP) if _package(entry) == PACKAGE]
    for entry in ours + [entry for entry in entry_points(group=GROUP) if _package(entry) != PACKAGE]:
        # Requests are read in lower case (parse_request): a plug-in's "Loud" is "loud", and one that clashes with
        # a built-in only after lowering ("Brightness") is taken like any other clash, not listed and unreachable.
        name, package = entry.name.lower(), _package(entry) or "an unknown package"
        built_in = package == PACKAGE
        if name in kinds:
            _report(f"{entry.name} {entry.value}", f"guide {name!r} is taken; {entry.value} is ignored"
                                                   f"{'' if built_in else f' (plug-in {package})'}")
            continue
        origin = entry.value if built_in else f"{entry.value}, plug-in {package}"
        try:
            kind = _imported(entry)
        except _LoadFailed as error:  # a user's package: whatever it does, an exit included, the others work
            _report(f"{name} {entry.value}", f"guide {name!r} ({origin}) cannot be loaded: {error}; left out")
            continue
        if not callable(getattr(kind, "make", None)):
            _report(f"{name} {entry.value}", f"guide {name!r} ({origin}) has no make(): not a guide; left out")
            continue
        kinds[name] = kind
        if not built_in:
            plug_ins[name] = package
    return kinds, plug_ins


def _imported(entry):
    """The object an entry point names, imported with its module's prints held back: a plug-in that parses the
    command line at import (argparse) exits with dd-bridge's arguments, and its usage and "unrecognized arguments"
    lines read as dd-bridge's own. On a failure the error is raised with what it said last; on success what it
    printed is passed on."""
    said, printed = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(printed):
            kind = entry.load()
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            raise
        last = next((line.strip() for line in reversed(said.getvalue().splitlines()) if line.strip()), "")
        what = (f"it exited at import (SystemExit: {error.code})" if isinstance(error, SystemExit)
                else described(error))
        raise _LoadFailed(f"{what}{f' after printing {shown(last[:160])}' if last else ''}") from error
    sys.stdout.write(printed.getvalue())
    sys.stderr.write(said.getvalue())
    return kind


class _LoadFailed(Exception):
    """Why a plug-in's entry point could not be imported, in one line."""


def _package(entry) -> str | None:
    return getattr(getattr(entry, "dist", None), "name", None)


def _report(key: str, message: str) -> None:
    if key not in _reported:
        _reported.add(key)
        log.warning("%s", message)


def build(requests, context: GuideContext, *, full: bool = False) -> list[LossGuide]:
    """The guides ``requests`` ask for, in the order they act (``in_order``: a guide of weight 0 is none).
    ConfigError for an unknown name, a target the guide refuses, or a plug-in that fails to make its guide."""
    if not requests:
        return []
    kinds = check(requests)
    return [_made(kinds[request.name], request, context, full) for request in in_order(requests, kinds)]


def _made(kind, request: GuideRequest, context: GuideContext, full: bool) -> LossGuide:
    """The guide ``kind`` makes for ``request``; a plug-in's, with every call into it answered in one line."""
    options = {"t_min": request.t_min, "t_max": request.t_max, "full": full}
    package = plug_in(request.name)
    if package is None:  # a built-in's failure is a bug here: its traceback is wanted (--debug)
        return kind.make(request.weight, request.target, context, **options)
    label = _label(request.name, package)
    guide = _answerable(kind.make, label)(request.weight, request.target, context, **options)
    if not isinstance(guide, LossGuide):
        raise ConfigError(f"{label}: make() gave {type(guide).__name__}, not a LossGuide (docs/guidance.md, "
                          "\"Your own guide\")")
    guide.loss = _answerable(guide.loss, label, per_item=True)
    guide.name = request.name  # as the producer asked for it, in its other lines (a measure that is not finite)
    return guide


def _label(name: str, package: str) -> str:
    return f"guide {name} (plug-in {package})"


def _answerable(call, label: str, *, per_item: bool = False):
    """``call`` with whatever it raises made one line, ``LABEL: ...``: a ConfigError, which the CLI prints as
    one line and the service answers as /dd/error, not "unexpected"/"internal error" with no guide named.
    ``per_item``: a loss, which must give one value per sound of the batch."""

    def answered(*args, **kwargs):
        try:
            result = call(*args, **kwargs)
        except (KeyboardInterrupt, Cancelled):
            raise
        except BridgeError as error:
            raise ConfigError(f"{label}: {one_line(error)}") from error
        except Exception as error:
            raise ConfigError(f"{label}: {described(error)}") from error
        if per_item:  # a scalar for a batch of several, or not a tensor: failed later, in the step, without a name
            if not isinstance(result, torch.Tensor) or result.numel() != args[0].shape[0]:
                got = f"shape {list(result.shape)}" if isinstance(result, torch.Tensor) else type(result).__name__
                raise ConfigError(f"{label}: its loss gave {got} for {args[0].shape[0]} sounds; it must give one "
                                  "value per sound ([B])")
            result = result.reshape(-1)
        return result

    return answered


def in_order(requests, kinds: dict[str, object] | None = None) -> list[GuideRequest]:
    """``requests`` in the order their guides act, whatever order they were given in: by their kind's stage
    (builtin.WHAT, SHAPE, NOTE; SHAPE when it has none), then name, then text. The same guides make the same sound
    (and the service's same prefetched set) from a recipe, a command line, the Live device or REAPER, however each
    lists them; until 2026-12-04 they acted in the order given, and two orders of one set rendered two sounds.

    A guide of weight 0 does not act ("0 is off"), so it is left out, after its name is checked: the render is
    the unguided one to the bit on every sampler (a guide that never acted still dropped v-iplms to order 1 at its
    last step), and its file, its recreating command and the service's prefetch key say unguided, as the MIDI
    knob's 0 already did."""
    if not requests:
        return []  # nothing asked: no plug-in is loaded (one that exits at import cannot stop a plain render)
    kinds = kinds if kinds is not None else check(requests)  # build has them checked already
    return sorted((request for request in requests if request.weight != 0),
                  key=lambda request: (_stage(kinds[request.name]), request.name, request.text))


def _stage(kind) -> float:
    """A kind's ``stage``; SHAPE when it has none, or None, or not a number (a plug-in's: docs say it may)."""
    stage = getattr(kind, "stage", None)
    if isinstance(stage, bool) or not isinstance(stage, (int, float)) or not math.isfinite(stage):
        return SHAPE
    return stage


def check(requests) -> dict[str, object]:
    """The installed guides, after checking that each request names one (ConfigError naming them if not): asked
    before a model is loaded, so a typo costs nothing. No request: {}, and no plug-in loaded."""
    requests = list(requests)
    if not requests:
        return {}
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
            package = plug_in(request.name)
            resolve = kind.resolved if package is None else _answerable(kind.resolved, _label(request.name, package))
            request = GuideRequest(request.name, request.weight, resolve(request.target), request.t_min,
                                   request.t_max)
        resolved.append(request)
    return resolved


def resolve_mode(mode: str, device_type: str, backend: str) -> str:
    """cheap or full: ``auto`` is full on a CUDA GPU with the torch backend (a backward pass per step is cheap
    there), cheap elsewhere. The full mode's backward pass takes several times the memory per output; the
    engine's plan counts it (memory.bytes_per_sample, Engine.check_length and batch_size with ``full``)."""
    if mode not in MODES:
        raise ConfigError(f"the guide mode must be one of {', '.join(MODES)}, got {shown(mode)}")
    if mode == "auto":
        return "full" if device_type == "cuda" and backend == "torch" else "cheap"
    return mode
