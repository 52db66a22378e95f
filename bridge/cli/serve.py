"""`dd-bridge serve | send | status`: the service and the small clients that talk to it.

`send` is what REAPER's scripts run (docs/osc.md): one request, its final reply printed, exit 0 on success,
1 on /dd/error, 3 when no reply came (the service is not running); `--result FILE` for callers that cannot read
a pipe.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path

from bridge import constants, files
from bridge.daemon.config import add_flags, config_path, load_config
from bridge.daemon.settings import GUIDE_SEPARATOR
from bridge.engine.guides import grammar
from bridge.errors import BridgeError
from bridge.logs import RepeatedLines

log = logging.getLogger(__name__)

EXIT_OK, EXIT_ERROR, EXIT_NO_REPLY = 0, 1, 3
FILE_SUFFIXES = (".wav", ".wave", ".aif", ".aiff", ".flac", ".ogg", ".mp3", ".ckpt", ".pt", ".pth", ".safetensors",
                 ".yaml", ".yml")  # words with these endings are files even before they exist
NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
DOOR_HELD_S = 2.0  # a request (or a write) in hand this long is waiting on something (a disk): `status` says so
GUIDANCE = ("guide", "recipe")  # options and /dd/set keys whose values may name files (docs/osc.md, Guidance)


def register(subparsers) -> None:
    serve = subparsers.add_parser(
        "serve", help="run the service: OSC and MIDI triggers, variations rendered ahead",
        description="Keep one model warm and answer OSC (docs/osc.md) and MIDI; results go to the sample folder. "
                    f"Settings come from {config_path()} (every key documented in bridge/daemon/config.py); "
                    "these flags override it.")
    serve.add_argument("--config", type=Path, default=None, metavar="FILE", help="config file to read instead")
    add_flags(serve)  # --model, --osc-port, --folder, ...: one per key that has a flag in the config table
    serve.set_defaults(run=run_serve)

    send = subparsers.add_parser(
        "send", help="send one OSC request to the service and print its reply",
        description="Send ADDRESS ARGS... with a fresh request id and wait for the reply. Exit 0 on success "
                    "(/dd/done: one path a line), 1 on /dd/error, 3 when no reply came before the timeout.")
    _client_options(send)
    send.add_argument("--result", type=Path, default=None, metavar="FILE",
                      help="also write the outcome to FILE (line 1: done, ok or error) and progress to FILE.progress")
    send.add_argument("address", help="e.g. /dd/vary")
    send.add_argument("args", nargs=argparse.REMAINDER, help="arguments; numbers are sent as numbers, paths as text")
    send.set_defaults(run=run_send)

    status = subparsers.add_parser("status", help="what the running service is doing",
                                   description="Model, device, queue, prefetch and recent renders of the service.")
    _client_options(status)
    status.add_argument("--json", action="store_true", help="print the raw JSON")
    status.set_defaults(run=run_status)


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=constants.OSC_HOST, help="where the service listens (default: %(default)s)")
    parser.add_argument("--port", type=int, default=constants.OSC_PORT, help="its OSC port (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="seconds to wait without any reply or progress (default: %(default)s)")
    parser.add_argument("--token", default=None, metavar="SECRET",
                        help="the service's osc.token: needed from another user or machine, not from your own")


# -- serve ---------------------------------------------------------------------------------------------------------
def run_serve(args) -> int:
    from bridge.daemon.app import App

    config = load_config(args.config).with_flags(args)
    # A flood of bad requests must not fill the disk with warnings. The filter is taken off again when the service
    # stops: a handler outlives one `serve` when main() runs in-process (tests), and must not drop later lines.
    handlers, repeated = list(logging.getLogger().handlers), RepeatedLines()
    for handler in handlers:
        handler.addFilter(repeated)
    try:
        app = App(config)
        app.serve(ready=lambda: _say_ready(app))
    finally:
        for handler in handlers:
            handler.removeFilter(repeated)
    if app.still_rendering:  # inside one model call: torch aborts if the interpreter is torn down under it
        logging.shutdown()
        sys.stdout.flush()
        os._exit(EXIT_OK)  # all is done: files finished, staging emptied, clients told
    return EXIT_OK


def _say_ready(app) -> None:
    from bridge.engine.catalogue import demo_model_hint

    config, server, info = app.config, app.server, app.service.renderer.info
    if config.osc_host != "127.0.0.1":
        log.warning("listening on %s: other machines on the network can send requests with the token",
                    config.osc_host)
    log.info("listening for OSC on %s:%d%s", server.host, server.port,
             f" (replies also to 127.0.0.1:{config.reply_port})" if config.reply_port else "")
    log.info("model: %s (%s parameters, %d Hz) on %s, %s", info.name, f"{info.parameters:,}", info.sample_rate,
             info.device, info.precision)
    if info.name == constants.DEFAULT_MODEL:
        log.info("note: %s", demo_model_hint())
    log.info("sample folder: %s", app.service.folder)
    log.info("config: %s", config.source or f"defaults ({config_path()} not found)")
    log.info("ready; Ctrl-C stops")


# -- send / status ---------------------------------------------------------------------------------------------------
def osc_arguments(address: str, words: list[str]) -> list:
    """The command line's words as OSC sends them; `/dd/set guide|recipe VALUE` takes VALUE as guide=|recipe=."""
    if address == "/dd/set" and len(words) == 2 and words[0] in GUIDANCE:
        return [words[0], guidance_value(words[0], words[1])]
    if address == "/dd/save_recipe":
        return list(words)  # a name, whatever it looks like: "007" stays "007", as the recipe menu sends it
    return [osc_argument(word) for word in words]


