"""`dd-bridge generate | vary | interpolate`: render to WAV files, print their paths.

Outputs go to --out (default: the current folder) under numbered names that never replace a file:
"<input stem> var 001.wav", "<model name> 001.wav", "<a stem> to <b stem> 001.wav"; with --start/--end the stem
shows the region: "<input stem> 1.000-1.200s var 001.wav". Stems are made safe by bridge.files.source_stems: no
control characters, so one path is always one line, and cut to fit the file system. Each written path goes to
stdout, one a line; progress and logs go to stderr. Each file's WAV comment holds the JSON of what made it and
the command that makes it again.

Over 300 lines: the render commands share most of their flags (model, sampler, steps, seed, guides, play,
loop), declared once here.
"""

from __future__ import annotations

import argparse
import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from bridge import constants, files
from bridge.cli import stop_on_terminate
from bridge.cli.arguments import bounded_int
from bridge.cli.play import hear, open_player, output_options
from bridge.daemon.config import recipes_folder
from bridge.daemon.settings import validate
from bridge.engine import clips
from bridge.engine.audio import Clip, read_audio, resolve_region, write_numbered
from bridge.engine.checkpoints import load_model
from bridge.engine.devices import made_on
from bridge.engine.engine import Engine
from bridge.engine.regions import Region, named
from bridge.engine.guides import recipes, registry
from bridge.engine.samplers import SAMPLERS
from bridge.engine.tempo import Bars, loop_label
from bridge.errors import AudioError, ConfigError
from bridge.files import safe_name
from bridge.progress import Bar

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    generate = subparsers.add_parser("generate", help="new sounds from the model alone",
                                     description="Render new sounds from the model alone.")
    generate.add_argument("--seconds", type=setting("seconds"), default=None, metavar="T",
                          help="length of each sound in seconds (default: the model's window)")
    generate.add_argument("--shape", type=setting("shape"), default=constants.DEFAULT_SHAPE, metavar="F",
                          help="how closely new sounds keep to the shape of the drum class each is heard as (its "
                               "ceiling over time and frequency), 0 (the model alone) to 1; one-shots only "
                               "(default: %(default)s)")
    finish_option(generate)
    loop_options(generate, "generate loops that wrap seamlessly, exactly --bars long at --bpm")
    _common_options(generate, seed=True)
    generate.set_defaults(run=_playing(run_generate))

    vary = subparsers.add_parser("vary", help="variations of an audio file",
                                 description="Render variations of INPUT with its length, sample rate and channels.")
    vary.add_argument("input", type=Path, metavar="INPUT", help="audio file: wav, aiff, flac, ogg or mp3")
    vary.add_argument("--noise", type=setting("noise"), default=constants.DEFAULT_NOISE, metavar="F",
                      help="how far from the source, 0 (unchanged) to 1 (a new sound) (default: %(default)s)")
    vary.add_argument("--shape", type=setting("shape"), default=constants.DEFAULT_SHAPE, metavar="F",
                      help="how closely variations keep the source's envelope over time and frequency, 0 (the "
                           "model alone) to 1 (default: %(default)s)")
    finish_option(vary)
    loop_options(vary, "INPUT is a loop: variations that wrap seamlessly, as long as INPUT or exactly --bars at "
                       "--bpm")
    region_options(vary, "INPUT", tail=True)
    _common_options(vary, seed=True)
    vary.set_defaults(run=_playing(run_vary))

    interpolate = subparsers.add_parser("interpolate", help="steps between two audio files",
                                        description="Render COUNT steps from A to B (both ends included), "
                                                    "with A's length, sample rate and channels.")
    interpolate.add_argument("a", type=Path, metavar="A", help="audio file to start from")
    interpolate.add_argument("b", type=Path, metavar="B", help="audio file to end at")
    region_options(interpolate, "A")
    region_options(interpolate, "B", prefix="b_")
    _common_options(interpolate, seed=False, count=5)
    interpolate.set_defaults(run=_playing(run_interpolate))


def finish_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--finish", choices=("on", "off"), default="on",
                        help="on: a variation's clicks mended, the model's DC and rumble out and overs turned down, "
                             "never clamped (docs/sound.md); off: the network's output as diffusers' pipeline writes it, "
                             "clamped, and no --shape (default: %(default)s)")


