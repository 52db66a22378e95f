"""`dd-bridge train` (fine-tune or train from scratch), `dd-bridge eval` and `dd-bridge check-memorization`."""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import time
from pathlib import Path

from bridge import constants
from bridge.cli import stop_on_terminate
from bridge.cli.arguments import positive_int
from bridge.training.train import LIMITS, SIZES, TRAIN_WINDOW

log = logging.getLogger(__name__)


def _limited(key: str, parse=float):
    """An argparse type for the training setting ``key``: its range is bridge.training.train.LIMITS's, so a value a
    run would store (and keep for every later session) is refused in one line before anything is written."""
    ok, allowed = LIMITS[key]

    def check(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
        return value
    check.__name__ = "whole number" if parse is int else "number"
    return check


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value < math.inf:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be positive seconds, got {text}")
    return value


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train", help="train a model on your samples (fine-tune, or from scratch)",
        description="Train on the audio files under DATA_DIR (recursively, any format). Everything lives in RUN_DIR: "
                    "the same command continues an interrupted run. Progress goes to stderr; loss.csv, loss.png "
                    "and demos/ (renders and spectrograms; the pictures need the plots extra) show it learn. At "
                    "the end the model is written to RUN_DIR in the project's format and its path printed. A "
                    "continued run takes its architecture, window, rate and base from RUN_DIR/run.yaml and keeps "
                    "its settings; only --steps and the saving and demo options change it (each difference is "
                    "said). RUN_DIR may be copied to another machine: give its data at any path there.")
    train.add_argument("data", nargs="+", type=Path, metavar="DATA_DIR", help="folders (or files) of one-shots")
    train.add_argument("--out", required=True, type=Path, metavar="RUN_DIR", help="the run's folder")
    start = train.add_mutually_exclusive_group()
    start.add_argument("--from", dest="base_model", default=None, metavar="M",
                       help="fine-tune this model (a name or a path in any layout)")
    start.add_argument("--size", choices=list(SIZES), default=None,
                       help="train from scratch with this architecture (default: small)")
    train.add_argument("--sample-rate", type=positive_int, default=None, metavar="R",
                       help=f"training rate (default: the model's; {constants.DEFAULT_SAMPLE_RATE} from scratch)")
    train.add_argument("--window", type=positive_int, default=None, metavar="W",
                       help=f"training window in samples (default: the model's; {TRAIN_WINDOW} from scratch)")
    train.add_argument("--steps", type=positive_int, default=None, metavar="N",
                       help="train until this step (default: 2000; a continued run: its own, or this)")
    train.add_argument("--batch-size", type=positive_int, default=None, metavar="B", help="(default: 8)")
    train.add_argument("--lr", type=_limited("lr"), default=None,
                       help="learning rate (default: 2e-4, fine-tuning 4e-5)")
    train.add_argument("--held-out", type=_limited("held_out"), default=None, metavar="F",
                       help="fraction of files kept out of training for `dd-bridge eval`, in [0, 1) (default: 0.1, "
                            "i.e. 10 %%)")
    train.add_argument("--save-every", type=positive_int, default=None, metavar="N",
                       help="steps between saves (default: 50)")
    train.add_argument("--demo-every", type=_limited("demo_every", int), default=None, metavar="N",
                       help="steps between demo renders (0: none; default: 250)")
    train.add_argument("--demo-count", type=_limited("demo_count", int), default=None, metavar="N",
                       help=f"sounds per demo, 0..{constants.MAX_COUNT} (default: 4)")
    train.add_argument("--demo-steps", type=positive_int, default=None, metavar="N",
                       help="sampler steps per demo (default: 50)")
    train.add_argument("--onset-shift-ms", type=float, default=None, metavar="MS",
                       help="augment with onsets delayed by up to MS ms (default: 5; 0: off; a continued run "
                            "keeps what it started with)")
    train.add_argument("--pitch-semitones", type=float, default=None, metavar="N",
                       help="augment with pitch shifts of up to +-N semitones (default: 1; 0: off)")
    train.add_argument("--loss-weight", default=None, metavar="W",
                       help="the v loss's weighting over noise levels: flat (default) or min-snr:GAMMA (Hang et al. "
                            "2023; docs/benchmarks.md, 'Training recipe')")
    train.add_argument("--pre-emphasis", type=float, default=None, metavar="C",
                       help="high-pass the loss's error by e[n] - C e[n-1] so the quiet high end counts "
                            "(default: 0, off)")
    train.add_argument("--t-sampling", default=None, metavar="S",
                       help="noise levels to train on: uniform (default) or low:T:FRACTION (that fraction of each "
                            "batch at or below noise level T, the range vary's last steps use)")
    train.add_argument("--ema-decay", type=float, default=None, metavar="D",
                       help="decay of the EMA weights that are exported (default: 0.995)")
    train.add_argument("--time-limit", type=_seconds, default=None, metavar="S",
                       help="stop after S seconds of this session (saved and exported as at the end; the same "
                            "command with a larger --steps or --time-limit continues)")
    train.add_argument("--seed", type=_limited("seed", int), default=None, help="(default: 0)")
    train.add_argument("--device", default="auto", choices=constants.DEVICES)
    train.add_argument("--precision", default="auto", choices=constants.AUTO_PRECISIONS,
                       help="autocast precision (auto: bf16/fp16 on a GPU, fp32 on the CPU)")
    train.add_argument("--name", default=None, help="name of the exported model (default: RUN_DIR's name + step)")
    train.add_argument("--licence", default=None,
                       help="licence of the exported model (default: the base model's, else 'unknown')")
    train.set_defaults(run=run_train)
    register_measures(subparsers)


