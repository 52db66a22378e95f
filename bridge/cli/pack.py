"""`dd-bridge pack`: a sample pack of variations of many sources at several noise levels (bridge.pack).

The options that decide a file's sound are `dd-bridge vary`'s own (declared once in bridge.cli.render); what is
added: SOURCES (files or folders), --per-source, a list of --noise levels, and where to render (--workers, --ray).
The pack's folder goes to stdout when it is complete; progress and a summary go to stderr.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

from bridge import constants, files
from bridge.cli import render, stop_on_terminate
from bridge.cli.arguments import bounded_int
from bridge.constants import RANDOM_SEEDS
from bridge.engine.audio import resolve_region
from bridge.engine.regions import Region
from bridge.errors import ConfigError
from bridge.pack import manifest, plan
from bridge.pack.driver import locked, make_pack
from bridge.pack.plan import make_plan
from bridge.progress import Bar
from bridge.training.data import scan

log = logging.getLogger(__name__)
DEFAULT_NOISE_LEVELS = "0.2,0.4,0.6"


def register(subparsers) -> None:
    pack = subparsers.add_parser(
        "pack", help="a sample pack: variations of many sources at several noise levels, with a manifest",
        description="Render a sample pack into --out: one folder per source holding --per-source variations at each "
                    "--noise level, a manifest (manifest.json, manifest.csv), a contact sheet per source and the "
                    "model's licence and attribution. Run the same command again to resume: what is done and "
                    "verified is kept. docs/packs.md")
    pack.add_argument("sources", type=Path, nargs="+", metavar="SOURCE",
                      help="audio files, or folders searched for them")
    pack.add_argument("--out", type=Path, required=True, metavar="PACK", help="the pack's folder")
    pack.add_argument("--per-source", type=bounded_int(1, 100_000), required=True, metavar="N",
                      help="variations of each source at each noise level")
    pack.add_argument("--noise", type=render.noise_levels, default=render.noise_levels(DEFAULT_NOISE_LEVELS),
                      metavar="F,F",
                      help=f"noise levels, 0 (unchanged) to 1 (a new sound) (default: {DEFAULT_NOISE_LEVELS})")
    pack.add_argument("--shape", type=render.setting("shape"), default=constants.DEFAULT_SHAPE, metavar="F",
                      help="how closely variations keep their source's envelope, 0 to 1 (default: %(default)s)")
    pack.add_argument("--seed", type=render.setting("seed"), default=None, metavar="K",
                      help="source k's variation i has seed K + k*N + i at every noise level (default: a fresh K, "
                           "kept in the manifest for a rerun)")
    pack.add_argument("--format", choices=constants.OUTPUT_FORMATS, default=constants.DEFAULT_OUTPUT_FORMAT,
                      metavar="F", help="WAV sample format: pcm16, pcm24 or float (default: %(default)s)")
    render.finish_option(pack)
    render.loop_options(pack, "SOURCES are loops: variations that wrap seamlessly, as long as each source or "
                              "exactly --bars at --bpm")
    render.region_options(pack, "each source", tail=True)
    render.guide_options(pack)
    render.model_options(pack, threads_help="torch threads of each CPU worker (default: the pack's own when "
                                            "resuming one; else the cores shared out among --workers, or 1 per "
                                            "actor with --ray); the same T gives the same bytes however many "
                                            "workers render")
    pack.add_argument("--workers", type=bounded_int(1, 256), default=None, metavar="N",
                      help="worker processes on this machine, each with a warm engine (default: one per GPU, "
                           "else 1); with --ray: at most N actors")
    pack.add_argument("--ray", default=None, metavar="auto|local|ADDRESS",
                      help="render on a Ray cluster (auto: the one this machine is in; local: start one): one actor "
                           "per GPU, or per --threads CPUs; needs Ray: "
                           f"{constants.install_command('cluster')}")
    pack.set_defaults(run=run_pack)

    check = subparsers.add_parser(
        "check-pack", help="check a sample pack against its manifest",
        description="Check that PACK's manifest.csv says what its manifest.json says and that every file listed "
                    "is there with its checksum (a pack copied, moved or shared). Each problem is a line on stdout; "
                    "the exit status is 1 when there is any.")
    check.add_argument("pack", type=Path, metavar="PACK", help="the pack's folder")
    check.set_defaults(run=run_check)


def run_pack(args) -> int:
    render.loop_length(args)  # the loop options' own checks, before anything else
    region = Region.of(args.start, args.end, args.tail)
    sources = [(path, resolve_region(path, region or Region())) for path in _sources(args.sources, args.out)]
    # What can be checked without rendering is checked before --out is made: a refused command leaves no folder.
    plan.check(len(sources), per_source=args.per_source, noises=args.noise)
    settings = _settings(args)  # the recipe and guides read and built on silence
    open_workers = _workers(args, begun=args.out.exists())
    render.prepare_out(args.out)
    try:
        # a kill ends like Ctrl-C (the manifest saved); from here on no other run writes the pack, nor reads it
        # half-written
        with stop_on_terminate(), locked(args.out):
            stored_seed, stored_threads = manifest.stored_run(args.out)
            seed = args.seed if args.seed is not None else stored_seed
            if seed is None:
                seed = random.SystemRandom().randrange(RANDOM_SEEDS)
            if args.threads is None and stored_threads is not None:
                # A rerun renders the rest as the pack's files were (the same bytes), said since the count may be
                # another machine's (a pack begun on 16 cores, resumed on a laptop or a cluster).
                args.threads = stored_threads
                log.info("resuming with the pack's --threads %d, as its files were rendered (give --threads to "
                         "change it)", stored_threads)
            planned = make_plan(sources, per_source=args.per_source, noises=args.noise, seed=seed,
                                settings=settings)
            with Bar(f"pack {args.out.name}", unit="var") as progress:
                summary = make_pack(planned, args.out, lambda: open_workers(planned.settings, args.threads),
                                    progress=progress)
    except Exception as error:
        if files.disk_full(error):  # the pack is consistent (each file and the manifest written atomically)
            raise manifest.PackError(f"{args.out}: no space left on device; free some and run the same command "
                                     "again (finished files are kept)") from None
        raise
    log.info("pack: %d files (%d rendered now), %d contact sheets, in %.0f s; seed %d", summary.files,
             summary.rendered, summary.sheets, summary.seconds, seed)
    print(args.out.resolve(), flush=True)
    return 0


def run_check(args) -> int:
    problems = manifest.validate(args.pack)
    for problem in problems:
        print(problem, flush=True)
    if not problems:
        log.info("%s: every file is there with its checksum", args.pack)
    return 1 if problems else 0


def _sources(paths: list[Path], out: Path) -> list[Path]:
    """The source files, the pack's own folder left out (--out inside a SOURCE folder: its files are no sources)."""
    for path in paths:
        if path.is_dir() and path.resolve() == out.resolve():  # the scan leaves --out out: nothing would be left
            raise ConfigError(f"--out {out} is the source folder {path} itself: give the pack a folder of its own")
    found = list(dict.fromkeys(path.resolve() for path in scan(paths, out_dir=out)))
    if not found:
        raise ConfigError(f"no audio files in {', '.join(map(str, paths))}")
    return found


