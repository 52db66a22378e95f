"""`dd-bridge guides`: the guides installed (built-in and plug-ins), with their units and targets, and the saved
recipes; `dd-bridge save-recipe`: guides saved as a recipe by name; `dd-bridge eval-guides`: how far each moves its
measure on a model (docs/guidance.md)."""

from __future__ import annotations

from pathlib import Path

from bridge import constants
from bridge.cli.arguments import bounded_int
from bridge.cli.render import guide_request, guide_requests, model_options, open_engine, recipes_folder, setting
from bridge.daemon import steering
from bridge.engine.guides import evaluate, recipes, registry
from bridge.errors import ConfigError
from bridge.training.data import OneShots, scan
from bridge.training.evaluate import Judge


def register(subparsers) -> None:
    guides = subparsers.add_parser("guides", help="list the guides and saved recipes",
                                   description="List the guides --guide NAME=WEIGHT[:TARGET] takes, with their "
                                               "units and targets, and the recipes --recipe NAME finds.")
    guides.set_defaults(run=run_guides)

    save = subparsers.add_parser("save-recipe", help="save guides as a recipe by name",
                                 description="Save the guides as a recipe NAME in the recipes folder, for --recipe "
                                             "NAME here, recipe=NAME in the service and the DAWs' Recipe menus. A "
                                             "recipe of that name there is never replaced.")
    save.add_argument("name", metavar="NAME", help="the recipe's name, without .yaml (letters, digits, ' .-_')")
    save.add_argument("--guide", action="append", type=guide_request, default=[], metavar="NAME=WEIGHT[:TARGET]",
                      help="a guide of the recipe, repeatable, as generate and vary take it")
    save.add_argument("--recipe", default=None, metavar="NAME|FILE",
                      help="start from this recipe's guides (the --guide options add to them)")
    save.add_argument("--description", default="", metavar="TEXT", help="what the recipe makes, in a few words")
    save.set_defaults(run=run_save_recipe)

    figures = subparsers.add_parser("eval-guides", help="how far each guide moves its measure",
                                    description="Render PAIRS new sounds with and without each guide (the same "
                                                "seeds) and print where each guide's measure went.")
    figures.add_argument("--guide", action="append", type=guide_request, default=None,
                         metavar="NAME=WEIGHT[:TARGET]",
                         help=f"a guide to evaluate, repeatable (default: {' '.join(evaluate.DEFAULT_GUIDES)})")
    figures.add_argument("--recipe", action="append", default=None, metavar="NAME|FILE",
                         help="a recipe to evaluate, repeatable: its guides render together, and each one's "
                              "measure is read on those renders (with only recipes, no lone guides are rendered)")
    figures.add_argument("--pairs", type=bounded_int(1, 1024), default=32, metavar="N",
                         help="seeds per guide (default: %(default)s)")
    figures.add_argument("--seconds", type=setting("seconds"), default=None, metavar="T",
                         help="length of each sound (default: 0.5; with --data, the model's window)")
    figures.add_argument("--data", nargs="+", type=Path, default=None, metavar="DIR",
                         help="real one-shots: also print how much less like them each guide makes the sounds "
                              "(MMD^2 on dd-bridge eval's features, paired, with its standard error); a class "
                              "guide's renders also against the real sounds of the asked class, where kits or "
                              "class folders label them")
    figures.add_argument("--class-judge", nargs="+", type=Path, default=None, metavar="DIR",
                         help="labelled one-shots (as train-classifier reads them) for an independent judge of "
                              "class guides: logistic regression on dd-bridge eval's features, a model that did "
                              "not guide, so a guide that fools its own classifier is caught")
    figures.add_argument("--seed", type=setting("seed"), default=0, metavar="K",
                         help="the first seed (default: %(default)s)")
    figures.add_argument("--best-of", type=bounded_int(1, 64), default=1, metavar="N",
                         help="also render N unguided sounds per pair and keep the best by each guide's measure: "
                              "guidance against choosing, at N times the unguided cost (default: off)")
    figures.add_argument("--guide-mode", choices=registry.MODES, default="auto",
                         help="auto: full on a CUDA GPU, else cheap (default: %(default)s)")
    model_options(figures)
    figures.set_defaults(run=run_eval_guides, steps=20)