def _common_options(parser: argparse.ArgumentParser, *, seed: bool, count: int = constants.DEFAULT_COUNT,
                    keeps_input: bool = False) -> None:
    parser.add_argument("--count", type=setting("count"), default=count, metavar="N",
                        help="how many outputs (default: %(default)s)")
    model_options(parser)
    if seed:
        parser.add_argument("--seed", type=setting("seed"), default=None, metavar="K",
                            help="makes the render repeatable: 0 or more (default, or random or -1: a fresh seed, "
                                 "stored in each file)")
    parser.add_argument("--out", type=Path, default=Path("."), metavar="DIR",
                        help="folder for the results (default: the current folder)")
    if keeps_input:  # what is kept of INPUT stays as it is: audio.kept_format
        parser.add_argument("--format", choices=constants.OUTPUT_FORMATS, default=None, metavar="F",
                            help=f"WAV sample format: pcm16, pcm24 or float (default: {constants.DEFAULT_OUTPUT_FORMAT}, "
                                 "or float for a 32-bit or float INPUT, so what is kept of it stays as it is)")
    else:
        parser.add_argument("--format", choices=constants.OUTPUT_FORMATS, default=constants.DEFAULT_OUTPUT_FORMAT,
                            metavar="F", help="WAV sample format: pcm16, pcm24 or float (default: %(default)s)")
    guide_options(parser)
    parser.add_argument("--play", action="store_true", help="play each result as it is written")
    output_options(parser)


def _playing(run):
    """--play: the audio output is opened before anything renders (no device: one line, nothing rendered) and
    each written file is played to its end before the next is written. SIGTERM and SIGHUP stop a render command as
    Ctrl-C does (bridge.cli.stop_on_terminate): a file being written into --out leaves no hidden temporary."""
    @functools.wraps(run)
    def wrapped(args) -> int:
        with stop_on_terminate():
            if not args.play:
                args.player = None
                return run(args)
            with open_player(args) as args.player:
                return run(args)
    return wrapped


def loop_options(parser: argparse.ArgumentParser, loop_help: str | None = None) -> None:
    """--bars and --bpm (a length in bars at a tempo, bridge.engine.tempo), and --loop when loop_help is given."""
    if loop_help is not None:
        parser.add_argument("--loop", action="store_true", help=loop_help + " (docs/loops.md)")
    parser.add_argument("--bars", type=setting("bars"), default=None, metavar="N",
                        help="a length in bars of 4/4 at --bpm, exact to the sample (N may be fractional)")
    parser.add_argument("--bpm", type=setting("bpm"), default=None, metavar="B", help="the tempo for --bars")
    resample_option(parser)


def resample_option(parser: argparse.ArgumentParser) -> None:
    """--resample U: RePaint's resampling, on the renders with a known part (repaint, extend, loops)."""
    parser.add_argument("--resample", type=setting("resample"), default=None, metavar="U",
                        help="render each stretch of the steps U times, so new material harmonises with what is "
                             "kept (RePaint's resampling; up to U times the time; docs/loops.md) (default: 1, off: "
                             "what measured best)")


def resample_named(args) -> dict:
    """--resample where it was given: the render's own argument, its stored recipe and its recreating command
    (without it the operation's default, bridge.engine.inpaint)."""
    return {"resample": args.resample} if args.resample is not None else {}


def loop_length(args) -> Bars | None:
    """The --bars at --bpm of a --loop render; ConfigError for half of the pair, or either without --loop."""
    bars = Bars.of(args.bars, args.bpm)
    if not args.loop:
        if bars is not None:
            raise ConfigError("--bars and --bpm go with --loop")
        if args.resample is not None:
            raise ConfigError("--resample goes with --loop (and repaint, extend): a plain variation keeps nothing")
        return None
    if args.command == "generate" and (bars is None or args.seconds is not None):
        raise ConfigError("generate --loop takes its length from --bars and --bpm (not --seconds)")
    if args.command == "generate" and args.shape != constants.DEFAULT_SHAPE:
        raise ConfigError("generate --shape is for one-shots (a loop holds every drum class), not --loop")
    if args.finish == "off":
        raise ConfigError("--finish off does not go with --loop (a loop is finished as it is played)")
    region = Region.of(getattr(args, "start", None), getattr(args, "end", None), getattr(args, "tail", None))
    if region is not None:
        region.check_loop(True, "--tail")
    return bars


def _loop_named(args, bars: Bars | None) -> dict:
    """What a loop adds to the stored recipe and the recreating command."""
    if not args.loop:
        return {}
    return {"loop": True, **({"bars": bars.bars, "bpm": bars.bpm} if bars is not None else {}), **resample_named(args)}