def run_train(args: argparse.Namespace) -> int:
    from bridge.training import distributed, session

    if args.name:  # a name taken by a file this run did not export: said now, not after hours of training
        session.check_export_name(args.out, args.name)
    # SIGTERM (a service manager) and SIGHUP (the terminal closed) stop it as Ctrl-C does. While steps are trained
    # each only asks the loop to stop when the step under way ends and save the run there (bridge.training.train.fit
    # puts its own handlers in for that time), so it continues exactly; before (finding the data) nothing is saved
    # yet, and after it the export is written completely or not at all. Once done, the handlers before are back:
    # nothing left to save, torchrun's SIGTERM just ends us.
    try:
        with stop_on_terminate():
            return _train(args, session)
    finally:
        distributed.leave()


def _train(args: argparse.Namespace, session) -> int:
    # Only what was typed: unset, a new run gets session.prepare's defaults and a continued one run.yaml's
    # (session.resume says each typed value that differs, and whether it is taken or ignored)
    options = {key: getattr(args, key) for key in (
        "steps", "batch_size", "held_out", "save_every", "demo_every", "demo_count", "demo_steps", "seed", "lr",
        "onset_shift_ms", "pitch_semitones", "loss_weight", "pre_emphasis", "t_sampling", "ema_decay")
        if getattr(args, key) is not None}
    deadline = None if args.time_limit is None else time.monotonic() + args.time_limit

    def should_stop() -> bool:
        return deadline is not None and time.monotonic() > deadline

    run = session.train(args.data, args.out, size=args.size, base_model=args.base_model,
                        sample_rate=args.sample_rate, window=args.window, device=args.device,
                        precision=args.precision, should_stop=should_stop, **options)
    if not run.group.main:  # under torchrun, rank 0 exports
        return 0
    licence = args.licence if args.licence is not None else session.base_licence(run.settings, args.base_model)
    for path in session.export(run, name=args.name, licence=licence or "unknown"):
        print(path)
    return 0


def _measure(subparsers, name: str, *, data: str, count: int, count_help: str | None = None,
             **texts) -> argparse.ArgumentParser:
    """A command that renders with a model and measures against --data: the options they all take."""
    parser = subparsers.add_parser(name, **texts)
    parser.add_argument("--model", default=None, metavar="M", help="a name or path (default: the bundled model)")
    parser.add_argument("--data", required=True, nargs="+", type=Path, metavar="DIR", help=data)
    parser.add_argument("--count", type=positive_int, default=count, metavar="N", help=count_help)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=constants.DEVICES)
    return parser


