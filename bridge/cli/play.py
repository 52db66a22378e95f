"""`dd-bridge devices | play`: the audio outputs there are, and hearing files through one of them.

Both load neither torch nor the model (they start in a fraction of a second). The render commands' `--play`
(bridge.cli.render) opens its output with the options defined here.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bridge.cli.arguments import bounded_int
from bridge.engine.audio import Clip
from bridge.errors import BridgeError, ConfigError, PlaybackError
from bridge.playback.output import NoOutput, list_outputs
from bridge.playback.player import Player, latency_setting

log = logging.getLogger(__name__)

# A sound is waited for its own length and this much more (the output's latency and fade, a busy machine) before
# the output counts as stuck: one that stops calling back (an interface unplugged under macOS's CoreAudio) would
# otherwise hold the command for ever.
END_MARGIN_SECONDS = 3.0


def register(subparsers) -> None:
    devices = subparsers.add_parser("devices", help="list the audio output devices",
                                    description="List the audio output devices: index, name, sound system, "
                                                "channels and rate; * marks the default. --audio-out takes the "
                                                "index or a part of the name.")
    devices.set_defaults(run=run_devices)

    play = subparsers.add_parser("play", help="play audio files",
                                 description="Play audio files one after the other (wav, aiff, flac, ogg or mp3).")
    play.add_argument("files", type=Path, nargs="+", metavar="FILE", help="audio files")
    play.add_argument("--velocity", type=bounded_int(1, 127), default=127, metavar="V",
                      help="level as a MIDI velocity, 1..127: 127 is the file's own, 64 about -12 dB "
                           "(default: %(default)s)")
    output_options(play)
    play.set_defaults(run=run_play)


def output_options(parser: argparse.ArgumentParser) -> None:
    """--audio-out and --latency: open_player(args) reads them."""
    parser.add_argument("--audio-out", default=None, metavar="D",
                        help="audio output: an index or a part of a name from `dd-bridge devices` "
                             "(default: the system's default output)")
    parser.add_argument("--latency", type=_latency, default="low", metavar="L",
                        help="output latency: low, high or seconds, e.g. 0.02 (default: %(default)s)")


def _latency(text: str):
    try:
        return latency_setting(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def open_player(args) -> Player:
    """The output the options name, opened (so a missing device is found before anything else is done)."""
    player = Player(args.audio_out, latency=args.latency)
    device = player.open()
    log.info("playing through %s, %d Hz", device.label, device.rate)
    return player


def hear(player: Player, sound: Clip | Path, name: str, velocity: int = 127) -> None:
    """Play one sound to its end (Ctrl-C fades it out and stops); PlaybackError when the output has not played it
    by its length and END_MARGIN_SECONDS."""
    playing = player.play(sound, velocity=velocity)
    log.info("playing %s (%.2f s)", name, playing.seconds)
    waited = playing.seconds + END_MARGIN_SECONDS
    try:
        ended = playing.wait(timeout=waited)
    except KeyboardInterrupt:
        player.stop()
        raise
    if not ended:
        raise PlaybackError(f"the audio output stopped playing: {name} had not ended after {waited:.1f} s")


def run_devices(args) -> int:
    try:
        outputs = list_outputs()
    except NoOutput as error:
        raise PlaybackError(str(error)) from None
    if not outputs:
        raise PlaybackError("no audio output device (is the sound server running?)")
    for device in outputs:
        mark = "*" if device.default else " "
        print(f"{mark} {device.index:3d}  {device.name}  ({device.host_api}, {device.channels} out, "
              f"{device.rate} Hz)", flush=True)
    return 0


def run_play(args) -> int:
    failed = 0
    with open_player(args) as player:
        for path in args.files:
            try:
                hear(player, path, path.name, args.velocity)
            except PlaybackError:
                raise  # the output itself is gone: the next file would fail the same way
            except BridgeError as error:  # this file: say so and play the next
                print(f"dd-bridge play: error: {error}", file=sys.stderr, flush=True)
                failed += 1
    return 1 if failed else 0