def _settings(args) -> dict:
    """Every option that decides the bytes, as the recreating command names them (bridge.pack.render)."""
    spec = args.model or constants.DEFAULT_MODEL
    bars = render.loop_length(args)
    return {"model": render.model_reference(spec, spec), "steps": args.steps,
            "sampler": constants.sampler_for(args.sampler, kind=constants.vary_kind(args.loop)),
            "shape": args.shape, "finish": args.finish, "format": args.format, "precision": args.precision,
            "backend": args.backend, "sample_rate": args.sample_rate, "window": args.window,
            "guide": [request.text for request in render.guide_requests(args)], "guide_mode": args.guide_mode,
            "loop": args.loop, "bars": bars.bars if bars else None, "bpm": bars.bpm if bars else None,
            "resample": args.resample}


def _workers(args, *, begun: bool):
    """How the plan is rendered, (settings, threads) -> workers: Ray actors (cluster.py, imported only here), or
    this machine's workers. Asked before --out is made, so Ray missing is said first; a pack not yet begun has its
    model and device checked too (a complete pack's rerun opens no worker and needs neither; a Ray actor finds
    the model on its own machine)."""
    if args.ray is not None:
        from bridge.pack import cluster
        cluster.require()
        return lambda settings, threads: cluster.RayWorkers(settings, address=args.ray, device=args.device,
                                                            threads=threads, actors=args.workers)
    from bridge.engine.devices import pick_device
    from bridge.engine.modelcard import find_model
    from bridge.pack import local
    if not begun:
        find_model(args.model or constants.DEFAULT_MODEL)
        pick_device(args.device)
    # threads: the pack's own when resuming, known only once the pack is locked and read (run_pack)
    return lambda settings, threads: local.open_workers(settings, local.plan_workers(args.device, args.workers,
                                                                                     threads))