def register_measures(subparsers) -> None:
    evaluate = _measure(
        subparsers, "eval", data="real one-shots", count=16, count_help="sounds per setting",
        help="how close a model's sounds are to real ones, beside baselines",
        description="Render --count sounds per sampler/steps setting and print their distance (MMD^2 over log-mel "
                    "statistics, envelope and level) to the real one-shots in --data, beside the floor (real vs "
                    "real), noise bursts with drum envelopes and the untrained network. For a model trained here, "
                    "the files it held out are the reference and the rest of --data the floor's training files; "
                    "else all of --data with --train-data or --no-baselines, else a seeded half of it (said). A "
                    "file of --data that --train-data names or that the --model's or --against's card says it "
                    "trained on is left out of the reference, with a line saying how many and whose.")
    evaluate.add_argument("--train-data", nargs="+", type=Path, default=None, metavar="DIR",
                          help="the model's training files, for the floor (default: from the model card or --data); "
                               "any also in --data are left out of the reference")
    evaluate.add_argument("--sampler", default=None,
                          help="sampler, or several separated by commas (default: generate's, "
                               f"{constants.NEW_SOUND_SAMPLER})")
    evaluate.add_argument("--steps", default=None, help="steps, or several separated by commas")
    evaluate.add_argument("--no-baselines", action="store_true", help="only the model's rows")
    evaluate.add_argument("--json", type=Path, default=None, metavar="PATH",
                          help="also write the rows as JSON to this new file (never replacing one)")
    evaluate.add_argument("--against", default=None, metavar="M",
                          help="another model (a name or path) rendered from the same seeds with the same settings; "
                               "each row's change is then from it: is a new model better than the one it replaces?")
    evaluate.set_defaults(run=run_eval)

    variations = _measure(
        subparsers, "eval-vary", data="real one-shots the model was not trained on (several kits)", count=32,
        count_help="sources (one variation each)",
        help="how variations of real one-shots measure against their sources",
        description="Vary up to --count one-shots from --data (kits the model never trained on) once each, per "
                    "noise and shape setting, and print: the level of each variation's last quarter against its "
                    "source's (median, dB), MMD^2 to real drums of the variations beside the sources' own (a "
                    "seeded half of --data is the reference, never a source), the largest DC offset, samples "
                    "at full scale and the clicks a variation adds to its source's decay. Files the --model's or "
                    "--against's card says it trained on, and silent sources, are left out with a line.")
    variations.add_argument("--noise", default=None, help="noise level, or several separated by commas")
    variations.add_argument("--shape", default=None, help="shape (0..1), or several separated by commas")
    variations.add_argument("--steps", type=positive_int, default=None)
    variations.add_argument("--sampler", default=None,
                            help="sampler, or several separated by commas, each on the same sources and seeds "
                                 f"(default: vary's, {constants.VARIATION_SAMPLER})")
    variations.add_argument("--max-seconds", type=_seconds, default=1.5, metavar="S",
                            help="longest source file (default: 1.5)")
    variations.add_argument("--by-noise-level", action="store_true",
                            help="first, the network's denoising error on the sources at each noise level")
    variations.add_argument("--keep", type=Path, default=None, metavar="DIR",
                            help="also write every variation (and, with --loops, every beat) into DIR as WAV files "
                                 "to listen to, named by source and setting (never replacing a file)")
    variations.add_argument("--loops", action="store_true",
                            help="vary loops instead: --count one-bar beats at 120 bpm played from the kick, snare and "
                                 "hat of the kits in --data, each varied once as a loop; prints how well a "
                                 "variation keeps the beat's groove and hits, the clicks it adds, and each "
                                 "sampler against the first at the same noise and shape (default sampler: a loop's)")
    variations.add_argument("--against", default=None, metavar="M",
                            help="another model (a name or path) measured on the same sources and seeds with the "
                                 "same settings; each setting's figures are then paired with its, source by source "
                                 "(or loop by loop): do a new model's variations beat the one it replaces?")
    variations.set_defaults(run=run_eval_vary)

    memorization = _measure(
        subparsers, "check-memorization", data="the model's training files", count=16,
        help="does a model copy its training files?",
        description="Render --count sounds and find each one's nearest file in --data (a distance that ignores "
                    "gain, polarity and shifts up to 25 ms, rounded to whole 5.3 ms frames: 27 ms at 48 kHz). "
                    "Renders closer to a training file than distinct training files are to each other, and at "
                    "most half as far from it as from white noise (hiss is no copy), are flagged as likely copies; "
                    "the exit status is then 1. The card's held-out files in --data are left out.")
    memorization.add_argument("--steps", type=positive_int, default=None)
    memorization.add_argument("--sampler", default=None, help="sampler (default: generate's, "
                              f"{constants.NEW_SOUND_SAMPLER})")
    memorization.set_defaults(run=run_check_memorization)


def _engine(args, model=None):
    """The engine of ``model`` (default: --model) on --device."""
    from bridge.engine.engine import Engine
    return Engine(args.model if model is None else model, device=args.device)