def run_guides(args) -> int:
    for name, kind in sorted(registry.available().items()):
        print(f"{name} ({getattr(kind, 'unit', '?')}): a positive weight: {getattr(kind, 'summary', '?')}")
        print(f"    target: {getattr(kind, 'target_help', '?')}")
        ends = getattr(kind, "ends", None)
        if ends is not None:
            low, high = (kind.shown(end) for end in ends)
            print(f"    without a target it stops at {low:g} (negative weight) or {high:g} {kind.unit} (positive), "
                  "where real one-shots stop")
    folder = recipes_folder()
    saved = recipes.recipe_names(folder)
    print(f"recipes in {folder}: {', '.join(saved) or 'none'} (save one: dd-bridge save-recipe NAME --guide ...)")
    print("built-in recipes (--recipe NAME; a file of the same name in that folder is used instead):")
    for name in sorted(recipes.BUILT_IN):
        recipe = recipes.built_in(name)
        print(f"  {name}: {' '.join('--guide ' + request.text for request in recipe.guides)}"
              f"{' (yours in that folder is used)' if name in saved else ''}")
        print(f"    {recipe.description}")
    return 0


def run_save_recipe(args) -> int:
    """Each guide is built once on silence first (steering.checked, as the service checks them): a typo is one line
    and no file."""
    requests = steering.checked(tuple(guide_requests(args)), constants.DEFAULT_SAMPLE_RATE, True)
    path = recipes.save_recipe(args.name, requests, recipes_folder(), args.description)
    print(f"saved recipe {args.name}: {' '.join('--guide ' + request.text for request in requests)}")
    print(f"  {path}")
    return 0


def run_eval_guides(args) -> int:
    together = [(recipe.name, recipe.guides) for recipe in
                (recipes.load_recipe(spec, recipes_folder()) for spec in args.recipe or ())]
    requests = args.guide or ([] if together else [registry.parse_request(text) for text in evaluate.DEFAULT_GUIDES])
    registry.check(requests + [request for _name, guides in together for request in guides])
    engine, _model = open_engine(args, kind=constants.NEW_SOUND)  # new sounds: generate's sampler unless --sampler
    mode = registry.resolve_mode(args.guide_mode, engine.device.type, engine.backend)
    judge, seconds = None, 0.5 if args.seconds is None else args.seconds
    if args.data is not None:
        if args.pairs < 3:
            raise ConfigError(f"--pairs must be at least 3 with --data (the error leaves one out), got {args.pairs}")
        shots = OneShots.load(scan(args.data), engine.sample_rate, engine.window)
        if len(shots) < 2:
            raise ConfigError(f"--data: need at least 2 readable audio files, found {len(shots)}")
        judge = Judge(shots.windows, engine.sample_rate, labels=_labels(args.data, shots.files))
        seconds = engine.window / engine.sample_rate if args.seconds is None else args.seconds
    class_judge = _class_judge(args.class_judge, engine.sample_rate) if args.class_judge else None
    print(f"{engine.card.name} on {engine.device} ({mode} mode): {args.pairs} pairs of {seconds:g} s, "
          f"{args.steps} {args.sampler} steps, seeds {args.seed}..{args.seed + args.pairs - 1}", flush=True)
    evaluate.evaluate(engine, requests, pairs=args.pairs, seconds=seconds, steps=args.steps, sampler=args.sampler,
                      seed=args.seed, mode=mode, judge=judge, best_of=args.best_of, class_judge=class_judge,
                      clip_class=_clip_class, report=lambda line: print(line, flush=True), together=together)
    return 0


def _clip_class(path: str) -> str | None:
    """The drum class a match clip's file name says (the label rule: "PearlKick-Med.wav" a kick), or None."""
    from bridge.training.labels import label

    return label(Path(path).stem)


def _labels(data, files) -> list[str | None]:
    """Each reference file's drum class where the label rule reads one (kits, class folders), else None: a class
    guide's renders are then also judged against the real sounds of the asked class."""
    from bridge.training.labels import labelled_folder

    found = {item.path.resolve(): item.label for folder in data if folder.is_dir()
             for item in labelled_folder(folder)}
    return [found.get(Path(path).resolve()) for path in files]


def _class_judge(folders, rate: int):
    """The judge's ``names(audio)``, trained on ``folders``; its accuracy on each kit left out goes to stdout."""
    from bridge.engine.classifier import Features
    from bridge.training.class_judge import FeatureJudge
    from bridge.training.classify import ClassSet
    from bridge.training.labels import labelled

    data = ClassSet.load(labelled(folders), Features(sample_rate=rate))
    overall = FeatureJudge.left_out_accuracy(data).card()
    print(f"class judge: {len(data.kits)} sounds of {len(set(data.kits))} kits; on each kit when trained on the "
          f"others: {100 * overall['overall']['accuracy']:.1f} % +- {100 * overall['overall']['se']:.1f}", flush=True)
    return FeatureJudge(data.windows, data.labels, data.classes, rate).names
