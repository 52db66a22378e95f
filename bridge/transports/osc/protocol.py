"""The OSC address space (docs/osc.md): OSC messages in, validated request values out, and the replies' shape.

Pure functions on (address, args); no sockets and no torch, so it is tested with recorded datagrams. Each
address is one entry of ADDRESSES: its usage line and its parser, side by side.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from bridge import constants
from bridge.daemon import requests as rq
from bridge.daemon.settings import as_int, as_name, as_text, validate
from bridge.engine.tempo import Bars
from bridge.errors import ConfigError

REQUEST_ID = re.compile(r"^#[\w.:-]{1,64}$")
OPTION = re.compile(r"^([a-z_]+)=(.*)$", re.S)
MAX_ERROR = 300  # characters of an error message about a request
TOKEN = "token="  # the shared secret, on any request, anywhere after the request id (docs/osc.md)

# Replies that end a request: a client waiting for one request stops at the first of these.
# The requests that render: minutes of work that a client giving up on them (`dd-bridge send` timed out or
# interrupted) cancels, so that no one's queue waits behind work whose answer no one will read.
RENDERS = ("/dd/vary", "/dd/generate", "/dd/interpolate", "/dd/repaint", "/dd/extend")
FINAL_REPLIES = ("/dd/done", "/dd/ack", "/dd/pong", "/dd/status", "/dd/hello", "/dd/recipes", "/dd/error")
# Addresses only the service sends. /dd/status, /dd/hello and /dd/recipes are requests too: see is_reply.
REPLY_ONLY = ("/dd/done", "/dd/ack", "/dd/pong", "/dd/error", "/dd/progress")


class ProtocolError(ConfigError):
    """A request that does not fit the address space; answered with /dd/error <address> <message>."""

    def __init__(self, address: str, message: str, request_id: str | None = None):
        super().__init__(message)
        self.address = address
        self.request_id = request_id


def split_request_id(args: list) -> tuple[str | None, list]:
    """A request id is a first argument like ``#r17``; replies carry it back."""
    if args and isinstance(args[0], str) and args[0].startswith("#"):
        if not REQUEST_ID.match(args[0]):
            return None, args
        return args[0], list(args[1:])
    return None, list(args)


def split_token(args: list) -> tuple[str | None, list]:
    """The ``token=`` argument's secret, and the arguments without it (the server checks it, the requests never
    see it)."""
    token, rest = None, []
    for arg in args:
        if isinstance(arg, str) and arg.startswith(TOKEN):
            token = arg[len(TOKEN):]
        else:
            rest.append(arg)
    return token, rest


class _Misused(ConfigError):
    """Arguments that do not fit an address's usage line; parse() adds that line to the message."""


def _split_options(address: str, args: list) -> tuple[list, dict]:
    positional, options = [], {}
    for arg in args:
        # A lowercase word then "=" is an option; paths from the DAWs are absolute, so they never look like one.
        match = OPTION.match(arg) if isinstance(arg, str) else None
        if match:
            known = rq.ADDRESS_OPTIONS.get(address, ())
            if not known:
                raise _Misused("takes no key=value options")
            if match.group(1) not in known:
                raise ConfigError(f"unknown option {match.group(1)!r}; known: {', '.join(known)}")
            options[match.group(1)] = match.group(2)
        elif options:
            raise _Misused(f"positional argument {arg!r} after options")
        else:
            positional.append(arg)
    return positional, options


def _arity(args: list, low: int, high: int) -> None:
    if not low <= len(args) <= high:
        raise _Misused(f"takes {low}..{high} arguments, got {len(args)}" if low != high else
                       f"takes {low} argument{'s' * (low != 1)}, got {len(args)}")


def _path(name: str, value) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a file path, not the number {value!r}")
    return as_text(name, value)


def _from_float32(value):
    """OSC floats are 32-bit: 0.3 arrives as 0.30000001192...; keep the 7 digits it carries, as the sender meant."""
    return float(f"{value:.7g}") if isinstance(value, float) else value


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _optional(key: str, args: list, index: int):
    if index >= len(args):
        return None
    return validate(key, args[index])


# One parser per address: (positional arguments, key=value options, request id) -> the request value.

def _bare(kind: type[rq.Request]) -> Callable[[list, rq.Options, str | None], rq.Request]:
    """An address without arguments (/dd/ping, /dd/status, /dd/cancel)."""
    def parse_bare(args: list, options: rq.Options, request_id: str | None) -> rq.Request:
        _arity(args, 0, 0)
        return kind(request_id=request_id)
    return parse_bare