def _against(args, engine):
    """(--against's engine or None, (the model's name, --against's name)): names told apart by their paths when
    both cards carry one (a run exported under the bundled name)."""
    from bridge.errors import ConfigError

    if args.against is None:
        return None, (engine.card.name, "")
    against = _engine(args, args.against)
    if (against.sample_rate, against.window) != (engine.sample_rate, engine.window):
        raise ConfigError(f"--against {args.against}: {against.sample_rate} Hz, window {against.window}; the "
                          f"model renders {engine.sample_rate} Hz, window {engine.window}: not comparable")
    names = (engine.card.name, against.card.name)
    if names[0] == names[1]:
        names = (f"{names[0]} ({args.model})", f"{names[1]} ({args.against})")
    return against, names


def _load(files, engine, what: str = "the reference (--data)", least: int = 2):
    from bridge.errors import BridgeError
    from bridge.training.data import OneShots

    shots = OneShots.load(files, engine.sample_rate, engine.window)
    if len(shots) < least:
        raise BridgeError(f"{what} needs at least {least} readable audio files, found {len(shots)}")
    return shots


def _trained(engine, against=None, names=("", "")) -> list[tuple[str, set[Path]]]:
    """[(who, the files it trained on, resolved)] of the model and --against's, as their cards name them."""
    from bridge.training.evaluate import trained_on

    return [(f"{name}, {role}", trained_on(model.card))
            for model, name, role in ((engine, names[0] or engine.card.name, "the --model"),
                                      (against, names[1], "the --against model")) if model is not None]


def reference_and_training(engine, data, train_data=None, *, trained=(), floor: bool = True
                           ) -> tuple[list[Path], list[Path]]:
    """(reference, training) files. The reference: held-out files named by the card when --data has them, else
    all of --data with --train-data or without a floor (``floor`` False), else a seeded half of --data (the other
    half the floor's, said in a line). Files of --data in --train-data or in ``trained`` ([(who, files resolved)]:
    the models' own training files) are left out of the reference, each overlap said. Paths are compared as the
    files they name (evaluate.resolved), never as typed."""
    import random

    from bridge.training.data import scan
    from bridge.training.evaluate import held_out, leave_out_trained, resolved, trained_on

    files = scan(data, leave_out_runs=True)  # as training read them: a run folder's demos are not drums
    held = held_out(engine.card)
    training: list[Path] = []
    if train_data:
        training = scan(train_data, leave_out_runs=True)
        named = {resolved(f) for f in training}
        reference = leave_out_trained(files, [(f"{engine.card.name}, as --train-data says", named)],
                                      "left out of the reference")
    elif any(resolved(f) in held for f in files):
        reference = [f for f in files if resolved(f) in held]
        training = [f for f in files if resolved(f) not in held]
        if len(training) < 2 and floor:
            training = sorted(trained_on(engine.card))
    elif not floor:
        reference = files
    else:
        shuffled = files[:]
        random.Random(0).shuffle(shuffled)
        half = len(shuffled) // 2
        reference, training = sorted(shuffled[:half]), sorted(shuffled[half:])
        log.warning("no held-out files of %s's card in --data and no --train-data: a seeded half of --data (%d "
                    "files) is the reference, the other half (%d) the floor's training files", engine.card.name,
                    len(reference), len(training))
    reference = leave_out_trained(reference, list(trained), "left out of the reference")
    taken = {resolved(f) for f in reference}
    return reference, [f for f in training if resolved(f) not in taken]


def _list(text, parse, default, option: str):
    """The values of a comma-separated option, each read by ``parse`` (a ValueError or argparse's error refuses it),
    at least one; [default] when not given."""
    from bridge.errors import ConfigError

    if text is None:
        return [default]
    try:
        values = [parse(part.strip()) for part in str(text).split(",") if part.strip()]
    except argparse.ArgumentTypeError as error:  # its own words: "shape must be in 0..1, not 5"
        raise ConfigError(f"{option}: {error}") from None
    except ValueError:
        raise ConfigError(f"{option}: expected a comma-separated list, got {text!r}") from None
    if not values:
        raise ConfigError(f"{option}: expected at least one value, got {text!r}")
    return values


def _json_path(path: Path | None) -> Path | None:
    """--json's path, refused before any render when a file is there (landing evidence is never overwritten) or
    its folder is missing or not writable."""
    from bridge import files
    from bridge.errors import ConfigError

    if path is None:
        return None
    files.check_new(path, ConfigError)
    try:
        files.check_writable(path.parent)
    except OSError as error:
        raise ConfigError(f"{path}: cannot write here ({files.reason(error)})") from None
    return path


