"""`dd-bridge`: one subcommand per user action; each command group lives in its own module."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading

from bridge import __version__
from bridge.errors import BridgeError, one_line
from bridge.files import printable

# Each module defines register(subparsers), adding its commands with set_defaults(run=function(args) -> int).
COMMAND_MODULES = [
    "bridge.cli.render",  # generate, vary, interpolate
    "bridge.cli.repaint",  # repaint, extend
    "bridge.cli.guides",  # guides
    "bridge.cli.classifier",  # train-classifier
    "bridge.cli.models",  # models, convert
    "bridge.cli.train",  # train, eval, check-memorization
    "bridge.cli.serve",  # serve, send, status
    "bridge.cli.latency",  # bench-latency
    "bridge.cli.bench",  # bench, export-onnx
    "bridge.cli.sheet",  # sheet
    "bridge.cli.data",  # make-drums
    "bridge.cli.play",  # devices, play
    "bridge.cli.pack",  # pack
]

# REAPER runs `send` on every key press: these load only their own module, not the ones that import torch
# (0.3 s instead of 5 s to start on a busy machine).
LIGHT_COMMANDS = {"send": "bridge.cli.serve", "status": "bridge.cli.serve", "devices": "bridge.cli.play",
                  "play": "bridge.cli.play"}

log = logging.getLogger("bridge")


def build_parser(modules: list[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dd-bridge", description="Dance Diffusion variations for your DAW.")
    parser.add_argument("--version", action="version", version=f"dd-bridge {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--quiet", action="store_true", help="only errors on stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules:
        importlib.import_module(name).register(subparsers)
    for command in subparsers.choices.values():  # also after the command: where a producer adds them to a line
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        command.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


TERMINATING = ("SIGTERM", "SIGHUP")  # a service manager or `timeout` stopping us; the terminal closed (not on Windows)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def stop_on_terminate():
    """Within it SIGTERM and SIGHUP stop the command as Ctrl-C does: a KeyboardInterrupt, so every cleanup on the way
    out runs (a file being written leaves no hidden temporary behind, bridge.files) and the command ends with main's
    one line "interrupted" and status 130, instead of being killed mid-write. The handlers before are put back after;
    a signal ignored (nohup) stays ignored. In the main thread only (the one Python delivers signals to)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {}
    for name in TERMINATING:
        number = getattr(signal, name, None)
        # One ignored stays ignored: `nohup dd-bridge pack ...` must go on when the terminal closes
        if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
            before[number] = signal.signal(number, _interrupt)
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)


def _stdout_closed() -> bool:
    """Whether stdout's reader has gone (a pipe closed early): the pipe's write end then polls as an error. Where
    poll is missing (Windows) a broken pipe is taken to be stdout's, as it nearly always is there."""
    import select

    if not hasattr(select, "poll"):
        return True
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError):  # no stdout, or not a file
        return False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser([LIGHT_COMMANDS[command]] if command in LIGHT_COMMANDS else COMMAND_MODULES)
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except BridgeError as error:
        if args.debug:
            raise
        # printable: one line, whatever a path in it holds (a newline in a file's name)
        print(f"dd-bridge {args.command}: error: {printable(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"dd-bridge {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as error:
        if args.debug or not _stdout_closed():  # a socket's or a child's pipe: a failure like any other
            if args.debug:
                raise
            print(f"dd-bridge {args.command}: unexpected error: {type(error).__name__}: {printable(one_line(error))} "
                  "(run with --debug for the traceback)", file=sys.stderr)
            return 1
        # `dd-bridge guides | head`: the reader has what it wanted, and nothing is wrong. Python would complain
        # again while flushing stdout at exit: point it at nothing (what CPython's docs do).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:  # a bug or the machine (out of memory): still one line unless --debug
        if args.debug:
            raise
        print(f"dd-bridge {args.command}: unexpected error: {type(error).__name__}: {printable(one_line(error))} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return 1
