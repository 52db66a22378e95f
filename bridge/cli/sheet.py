"""`dd-bridge sheet`: a contact sheet of spectrograms, to see what a model does to sounds or what a folder holds.

Render mode (`--source` and/or `--generate`): one row per source, the source first, then `--count` variations at
each `--noise` level; then a row of `--generate` new sounds. The renders go through the same code as
`dd-bridge vary` and `generate`, one seed per tile, so every tile's title names the seed and noise with which
`dd-bridge vary SOURCE --noise F --seed S --count 1` (or `generate --seed S --count 1`) makes that sound as a file.
The same seeds are used at every noise level, so a column differs from its neighbours by the noise alone.

Files mode (FILE or FOLDER arguments): the spectrograms of audio files as they are, e.g. a folder of results.

The picture goes to --out (.png, .svg or .pdf); an existing file is never replaced. Its path goes to stdout.
"""

from __future__ import annotations

import random
from pathlib import Path

from bridge.cli import render
from bridge.cli.arguments import bounded_int
from bridge.constants import NEW_SOUND, RANDOM_SEEDS, VARIATION, sampler_for
from bridge.engine import clips
from bridge.engine.audio import read_audio
from bridge.engine.seeds import series
from bridge.errors import ConfigError
from bridge.pictures import FORMATS, SheetLayout, Tile, check_output, contact_sheet, require
from bridge.progress import Bar
from bridge.training.data import scan

DEFAULT_NOISE_LEVELS = "0.3,0.5,0.8"
_LAYOUT = SheetLayout()
MAX_TILES = 96  # beyond this a sheet is too small to read: look at a folder in parts


def register(subparsers) -> None:
    sheet = subparsers.add_parser(
        "sheet", help="a contact sheet of spectrograms: a model's variations and new sounds, or audio files",
        description="Draw spectrograms (time in s, log frequency 20 Hz-24 kHz, a fixed dBFS colour scale) with a "
                    "level strip under each. With --source/--generate: render variations of each source at each "
                    "noise level and new sounds, one row per source. With FILES: draw those files (folders are "
                    "searched for audio).")
    sheet.add_argument("files", type=Path, nargs="*", metavar="FILE",
                       help="audio files or folders to draw as they are (files mode)")
    sheet.add_argument("--out", type=Path, required=True, metavar="PICTURE",
                       help=f"the picture to write: {', '.join(FORMATS)} (never replaces a file)")
    sheet.add_argument("--source", type=Path, action="append", default=[], metavar="FILE",
                       help="a sound to vary; repeat for more rows (render mode)")
    sheet.add_argument("--noise", type=render.noise_levels, default=render.noise_levels(DEFAULT_NOISE_LEVELS),
                       metavar="F,F",
                       help=f"noise levels, one group of variations each (default: {DEFAULT_NOISE_LEVELS})")
    sheet.add_argument("--count", type=bounded_int(1, 16), default=3, metavar="N",
                       help="variations per source and noise level (default: %(default)s)")
    sheet.add_argument("--generate", type=bounded_int(0, 32), default=0, metavar="K",
                       help="a row of K new sounds from the model alone (default: %(default)s)")
    sheet.add_argument("--seconds", type=render.setting("seconds"), default=None, metavar="T",
                       help="length of the new sounds in seconds (default: the model's window)")
    sheet.add_argument("--seed", type=render.setting("seed"), default=None, metavar="K",
                       help="tiles use seeds K, K+1, ...: the same command draws the same sheet "
                            "(default: a fresh K, shown in the title)")
    render.model_options(sheet)
    sheet.add_argument("--columns", type=bounded_int(1, 32), default=6, metavar="C",
                       help="tiles per row in files mode (default: %(default)s)")
    sheet.add_argument("--dpi", type=bounded_int(30, 600), default=100, metavar="D",
                       help=f"pixels per inch of a .png; a tile takes {_LAYOUT.width + _LAYOUT.gap:.1f} x "
                            f"{_LAYOUT.row:.1f} inches "
                            "(default: %(default)s)")
    sheet.set_defaults(run=run_sheet)


def run_sheet(args) -> int:
    require()
    out = check_output(args.out)
    rendering = bool(args.source or args.generate)
    if rendering and args.files:
        raise ConfigError("give FILES to draw, or --source/--generate to render, not both")
    if rendering:
        rows, title = _render_rows(args)
    elif args.files:
        rows, title = _file_rows(args.files, args.columns), None
    else:
        raise ConfigError("nothing to draw: give audio FILES or folders, or --source FILE and/or --generate K")
    path = contact_sheet(out, rows, title=title, dpi=args.dpi)
    print(path.resolve(), flush=True)
    return 0


def _file_rows(paths: list[Path], columns: int) -> list[list[Tile]]:
    files = list(dict.fromkeys(file for path in paths for file in scan([path])))  # in the order given
    if not files:
        raise ConfigError(f"no audio files in {', '.join(map(str, paths))}")
    if len(files) > MAX_TILES:
        raise ConfigError(f"{len(files)} audio files: a sheet shows at most {MAX_TILES}; draw fewer at a time")
    tiles = [Tile(path.name, read_audio(path)) for path in files]
    return [tiles[i:i + columns] for i in range(0, len(tiles), columns)]


def _render_rows(args) -> tuple[list[list[Tile]], str]:
    tiles = len(args.source) * (1 + len(args.noise) * args.count) + args.generate
    if tiles > MAX_TILES:
        raise ConfigError(f"{tiles} tiles: a sheet shows at most {MAX_TILES}; fewer sources, noise levels or --count")
    sources = [(path, read_audio(path)) for path in args.source]  # every file read before the long work starts
    base = args.seed if args.seed is not None else random.SystemRandom().randrange(RANDOM_SEEDS)
    new_sampler = sampler_for(args.sampler, kind=NEW_SOUND)  # the new sounds' row: as `generate` makes them
    engine, _model = render.open_engine(args, kind=VARIATION)  # args.sampler: the variations'
    common = {"steps": args.steps, "sampler": args.sampler}
    rows = []
    for path, clip in sources:
        seeds = series(base, args.count)  # one per tile
        row = [Tile(f"{path.name} (source)", clip)]
        for noise in args.noise:
            with Bar(f"sheet: {path.name} at noise {noise:g}", unit="step") as progress:
                outputs = clips.vary_clip(engine, clip, args.count, noise=noise, seed=seeds, progress=progress,
                                          **common)
            row += [Tile(f"noise {noise:g} · seed {seed}", output) for seed, output in zip(seeds, outputs)]
        rows.append(row)
    if args.generate:
        seeds = series(base, args.generate)
        with Bar("sheet: new sounds", unit="step") as progress:
            outputs = clips.generate_clips(engine, args.generate, args.seconds, seed=seeds, progress=progress,
                                           **{**common, "sampler": new_sampler})
        rows.append([Tile(f"generated · seed {seed}", output) for seed, output in zip(seeds, outputs)])
    used = [args.sampler] if args.source else []
    if args.generate and new_sampler not in used:
        used.append(f"new sounds {new_sampler}" if used else new_sampler)
    title = f"{engine.card.name} · {', '.join(used)}, {args.steps} steps · --seed {base}"
    return rows, title