def run_eval(args: argparse.Namespace) -> int:
    import json

    from bridge import files
    from bridge.constants import DEFAULT_STEPS, NEW_SOUND, sampler_for
    from bridge.errors import ConfigError
    from bridge.training import evaluate

    if args.count < 3:
        raise ConfigError(f"--count must be at least 3 (the error estimate leaves one sound out), got {args.count}")
    # New sounds, scored as `generate` makes them: its sampler unless asked for others
    samplers = _list(args.sampler, str, sampler_for(None, kind=NEW_SOUND), "--sampler")
    steps = _list(args.steps, _positive, DEFAULT_STEPS, "--steps")
    json_path = _json_path(args.json)
    engine = _engine(args)
    against, names = _against(args, engine)
    reference_files, training_files = reference_and_training(
        engine, args.data, args.train_data, trained=_trained(engine, against, names), floor=not args.no_baselines)
    reference = _load(reference_files, engine)
    # The floor's files read before any render: a failure here cost the model's rows after minutes of rendering
    training = None if args.no_baselines else _load(
        training_files, engine, "the floor (--train-data, or the card's training data)", least=3)
    log.info("reference: %d real files%s", len(reference),
             f"; floor: {len(training)} training files" if training is not None else "")
    judge = evaluate.Judge(reference.windows, engine.sample_rate)
    rows = evaluate.quality_table(engine, judge, [(s, n) for s in samplers for n in steps], count=args.count,
                                  seed=args.seed, against=against, names=names)
    if training is not None:
        rows += evaluate.baselines(judge, engine, training.windows, sampler=samplers[0], steps=steps[0],
                                   count=args.count, seed=args.seed)
    print(evaluate.format_table(rows, change_from=f"{names[1]}'s row of the same setting"
                                if against is not None else None))
    if json_path is not None:
        files.create_new(json_path, json.dumps([row.__dict__ for row in rows], indent=2).encode(), ConfigError)
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(value)
    return value


def run_eval_vary(args: argparse.Namespace) -> int:
    from bridge.cli.render import setting  # vary's own checks of --noise and --shape
    from bridge.constants import DEFAULT_NOISE, DEFAULT_SHAPE, DEFAULT_STEPS, sampler_for, vary_kind
    from bridge.engine.samplers import SAMPLERS
    from bridge.errors import ConfigError
    from bridge.training import vary_eval
    from bridge.training.data import scan
    from bridge.training.evaluate import Judge, leave_out_trained, resolved

    noises = _list(args.noise, setting("noise"), DEFAULT_NOISE, "--noise")
    shapes = _list(args.shape, setting("shape"), DEFAULT_SHAPE, "--shape")
    samplers = _list(args.sampler, str, sampler_for(None, kind=vary_kind(args.loops)), "--sampler")
    unknown = [name for name in samplers if name not in SAMPLERS]
    if unknown:
        raise ConfigError(f"unknown sampler {unknown[0]!r} (choose from {', '.join(SAMPLERS)})")
    if args.loops and args.by_noise_level:
        raise ConfigError("--by-noise-level measures one-shots; leave out --loops for it")
    if not args.loops and args.count < 3:
        raise ConfigError(f"--count must be at least 3 (the error estimate leaves one source out), got {args.count}")
    keep = _keeper(args.keep)
    engine = _engine(args)
    against, names = _against(args, engine)
    models = [(engine, names[0])] + ([(against, names[1])] if against is not None else [])
    steps = args.steps or DEFAULT_STEPS
    trained = _trained(engine, against, names)
    # A source, a beat's hit or a reference file a model trained on measures its recall: left out before anything
    # is drawn from --data
    pool = leave_out_trained(scan(args.data), trained,
                             "left out of the beats" if args.loops else "left out of the reference and sources")
    if args.loops:
        return _eval_vary_loops(args, models, itertools.product(noises, shapes, samplers), steps, keep,
                                {resolved(path) for path in pool})
    reference_files, sources = vary_eval.split(pool, args.max_seconds, args.count, args.seed)
    if len(sources) < 3:
        raise ConfigError(f"need at least 3 source files of at most {args.max_seconds:g} s in --data, "
                          f"found {len(sources)}")
    reference = _load(reference_files, engine)
    log.info("reference: %d real files; sources: %d files from %d folders", len(reference), len(sources),
             len({path.parent for path in sources}))
    judge = Judge(reference.windows, engine.sample_rate)
    if args.by_noise_level:
        for model, name in models:
            print(f"denoising error of {name} relative to the source (one network call at noise level t; median "
                  "over sources):")
            for t, whole, tail in vary_eval.denoising_error(model, sources, seed=args.seed):
                print(f"  t {t:.2f}: whole clip {whole:+.1f} dB, last quarter {tail:+.1f} dB", flush=True)
    _each_setting(models, itertools.product(noises, shapes, samplers), steps,
                  lambda model, **setting: vary_eval.measure(model, judge, sources, seed=args.seed, keep=keep,
                                                             **setting),
                  lambda ours, theirs: ours.against(theirs, judge))
    return 0