def _cancel(args: list, options: rq.Options, request_id: str | None) -> rq.Cancel:
    """/dd/cancel: all the sender's work (and MIDI's, and the prefetch); request=#ID: only that request of its own."""
    _arity(args, 0, 1)
    if not args:
        return rq.Cancel(request_id=request_id)
    text = args[0]
    if not (isinstance(text, str) and text.startswith("request=") and REQUEST_ID.match(text[len("request="):])):
        raise _Misused(f"cannot read {excerpt(str(text))}: request=#ID, the id of a request of yours")
    return rq.Cancel(request_id=request_id, only=text[len("request="):])


def _hello(args: list, options: rq.Options, request_id: str | None) -> rq.Hello:
    _arity(args, 0, 1)
    port = as_int("port", args[0], 1, constants.MAX_PORT) if args else None
    return rq.Hello(request_id=request_id, port=port)


def _select(args: list, options: rq.Options, request_id: str | None) -> rq.Select:
    _arity(args, 1, 1)
    loop, bars = options.looping
    return rq.Select(request_id=request_id, path=_path("path", args[0]), region=options.region, loop=bool(loop),
                     bars=bars)


def _vary(args: list, options: rq.Options, request_id: str | None) -> rq.Vary:
    # The path may be absent or empty (the selected clip): a leading number is then the count.
    path = None
    if args and not _is_number(args[0]):
        path = args[0].strip() if isinstance(args[0], str) else args[0]
        path = _path("path", path) if path else None
        args = args[1:]
    _arity(args, 0, 2)
    return rq.Vary(request_id=request_id, path=path, count=_optional("count", args, 0),
                   noise=_optional("noise", args, 1), options=options, **_velocity(options))


def _generate(args: list, options: rq.Options, request_id: str | None) -> rq.Generate:
    _arity(args, 0, 2)
    return rq.Generate(request_id=request_id, count=_optional("count", args, 0),
                       seconds=_optional("seconds", args, 1), options=options)


def _interpolate(args: list, options: rq.Options, request_id: str | None) -> rq.Interpolate:
    _arity(args, 2, 3)
    return rq.Interpolate(request_id=request_id, a=_path("a", args[0]), b=_path("b", args[1]),
                          count=_optional("count", args, 2), options=options)


def _repaint(args: list, options: rq.Options, request_id: str | None) -> rq.Repaint:
    _arity(args, 1, 2)
    if options.start is None or options.end is None:
        raise _Misused("needs start= and end= (seconds of the file)")
    return rq.Repaint(request_id=request_id, path=_path("path", args[0]), count=_optional("count", args, 1),
                      options=options)


def _extend(args: list, options: rq.Options, request_id: str | None) -> rq.Extend:
    _arity(args, 1, 3)
    seconds = _optional("seconds", args, 2)
    if (seconds is None) == (options.bars is None and options.bpm is None):
        raise _Misused("needs a length: seconds, or bars= with bpm=")
    Bars.of(options.bars, options.bpm)  # both or neither
    return rq.Extend(request_id=request_id, path=_path("path", args[0]), count=_optional("count", args, 1),
                     seconds=seconds, options=options)


def _set(args: list, options: rq.Options, request_id: str | None) -> rq.Set:
    _arity(args, 2, 2)
    key = args[0]
    if not isinstance(key, str) or key not in rq.SET_KEYS:
        raise ConfigError(f"unknown key {key!r}; keys: {', '.join(rq.SET_KEYS)}")
    if key in ("model", "folder") and _is_number(args[1]):
        raise ConfigError(f"{key} must be a name or path, not the number {args[1]!r}")
    return rq.Set(request_id=request_id, key=key, value=validate(key, args[1]))


def _save_recipe(args: list, options: rq.Options, request_id: str | None) -> rq.SaveRecipe:
    _arity(args, 1, 1)
    return rq.SaveRecipe(request_id=request_id, name=as_name("name", args[0]))


def _keep(args: list, options: rq.Options, request_id: str | None) -> rq.Keep:
    _arity(args, 0, 1)
    return rq.Keep(request_id=request_id, count=_optional("count", args, 0))


def _play(args: list, options: rq.Options, request_id: str | None) -> rq.Play:
    _arity(args, 1, 1)
    return rq.Play(request_id=request_id, path=_path("path", args[0]), **_velocity(options))


def _velocity(options: rq.Options) -> dict:
    """velocity= as the request's own field (MIDI sets the same one); absent: the request's default, full level."""
    return {} if options.velocity is None else {"velocity": options.velocity}


@dataclass(frozen=True)
class Address:
    """One request address: its usage line (quoted by every error about its arguments) and its parser."""

    usage: str
    parse: Callable[[list, rq.Options, str | None], rq.Request]
    options: bool = True  # key=value arguments are options; /dd/set takes its value as it comes