def osc_argument(text: str):
    """A command-line word as OSC sends it: paths made absolute (the service has its own working folder), numbers
    as numbers, the rest as text."""
    if text.startswith("token="):
        return text  # a secret, never a path, whatever characters it has
    if text.startswith("folder="):
        return "folder=" + os.path.abspath(os.path.expanduser(text[7:]))
    key, equals, value = text.partition("=")
    if equals and key in GUIDANCE:
        return f"{key}={guidance_value(key, value)}"
    if os.path.exists(text) or os.sep in text or Path(text).suffix.lower() in FILE_SUFFIXES:
        return os.path.abspath(os.path.expanduser(text))
    if NUMBER.match(text):
        return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)
    return text


def guidance_value(key: str, value: str) -> str:
    """guide=: each guide's file target (match=1:other.wav) made absolute; recipe=: a file made absolute, a name
    left as it is. Only words that look like files (a folder in them, an audio or YAML ending) are paths here: a
    recipe's name, a note (A1) or a time (0.3s) is never taken for one."""
    if key == "recipe":
        return _absolute(value) if grammar.names_a_file(value) else value
    guides = []
    for guide in value.split(GUIDE_SEPARATOR):
        span = grammar.target_span(guide)
        if span and _looks_like_file(guide[span[0]:span[1]]):
            guide = guide[:span[0]] + _absolute(guide[span[0]:span[1]]) + guide[span[1]:]
        guides.append(guide)
    return GUIDE_SEPARATOR.join(guides)


def _looks_like_file(text: str) -> bool:
    """A folder in it, or an ending of a file a guide's target names (audio, a classifier)."""
    return any(sep in text for sep in (os.sep, os.altsep) if sep) or Path(text).suffix.lower() in FILE_SUFFIXES


def _absolute(text: str) -> str:
    return os.path.abspath(os.path.expanduser(text.strip()))


def write_atomically(path: Path, text: str) -> None:
    """A reader (a REAPER script polling) sees the old text or the new, never half; not synced: rewritten often."""
    files.replace_file(path, text.encode("utf-8"), sync=False)


def run_send(args) -> int:
    from bridge.transports.osc import protocol
    from bridge.transports.osc.client import OscClient

    arguments = osc_arguments(args.address, args.args)
    result = args.result.resolve() if args.result else None
    progress_file = result.with_name(result.name + ".progress") if result else None

    def on_progress(fraction: float) -> None:
        if progress_file:
            try:
                write_atomically(progress_file, f"{fraction:.2f}\n")
            except OSError:  # best effort: on Windows a REAPER poll holding the file open refuses the replace,
                pass         # and a lost percentage must not lose the answer the script is waiting for

    renders = args.address in protocol.RENDERS
    with OscClient(args.host, args.port, token=args.token) as client:
        try:
            reply = client.request(args.address, arguments, timeout=args.timeout, on_progress=on_progress)
        except KeyboardInterrupt:  # Ctrl-C: the render is given up, not left to hold the queue for no one
            if renders and client.last_request_id:
                client.cancel(client.last_request_id)
            raise
        cancelled = renders and reply is None and client.cancel(client.last_request_id)
    if reply is None:  # REAPER's Follow selection reads "no reply" as the service gone (tests/cli: kept as it is)
        message = (f"no reply from the service at {args.host}:{args.port} within {args.timeout:g} s "
                   "(is `dd-bridge serve` running?)")
        if cancelled:  # it is running, but the request waited that long (behind another) or rendered silently
            message = (f"no answer from the service at {args.host}:{args.port} within {args.timeout:g} s; the "
                       "request is cancelled (a longer --timeout waits for it)")
        lines, code = ["error", message], EXIT_NO_REPLY
        print(f"dd-bridge send: {message}", file=sys.stderr)
    elif not reply.ok:
        message = " ".join(map(str, reply.args[1:])) or "failed"
        lines, code = ["error", message], EXIT_ERROR
        print(f"dd-bridge send: {message}", file=sys.stderr)
    elif reply.address == "/dd/done":
        paths = [str(arg) for arg in reply.args[1:]]
        lines, code = ["done", *paths], EXIT_OK
        for path in paths:
            print(path)
    elif reply.address == "/dd/recipes":  # one name a line: a recipe's name may hold spaces
        names = [str(arg) for arg in reply.args]
        lines, code = ["ok", *names], EXIT_OK
        for name in names:
            print(name)
    else:
        words = [str(arg) for arg in reply.args]
        lines, code = ["ok", *words], EXIT_OK
        print(" ".join(words))
    if result:
        write_atomically(result, "\n".join(lines) + "\n")
        try:
            progress_file.unlink(missing_ok=True)
        except OSError:  # the same poll, once more: the answer is written, the script reads it
            pass
    return code


