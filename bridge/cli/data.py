"""`dd-bridge make-drums`: training one-shots rendered from a General MIDI soundfont, taken from a sample library
a Debian package installs or a public-domain collection cloned by the user (bridge/training/libraries.py), or
synthesised here (bridge/training/synth_drums.py), with their licence."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bridge.errors import BridgeError

log = logging.getLogger(__name__)
# The sample libraries' names (bridge.training.libraries.SOURCES, checked by a test): the parser knows them
# without importing the audio stack.
LIBRARY_NAMES = ("sonic-pi", "exadrums", "open-source-drumkit", "muldjordkit")
SYNTH = "synth"  # drums synthesised by bridge/training/synth_drums.py
SYNTH_COUNT = 40  # synth_drums.COUNT, checked by a test


def _velocities(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected velocities separated by commas, got {text!r}") from None
    if not values or not all(1 <= v <= 127 for v in values):
        raise argparse.ArgumentTypeError(f"velocities must be in 1..127, got {text!r}")
    return values


def _given(*flags: tuple[str, object]) -> list[str]:
    """The names of the (name, value) pairs whose value was given on the command line."""
    return [name for name, value in flags if value is not None and value is not False]


def register(subparsers) -> None:
    make = subparsers.add_parser(
        "make-drums", help="one-shots for training: a GM soundfont's drum kits, a sample library's drums, or "
                           "drum-machine sounds synthesised here",
        description="SOUNDFONT (an .sf2 or .sf3 file): render every drum kit (bank 128) with FluidSynth: each GM "
                    "percussion key (35-81) at each velocity, dry, 48 kHz 16-bit WAV, from the onset to the end of "
                    "the ring (at most 0.75 s, faded), named '<kit> <key name> v<velocity>.wav', each peaking at "
                    "-1 dBFS. Silent keys and copies (a hit another kit gave, a velocity only louder) are skipped. "
                    "Needs the fluidsynth program. "
                    f"LIBRARY ({', '.join(LIBRARY_NAMES)}): the drums of a sample library a Debian package "
                    "installs, each labelled by a table of what its spectrogram and envelope show it to be, or of "
                    "a collection you cloned (open-source-drumkit, public domain; muldjordkit, CC-BY-4.0, its "
                    "microphones mixed to stereo; --root DIR), labelled by its folders, cut and levelled the "
                    "same way into DIR/<class>/<name>.wav, the layout train-classifier reads. "
                    f"{SYNTH}: --count one-shots of each class (kick, snare, hat, tom, cymbal, clap, perc) "
                    "synthesised from sines, square waves and noise as drum machines make them, in the same "
                    "layout, CC0 (no recording in them; the same --seed makes the same files). "
                    "Files already in DIR are kept. DIR/LICENCE.md records the source and its licence (a "
                    "package's copyright file or a collection's README, verbatim).")
    make.add_argument("source", metavar="SOUNDFONT|LIBRARY|synth",
                      help=f"an .sf2 or .sf3 file, a sample library ({', '.join(LIBRARY_NAMES)}), or {SYNTH}")
    make.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the one-shots")
    make.add_argument("--velocities", type=_velocities, default=None, metavar="V,V,...",
                      help="MIDI velocities to render (default: 60,120)")
    make.add_argument("--seconds", type=float, default=None, metavar="S",
                      help="the longest a hit may ring, cut with a fade (default: 0.75)")
    make.add_argument("--kit", action="append", default=None, metavar="NAME",
                      help="only this kit, by name or program number (repeat for more; default: every kit)")
    make.add_argument("--variants", action="store_true",
                      help="also the numbered variants of a kit ('Standard 1' ... 'Standard 7')")
    make.add_argument("--root", type=Path, default=None, metavar="DIR",
                      help="LIBRARY only: a folder its .deb was extracted into (dpkg-deb -x PACKAGE.deb DIR) "
                           "instead of the installed package; open-source-drumkit, muldjordkit: the clone of its "
                           "repository")
    make.add_argument("--count", type=int, default=None, metavar="N",
                      help=f"{SYNTH} only: sounds a class (default: {SYNTH_COUNT})")
    make.add_argument("--seed", type=int, default=None, metavar="K", help=f"{SYNTH} only: the random settings' seed "
                      "(default: 0)")
    make.set_defaults(run=run_make_drums)


def run_make_drums(args: argparse.Namespace) -> int:
    from bridge.training import drums

    max_seconds = drums.MAX_HIT_SECONDS if args.seconds is None else args.seconds
    synth_only = _given(("--count", args.count), ("--seed", args.seed))
    if args.source == SYNTH:
        made = _make_synth(args)
        copies = None
    elif synth_only:
        raise BridgeError(f"{', '.join(synth_only)}: for {SYNTH}, not {args.source}")
    elif args.source in LIBRARY_NAMES:
        made = _make_library(args, max_seconds)
        copies = "the same recording under two names"
    else:
        if args.root is not None:
            raise BridgeError(f"--root is for a sample library ({', '.join(LIBRARY_NAMES)}), not a soundfont")

        def progress(number, total, kit):
            log.info("kit %d/%d: %s (program %d)", number, total, kit.name, kit.program)

        made = drums.make(Path(args.source), args.out, velocities=args.velocities or drums.VELOCITIES,
                          max_seconds=max_seconds, variants=args.variants, only=args.kit, progress=progress)
        copies = "another kit's hit, or a velocity only louder"
    for path in made.written:
        print(path)
    size = sum(p.stat().st_size for p in made.written + made.existing)
    skipped = f"skipped {made.silent} silent and {made.duplicates} copies ({copies}); " if copies else ""
    log.info("%d one-shots written, %d already there; %s%.1f MiB in %s", len(made.written), len(made.existing),
             skipped, size / 2**20, args.out)
    if made.failed:
        log.error("%d failed: %s", len(made.failed), "; ".join(made.failed))
        return 1
    return 0


def _make_synth(args: argparse.Namespace):
    from bridge.training import synth_drums

    others = _given(("--velocities", args.velocities), ("--kit", args.kit), ("--variants", args.variants),
                    ("--root", args.root), ("--seconds", args.seconds))
    if others:
        raise BridgeError(f"{', '.join(others)}: not for {SYNTH} (it takes --count and --seed)")
    return synth_drums.make(args.out, count=SYNTH_COUNT if args.count is None else args.count,
                            seed=0 if args.seed is None else args.seed,
                            progress=lambda number, total, label: log.info("class %d/%d: %s", number, total, label))


def _make_library(args: argparse.Namespace, max_seconds: float):
    from bridge.training import libraries

    soundfont_only = _given(("--velocities", args.velocities), ("--kit", args.kit), ("--variants", args.variants))
    if soundfont_only:
        raise BridgeError(f"{', '.join(soundfont_only)}: for a soundfont, not the sample library {args.source}")
    return libraries.make(args.source, args.out, root=args.root or Path("/"), max_seconds=max_seconds,
                          progress=lambda number, total, sample: log.debug("%d/%d: %s", number, total, sample.file))