ADDRESSES = {
    "/dd/ping": Address("/dd/ping", _bare(rq.Ping)),
    "/dd/hello": Address("/dd/hello [port]", _hello),
    "/dd/status": Address("/dd/status", _bare(rq.Status)),
    "/dd/cancel": Address("/dd/cancel [request=#ID]", _cancel, options=False),
    "/dd/select": Address("/dd/select <path> [start=S] [end=E] [tail=T] [loop=on [bars=N bpm=B]]", _select),
    "/dd/vary": Address("/dd/vary [path] [count] [noise] [key=value ...]", _vary),
    "/dd/generate": Address("/dd/generate [count] [seconds] [key=value ...]", _generate),
    "/dd/interpolate": Address("/dd/interpolate <a> <b> [count] [key=value ...]", _interpolate),
    "/dd/keep": Address("/dd/keep [count]", _keep),
    "/dd/play": Address("/dd/play <path> [velocity=V]", _play),
    "/dd/repaint": Address("/dd/repaint <path> [count] start=S end=E [clip_start=A clip_end=B] [key=value ...]",
                           _repaint),
    "/dd/extend": Address("/dd/extend <path> [count] [seconds] [bars=N bpm=B] [start=S end=E] [key=value ...]",
                          _extend),
    "/dd/set": Address(f"/dd/set <key> <value> (keys: {', '.join(rq.SET_KEYS)})", _set, options=False),
    "/dd/recipes": Address("/dd/recipes", _bare(rq.Recipes)),
    "/dd/save_recipe": Address("/dd/save_recipe <name>", _save_recipe, options=False),
}


def parse(address: str, args: list) -> rq.Request:
    """The request value for one OSC message, or ProtocolError naming what is wrong and what is allowed."""
    request_id, args = split_request_id(args)
    args = [_from_float32(arg) for arg in args]
    try:
        entry = ADDRESSES.get(address)
        if entry is None:
            raise ConfigError(f"unknown address; known: {', '.join(ADDRESSES)}")
        try:
            args, options = _split_options(address, args) if entry.options else (args, {})
            request = entry.parse(args, rq.Options.parse(options), request_id)
        except _Misused as error:
            raise ConfigError(f"{error}; usage: {entry.usage}") from None
    except ConfigError as error:
        raise ProtocolError(address, excerpt(str(error)), request_id) from None
    return request


def is_reply(address: str, args: list) -> bool:
    """Whether a message (its arguments without request id and token) is one of the service's replies. The service
    never answers one: a reply sent back to it (a reply port that is its own, two services answering each other)
    would otherwise be answered by an error, that error by another, forever. /dd/status, /dd/hello and /dd/recipes
    are requests as well: the first two told apart by what only the reply carries (status's JSON, hello's version
    and run); a recipes reply sent back is answered by one usage error, and errors are never answered."""
    if address in REPLY_ONLY:
        return True
    if address == "/dd/status":
        return len(args) == 1 and isinstance(args[0], str) and args[0].startswith("{")
    if address == "/dd/hello":  # <version> <run>: the run is constants.RUN_ID_HEX hex digits (a request's port is a number)
        return len(args) == 2 and all(isinstance(arg, str) for arg in args) and \
            re.fullmatch(f"[0-9a-f]{{{constants.RUN_ID_HEX}}}", args[1]) is not None
    return False  # /dd/recipes' names come back as a request that takes none: one error, which is never answered


def fitting(address: str, args: list, size: int) -> tuple[str, list]:
    """The reply to send instead of one of ``size`` bytes, too large for a datagram: the client still hears how its
    request ended, in one line. An error is cut short; a /dd/done names how many files and where (it is a final
    reply, so several /dd/done would end a client's wait at the first: the Live device and `dd-bridge send` take
    one); anything else says it was too large."""
    request_id, rest = split_request_id(list(args))
    if address == "/dd/error":
        return address, reply_args(request_id, [excerpt(arg) if isinstance(arg, str) else arg for arg in rest])
    kind = rest[0] if address in ("/dd/done", "/dd/ack") and rest and isinstance(rest[0], str) else None
    about = excerpt(f"/dd/{kind}" if kind else address)
    if address == "/dd/done":
        paths = [str(path) for path in rest[1:]]
        try:
            folder = os.path.commonpath([os.path.dirname(path) for path in paths])
        except ValueError:  # no paths, or relative and absolute ones mixed: the service writes absolute paths
            folder = "the sample folder"
        message = f"{len(paths)} files written in {folder}; the list of their names is too long for one reply"
    else:
        done = "done, but " if address == "/dd/ack" else ""
        message = f"{done}the reply {address} is {size} bytes, more than one datagram holds"
    return "/dd/error", reply_args(request_id, [about, message])


def excerpt(message: str) -> str:
    """A message that quotes a 60 kB argument would not fit in a reply datagram; the start says what is wrong."""
    return message if len(message) <= MAX_ERROR else message[:MAX_ERROR - 5] + " ..."


def reply_args(request_id: str | None, args) -> list:
    """A reply's arguments: the request id first when the request had one."""
    return ([request_id] if request_id else []) + list(args)
