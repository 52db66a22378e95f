"""`dd-bridge repaint | extend`: new material in a time range of a file, or after its end; print the paths.

Files are written as vary writes them (bridge.cli.render): numbered names that never replace a file, each with
the JSON of what made it and the command that makes it again in its WAV comment; paths on stdout, one a line.
Names: "<input stem> repaint 1.000-1.500s 001.wav", "<input stem> ext 2.000s 001.wav" (or "... ext 2 bars
120 bpm 001.wav").
"""

from __future__ import annotations

from pathlib import Path

from bridge import constants, files
from bridge.cli.render import (Steering, _common_options, _engine, _playing, _read, _settings,
                               _write_all, guide_requests, loop_options, region_options, resample_named, resample_option,
                               setting)
from bridge.engine import clips
from bridge.engine.audio import kept_format, read_header
from bridge.engine.regions import Region, clip_options, named, repaint_end
from bridge.engine.tempo import Bars
from bridge.errors import ConfigError
from bridge.progress import Bar


def register(subparsers) -> None:
    repaint = subparsers.add_parser(
        "repaint", help="new material in a time range of an audio file",
        description="Render versions of INPUT whose seconds S to E are new; everything else stays exactly as it "
                    "is, with its length, sample rate and channels (docs/loops.md).")
    repaint.add_argument("input", type=Path, metavar="INPUT", help="audio file: wav, aiff, flac, ogg or mp3")
    repaint.add_argument("--start", type=setting("start"), required=True, metavar="S",
                         help="where the new material starts, in seconds of INPUT")
    repaint.add_argument("--end", type=setting("end"), required=True, metavar="E",
                         help="where it ends (past INPUT's end: its end)")
    repaint.add_argument("--noise", type=setting("noise"), default=1.0, metavar="F",
                         help="1: new material; lower: a variation of what is there (default: %(default)s)")
    resample_option(repaint)
    region_options(repaint, "INPUT's clip (the part of INPUT written, with the range new in it)", prefix="clip_")
    _common_options(repaint, seed=True, keeps_input=True)
    repaint.set_defaults(run=_playing(run_repaint))

    extend = subparsers.add_parser(
        "extend", help="continue an audio file past its end",
        description="Render continuations of INPUT: INPUT exactly as it is, then --seconds T (or --bars N at "
                    "--bpm B) of new material; longer than one model window in overlapping windows. With --start/"
                    "--end, that part of INPUT, continued from its end.")
    extend.add_argument("input", type=Path, metavar="INPUT", help="audio file: wav, aiff, flac, ogg or mp3")
    extend.add_argument("--seconds", type=setting("seconds"), default=None, metavar="T",
                        help="how much to add, in seconds")
    loop_options(extend)
    region_options(extend, "INPUT")
    _common_options(extend, seed=True, keeps_input=True)
    extend.set_defaults(run=_playing(run_extend))


def _keeping(args) -> None:
    """--format, where not given: the default, or wider where INPUT holds more (audio.kept_format)."""
    if args.format is None:
        args.format = kept_format(read_header(args.input)[1], constants.DEFAULT_OUTPUT_FORMAT,
                                  files.printable(args.input.name))


def run_repaint(args) -> int:
    source, region = _read(args.input, Region.of(args.clip_start, args.clip_end))
    _keeping(args)
    if region is None:  # the range against the file first, so a range past its end is named so
        Region(args.start, args.end).frames(source.frames, source.sample_rate, args.input.name)
    end = repaint_end(args.start, args.end, source.seconds, region)
    start_in, end_in = (args.start, end) if region is None else region.inside(args.start, end)
    Region(start_in, end_in).frames(source.frames, source.sample_rate, args.input.name)  # checked before loading
    requests = guide_requests(args)
    engine, model = _engine(args)
    steering = Steering.of(requests, args, engine)
    with Bar(f"repaint {files.printable(args.input.name)}", unit="step") as progress:
        outputs = clips.repaint_clip(engine, source, args.count, start_in, end_in, noise=args.noise, seed=args.seed,
                                     steps=args.steps, sampler=args.sampler, progress=progress,
                                     **resample_named(args), **steering.arguments)
    options = {"start": args.start, "end": end, "noise": args.noise, "count": args.count, "seed": args.seed,
               **clip_options(region), **resample_named(args), **_settings(args), **steering.options}
    stem = files.fitted_stem(lambda name: f"{named(name, region)} repaint {args.start:.3f}-{end:.3f}s",
                             *files.source_stems(args.input.name))
    return _write_all(args, outputs, engine, model, "repaint", stem, [args.input], options)


def run_extend(args) -> int:
    bars = Bars.of(args.bars, args.bpm)
    if (bars is None) == (args.seconds is None):
        raise ConfigError("give how much to add: --seconds T, or --bars N with --bpm B")
    seconds = bars.seconds if bars is not None else args.seconds
    source, region = _read(args.input, Region.of(args.start, args.end))
    _keeping(args)
    requests = guide_requests(args)
    engine, model = _engine(args)
    steering = Steering.of(requests, args, engine)
    with Bar(f"extend {files.printable(args.input.name)}", unit="step") as progress:
        outputs = clips.extend_clip(engine, source, args.count, seconds, seed=args.seed, steps=args.steps,
                                    sampler=args.sampler, progress=progress, **resample_named(args),
                                    **steering.arguments)
    length = {"bars": bars.bars, "bpm": bars.bpm} if bars is not None else {"seconds": args.seconds}
    options = {**length, "count": args.count, "seed": args.seed, **resample_named(args), **_settings(args),
               **steering.options}
    added = bars.label if bars is not None else f"{args.seconds:.3f}s"
    stem = files.fitted_stem(lambda name: f"{named(name, region)} ext {added}", *files.source_stems(args.input.name))
    return _write_all(args, outputs, engine, model, "extend", stem, [args.input], options, [region])
