"""`dd-bridge make-drums`: training one-shots rendered from a General MIDI soundfont, with their licence."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def _velocities(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected velocities separated by commas, got {text!r}") from None
    if not values or not all(1 <= v <= 127 for v in values):
        raise argparse.ArgumentTypeError(f"velocities must be in 1..127, got {text!r}")
    return values


def register(subparsers) -> None:
    make = subparsers.add_parser(
        "make-drums", help="render a GM soundfont's drum kits into one-shots for training",
        description="Render every drum kit of SOUNDFONT (bank 128) with FluidSynth: each GM percussion key (35-81) "
                    "at each velocity, dry, 48 kHz 16-bit WAV, from the onset to the end of the ring (at most "
                    "0.75 s, faded), named '<kit> <key name> v<velocity>.wav', each peaking at -1 dBFS. Silent keys "
                    "and copies (a hit another kit gave, a velocity only louder) are skipped; files already in DIR "
                    "are kept. DIR/LICENCE.md records the font and its Debian package's licence. "
                    "Needs the fluidsynth program.")
    make.add_argument("soundfont", type=Path, metavar="SOUNDFONT", help="an .sf2 or .sf3 file")
    make.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the one-shots")
    make.add_argument("--velocities", type=_velocities, default=None, metavar="V,V,...",
                      help="MIDI velocities to render (default: 60,120)")
    make.add_argument("--seconds", type=float, default=None, metavar="S",
                      help="the longest a hit may ring, cut with a fade (default: 0.75)")
    make.add_argument("--kit", action="append", default=None, metavar="NAME",
                      help="only this kit, by name or program number (repeat for more; default: every kit)")
    make.add_argument("--variants", action="store_true",
                      help="also the numbered variants of a kit ('Standard 1' ... 'Standard 7')")
    make.set_defaults(run=run_make_drums)


def run_make_drums(args: argparse.Namespace) -> int:
    from bridge.training import drums

    def progress(number, total, kit):
        log.info("kit %d/%d: %s (program %d)", number, total, kit.name, kit.program)

    made = drums.make(args.soundfont, args.out, velocities=args.velocities or drums.VELOCITIES,
                      max_seconds=drums.MAX_HIT_SECONDS if args.seconds is None else args.seconds,
                      variants=args.variants, only=args.kit, progress=progress)
    for path in made.written:
        print(path)
    size = sum(p.stat().st_size for p in made.written + made.existing)
    log.info("%d one-shots written, %d already there; skipped %d silent keys and %d copies (another kit's hit, "
             "or a velocity only louder); %.1f MiB in %s", len(made.written), len(made.existing), made.silent,
             made.duplicates, size / 2**20, args.out)
    if made.failed:
        log.error("%d kits failed: %s", len(made.failed), "; ".join(made.failed))
        return 1
    return 0