def guide_options(parser: argparse.ArgumentParser) -> None:
    """--guide, --recipe, --guide-mode: steer every render with measures of the sound (docs/guidance.md)."""
    parser.add_argument("--guide", action="append", type=guide_request, default=[], metavar="NAME=WEIGHT[:TARGET]",
                        help="steer toward a measure: brightness=1 (brighter), decay=-1 (shorter), "
                             "tuning=1:A1 (toward a note); repeatable; `dd-bridge guides` lists them")
    parser.add_argument("--recipe", default=None, metavar="NAME|FILE",
                        help="a saved set of guides: a YAML file, or a name in the recipes folder")
    parser.add_argument("--guide-mode", choices=registry.MODES, default="auto",
                        help="cheap: gradients of the denoised sound only; full: back through the network (GPU); "
                             "auto: full on a CUDA GPU, else cheap (default: %(default)s)")


def guide_request(text: str) -> registry.GuideRequest:
    try:
        return registry.parse_request(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


THREADS_HELP = ("torch's CPU threads (default: as torch chooses, the cores); a file rendered on the CPU records "
                "the count and its command names it: another count renders other bits, and a guided sound can "
                "come out another sound")


def model_options(parser: argparse.ArgumentParser, *, threads_help: str = THREADS_HELP) -> None:
    """The options that choose the model, how it samples and where it runs: open_engine(args) reads them."""
    parser.add_argument("--model", default=None, metavar="M",
                        help="model card name or path: .ckpt, diffusers folder, or .safetensors with its card "
                             f"(default: {constants.DEFAULT_MODEL})")
    parser.add_argument("--steps", type=setting("steps"), default=constants.DEFAULT_STEPS, metavar="S",
                        help="sampler steps (default: %(default)s)")
    parser.add_argument("--sampler", type=setting("sampler"), default=constants.AUTO_SAMPLER, metavar="X",
                        help=f"sampling method: {', '.join(SAMPLERS)} (default: %(default)s: "
                             f"{constants.AUTO_SAMPLERS})")
    parser.add_argument("--device", choices=constants.DEVICES, default="auto",
                        help="where to run (default: %(default)s)")
    parser.add_argument("--precision", choices=constants.PRECISIONS, default=constants.DEFAULT_PRECISION,
                        help="arithmetic precision (default: %(default)s)")
    parser.add_argument("--backend", choices=constants.BACKENDS, default=constants.DEFAULT_BACKEND,
                        help="what runs the network: torch, or ONNX Runtime (default: %(default)s)")
    parser.add_argument("--threads", type=bounded_int(1, 1024), default=None, metavar="T", help=threads_help)
    parser.add_argument("--sample-rate", type=bounded_int(1000, 384000), default=None, metavar="R",
                        help=f"sample rate of a custom .ckpt (default: {constants.DEFAULT_SAMPLE_RATE})")
    parser.add_argument("--window", type=bounded_int(1, 2**24), default=None, metavar="W",
                        help=f"training window of a custom .ckpt in samples (default: {constants.DEFAULT_WINDOW})")


def region_options(parser: argparse.ArgumentParser, name: str, *, prefix: str = "", tail: bool = False) -> None:
    """--start/--end (and --tail): the part of a file to use, in seconds of the file (bridge.engine.regions)."""
    flag = "--" + prefix.replace("_", "-")
    parser.add_argument(f"{flag}start", dest=f"{prefix}start", type=setting(f"{prefix}start"), default=None,
                        metavar="S", help=f"use {name} from S seconds into the file (default: its start)")
    parser.add_argument(f"{flag}end", dest=f"{prefix}end", type=setting(f"{prefix}end"), default=None,
                        metavar="E", help=f"use {name} up to E seconds into the file (default: its end); "
                                          "outputs are exactly that long")
    if tail:
        parser.add_argument("--tail", type=setting("tail"), default=None, metavar="T",
                            help="let a one-shot ring past --end with up to T seconds more of the file")


def _read(path: Path, region: Region | None) -> tuple[Clip, Region | None]:
    """The part of the file the options ask for, and that region as names and recipes give it (None: whole)."""
    clip = read_audio(path, region)  # the file's own problems are reported first
    return clip, resolve_region(path, region)


def setting(key: str):
    """Parse an option with the service's own validation, so both front ends accept exactly the same values."""
    def parse(text: str):
        try:
            return validate(key, text)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    parse.__name__ = key  # argparse names the type in some messages
    return parse


def noise_levels(text: str) -> list[float]:
    """A comma-separated list of --noise values (sheet, pack), each checked as vary's --noise is."""
    parse = setting("noise")
    return [parse(part) for part in text.split(",")]


def run_generate(args) -> int:
    bars = loop_length(args)
    requests = guide_requests(args)
    engine, model = _engine(args, kind=constants.OTHER if args.loop else constants.NEW_SOUND)
    steering = Steering.of(requests, args, engine)
    outputs = _render(engine, "generate", args, steering, bars=bars)
    options = {"seconds": args.seconds, "count": args.count, "seed": args.seed, **_settings(args),
               "shape": None if args.shape == constants.DEFAULT_SHAPE else args.shape,
               "finish": _finish_named(args), **_loop_named(args, bars), **steering.options}
    stem = files.fitted_stem(lambda name: " ".join(filter(None, (name, loop_label(args.loop, bars)))),
                             safe_name(engine.card.name, "model"))
    return _write_all(args, outputs, engine, model, "generate", stem, [], options)


def run_vary(args) -> int:
    bars = loop_length(args)
    source, region = _read(args.input, Region.of(args.start, args.end, args.tail))
    requests = guide_requests(args)
    engine, model = _engine(args, kind=constants.vary_kind(args.loop))
    steering = Steering.of(requests, args, engine)
    outputs = _render(engine, f"vary {files.printable(args.input.name)}", args, steering, clip=source, bars=bars)
    options = {"noise": args.noise, "shape": args.shape, "count": args.count, "seed": args.seed, **_settings(args),
               "finish": _finish_named(args), **_loop_named(args, bars), **steering.options}
    stem = files.fitted_stem(lambda name: " ".join(filter(None, (named(name, region), loop_label(args.loop, bars),
                                                                 "var"))), *files.source_stems(args.input.name))
    return _write_all(args, outputs, engine, model, "vary", stem, [args.input], options, [region])


def run_interpolate(args) -> int:
    if args.count < 2:
        raise ConfigError(f"--count must be at least 2 (a and b are both included), got {args.count}")
    a, region_a = _read(args.a, Region.of(args.start, args.end))
    b, region_b = _read(args.b, Region.of(args.b_start, args.b_end))
    regions = [region_a, region_b]
    requests = guide_requests(args)
    engine, model = _engine(args)
    steering = Steering.of(requests, args, engine)
    outputs = _render(engine, f"interpolate {files.printable(args.a.name)} to {files.printable(args.b.name)}", args,
                      steering, clip=a, clip_b=b)
    options = {"count": args.count, **_settings(args), **steering.options}
    stem = files.fitted_stem(lambda a_stem, b_stem: f"{named(a_stem, regions[0])} to {named(b_stem, regions[1])}",
                             *files.source_stems(args.a.name, args.b.name))
    return _write_all(args, outputs, engine, model, "interpolate", stem, [args.a, args.b], options, regions)


def guide_requests(args) -> list[registry.GuideRequest]:
    """The recipe's guides and each --guide in the order they act (registry.in_order: weight 0 is none); file
    targets made absolute (the recreating command names them). Each is built once on a second of silence first, as
    the service checks them at its door (steering.checked): a target its guide refuses, or a plug-in that cannot
    make its guide, is one line before the model loads. No guide asked for: no plug-in is loaded."""
    from bridge.daemon import steering  # the service's check, only where there is a guide to check

    requests = []
    if args.recipe is not None:
        requests += recipes.load_recipe(args.recipe, recipes_folder()).guides
    requests = registry.with_file_targets_resolved(registry.in_order(requests + list(args.guide)))
    if not requests:
        return []
    return list(steering.checked(tuple(requests), constants.DEFAULT_SAMPLE_RATE, True))


@dataclass(frozen=True)
class Steering:
    """The guides of a render and the mode they run in, and how its files record them."""

    requests: tuple[registry.GuideRequest, ...] = ()
    mode: str = "cheap"

    @classmethod
    def of(cls, requests, args, engine) -> "Steering":
        return cls(tuple(requests), registry.resolve_mode(args.guide_mode, engine.device.type, engine.backend))

    @property
    def arguments(self) -> dict:
        return {"guides": self.requests, "guide_mode": self.mode}

    @property
    def options(self) -> dict:
        """For the WAV comment and the recreating command (--guide repeated; a recipe is stored as its guides, so
        editing the recipe later does not change what the command makes)."""
        if not self.requests:
            return {}
        return {"guide": [request.text for request in self.requests], "guide_mode": self.mode}


def _settings(args) -> dict:
    """The options every command shares that decide the result, for the stored recipe (--backend only when not the
    default: constants.backend_named, the rule a pack's files follow too)."""
    return {"steps": args.steps, "sampler": args.sampler, "format": args.format, "precision": args.precision,
            "backend": constants.backend_named(args.backend), "sample_rate": args.sample_rate, "window": args.window}


def _engine(args, *, kind: str = constants.OTHER):
    prepare_out(args.out)
    return open_engine(args, kind=kind)


def open_engine(args, *, kind: str = constants.OTHER):
    """The engine, and how the recreating command should name its model: a path made absolute, or a card name.
    args.sampler becomes the one the render uses ("auto": the one for its `kind`, constants.sampler_for), so its
    files and recreating command name it."""
    args.sampler = constants.sampler_for(args.sampler, kind=kind)
    if getattr(args, "threads", None) is not None:  # before the engine: one thread takes other kernels
        torch.set_num_threads(args.threads)
    loaded = load_model(args.model, sample_rate=args.sample_rate, window=args.window)
    engine = Engine(loaded, device=args.device, precision=args.precision, backend=args.backend)
    model = model_reference(args.model, loaded.name)
    log.debug("model %s: %d Hz, window %d", loaded.name, engine.sample_rate, engine.window)
    return engine, model


def model_reference(spec: str | None, name: str) -> str:
    if spec is None:
        return name
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def prepare_out(folder: Path) -> None:
    """--out exists and takes new files, checked before the render rather than found out after it."""
    shown = files.printable(folder)
    if folder.exists() and not folder.is_dir():
        raise AudioError(f"--out {shown}: is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise AudioError(f"--out {shown}: cannot create it ({files.reason(error)})") from None
    try:
        files.check_writable(folder)
    except OSError as error:
        raise AudioError(f"--out {shown}: cannot write files there ({files.reason(error)})") from None


def _finish_named(args) -> str | None:
    """The --finish of the recreating command: named only when off (None values are left out)."""
    return None if args.finish == "on" else "off"


def _render(engine, label: str, args, steering: Steering, *, clip: Clip | None = None,
            clip_b: Clip | None = None, bars: Bars | None = None) -> list[Clip]:
    with Bar(label, unit="step") as progress:
        common = {"steps": args.steps, "sampler": args.sampler, "progress": progress, **steering.arguments}
        if args.command == "generate" and args.loop:
            return clips.generate_loops(engine, args.count, bars, seed=args.seed, **resample_named(args), **common)
        if args.command == "generate":
            return clips.generate_clips(engine, args.count, args.seconds, seed=args.seed,
                                        finish=args.finish == "on", shape=args.shape, **common)
        if args.command == "vary" and args.loop:
            return clips.vary_loop(engine, clip, args.count, bars, noise=args.noise, seed=args.seed,
                                   shape=args.shape, **resample_named(args), **common)
        if args.command == "vary":
            return clips.vary_clip(engine, clip, args.count, noise=args.noise, seed=args.seed, shape=args.shape,
                                   finish=args.finish == "on", **common)
        return clips.interpolate_clips(engine, clip, clip_b, args.count, **common)


def _write_all(args, outputs: list[Clip], engine, model: str, operation: str, stem: str, sources: list[Path],
               options: dict, regions: list[Region | None] = ()) -> int:
    seeds = _seeds(engine, options["seed"], len(outputs)) if "seed" in options else None
    for index, clip in enumerate(outputs):
        recipe = {**options, **made_on(engine.device)}  # the device and threads it ran on: the same bytes again
        if "precision" in recipe:  # as it ran: the onnx backend's fp16 without TensorRT runs fp32 (Engine.precision)
            recipe["precision"] = engine.precision
        if seeds is not None:  # drawn per output: each file is recreated alone with its own seed
            recipe.update(seed=seeds[index], count=1)
        metadata = clips.render_metadata(operation, model=model, model_hash=engine.model_hash, sources=sources,
                                         options=recipe, regions=regions, index=index + 1, of=len(outputs))
        path = write_numbered(args.out, stem, clip, args.format, metadata)
        print(path.resolve(), flush=True)
        if args.player is not None:
            hear(args.player, clip, path.name)
    return 0


def _seeds(engine, seed: int | None, count: int) -> list[int] | None:
    """Per-output seeds when the engine drew them (no --seed); None when --seed fixed the whole batch."""
    if seed is not None:
        return None
    drawn = getattr(engine, "last_seeds", None)
    return list(drawn) if drawn is not None and len(drawn) == count else None