def _each_setting(models, settings, steps: int, measure, pair) -> None:
    """Print ``measure(model, label=..., noise=..., steps=..., sampler=..., shape=...)``'s figures for each
    (noise, shape, sampler) of ``settings`` and each of ``models`` ([(engine, name)]: the model, then --against's),
    followed by ``pair(ours, theirs)``: the model's figures paired with --against's of the same setting, or without
    --against with the first sampler's at the same noise and shape. Both are measured on the same sources (or
    beats) and seeds."""
    first: dict[tuple[float, float], object] = {}
    for noise, shape, sampler in settings:
        setting = f"noise {noise:g}, shape {shape:g}, {sampler} {steps}"
        measured = [measure(model, label=f"{name}: {setting}" if len(models) > 1 else setting, noise=noise,
                            steps=steps, sampler=sampler, shape=shape) for model, name in models]
        other = measured[1] if len(measured) > 1 else first.setdefault((noise, shape), measured[0])
        lines = [line for figures in measured for line in figures.lines()]
        print("\n".join(lines + ([pair(measured[0], other)] if other is not measured[0] else [])), flush=True)


def _keeper(folder: Path | None):
    """keep(name, clip) for eval-vary's --keep: the next free "<name> NNN.wav" in folder (made if missing, checked
    before any render), or None."""
    if folder is None:
        return None
    from bridge import files
    from bridge.engine.audio import write_numbered
    from bridge.errors import ConfigError

    try:
        folder.mkdir(parents=True, exist_ok=True)
        files.check_writable(folder)
    except OSError as error:
        raise ConfigError(f"{folder}: cannot write the variations there ({files.reason(error)})") from None
    return lambda name, clip: write_numbered(folder, files.safe_name(name), clip)


def _eval_vary_loops(args: argparse.Namespace, models, settings, steps: int, keep, pool: set) -> int:
    """eval-vary --loops for [(engine, name)]: the model, and --against's beside it when given; beats from the files
    of ``pool`` (resolved: --data less what the models trained on)."""
    from bridge.errors import ConfigError
    from bridge.training import loop_eval

    engine = models[0][0]
    beats = loop_eval.beats(args.data, args.count, sample_rate=engine.sample_rate, seed=args.seed, only=pool)
    if not beats:
        raise ConfigError("no kit in --data has a kick, a snare and a hat named as such (a Hydrogen kit, or "
                          "sub-folders kick/ snare/ hat/) that the judged models did not train on")
    log.info("beats: %s", "; ".join(beat.name for beat in beats))
    for number, beat in enumerate(beats if keep is not None else (), start=1):
        keep(f"beat {number:02d} source {beat.name}", beat.clip)
    _each_setting(models, settings, steps,
                  lambda model, **setting: loop_eval.measure(model, beats, seed=args.seed, keep=keep, **setting),
                  lambda ours, theirs: ours.against(theirs))
    return 0


def run_check_memorization(args: argparse.Namespace) -> int:
    from bridge.constants import DEFAULT_STEPS, NEW_SOUND, sampler_for
    from bridge.training import evaluate, memorization
    from bridge.training.data import scan

    engine = _engine(args)
    held = evaluate.held_out(engine.card)  # as files, not as typed: a relative --data names the same ones
    shots = _load([f for f in scan(args.data, leave_out_runs=True) if evaluate.resolved(f) not in held], engine,
                  "--data less the card's held-out files")  # no demos
    renders, _ = evaluate.render(engine, args.count, sampler=sampler_for(args.sampler, kind=NEW_SOUND),
                                 steps=args.steps or DEFAULT_STEPS, seed=args.seed)
    report = memorization.check(renders, shots.windows, shots.files, engine.sample_rate)
    print(report.summary())
    return 1 if report.flagged else 0