def run_status(args) -> int:
    from bridge.transports.osc.client import OscClient

    with OscClient(args.host, args.port, token=args.token) as client:
        reply = client.request("/dd/status", timeout=args.timeout)
    if reply is None:
        message = f"no reply from the service at {args.host}:{args.port} (is `dd-bridge serve` running?)"
        print(f"dd-bridge status: {message}", file=sys.stderr)
        return EXIT_NO_REPLY
    if not reply.ok:
        raise BridgeError(" ".join(map(str, reply.args[1:])))
    status = json.loads(reply.args[0])
    print(json.dumps(status, indent=2) if args.json else describe_status(status))
    return EXIT_OK


def _region_text(region: dict | None) -> str:
    if not region:
        return ""
    tail = f", tail {region['tail']:g} s" if region.get("tail") else ""
    return f" ({region['start']:.3f}-{region['end']:.3f} s{tail})"


def _audio_text(audio: dict) -> str:
    """The output as it is now, or why there is none; the blocks it played late (each a crackle), when any."""
    text = audio.get("output") or (f"no output ({audio['error']})" if audio.get("error") else "no output open")
    if audio.get("retry_seconds") is not None and not audio.get("output"):
        retry = audio["retry_seconds"]
        text += f"; tried again at the next press{f' after {retry:g} s' if retry else ''}"
    return text + (f", {audio['underruns']} underruns" if audio.get("underruns") else "")


def _midi_text(midi: dict | None) -> str:
    """The port as it is now: a controller unplugged reads "waiting for it"."""
    if not midi or not midi.get("port"):
        return "off"
    channel = midi.get("channel", "all")
    text = f"{midi['port']}{'' if midi.get('connected', True) else ' (not connected: waiting for it)'}; channel "
    text += f"{channel}, {midi.get('received', 0)} messages"
    return text + (f", {midi['other_channel']} on other channels" if midi.get("other_channel") else "")


def _door_lines(door: dict | None) -> list[str]:
    """A line when requests wait at the door or one has been in hand a while (a disk not answering), else none."""
    if not door:
        return []
    held = door.get("in_hand_seconds") or 0
    if not door.get("waiting") and held < DOOR_HELD_S and not door.get("refused"):
        return []
    text = f"{door.get('waiting', 0)} waiting"
    if door.get("in_hand") and held >= DOOR_HELD_S:
        text = f"{door['in_hand']} in hand for {held:g} s (a disk not answering?); " + text
    return [f"requests   {text}" + (f", {door['refused']} turned away (busy)" if door.get("refused") else "")]


def _writing_lines(status: dict) -> list[str]:
    """A line when one file has been in writing a while: its disk (a network share) is not answering."""
    held = status.get("writing_seconds") or 0
    if not status.get("writing") or held < DOOR_HELD_S:
        return []
    return [f"writing    to {status['writing']} for {held:g} s (its disk is not answering?); the files after it wait"]


def describe_status(status: dict) -> str:
    settings = status.get("settings", {})
    running = status.get("running")
    lines = [
        f"model      {status['model']} ({status['model_hash'][:12]}) on {status['device']}, {status['precision']}"
        + (f"; longest clip {status['longest_seconds']} s" if "longest_seconds" in status else ""),
        f"folder     {status['folder']}",
        f"settings   noise {settings.get('noise')}  steps {settings.get('steps')}  sampler {settings.get('sampler')}"
        f"  count {settings.get('count')}  seed {settings.get('seed') if settings.get('seed') is not None else 'random'}"
        f"  prefetch {settings.get('prefetch')}",
        f"selected   {status.get('selected') or '-'}{_region_text(status.get('selected_region'))}",
        f"audio      {_audio_text(status.get('audio') or {})}; audition "
        f"{'on' if settings.get('audition') else 'off'}, {(status.get('audio') or {}).get('held', 0)} held to keep",
        f"midi       {_midi_text(status.get('midi'))}",
        *_door_lines(status.get("door")),
        *_writing_lines(status),
        f"working    {running['kind'] + ' ' + format(running['progress'], '.0%') if running else 'idle'}; "
        f"{status['queue']} queued ({status['queued_outputs']} outputs)",
    ]
    for path, count in status.get("prefetched", {}).items():
        lines.append(f"prefetched {count} of {Path(path).name}")
    if status.get("last_error"):
        lines.append(f"last error {status['last_error']}")
    for render in status.get("recent", []):
        lines.append(f"recent     {render['path']}  ({'prefetched' if render['prefetched'] else 'rendered'}, "
                     f"{render['render_s']:.2f} s)")
    return "\n".join(lines)
