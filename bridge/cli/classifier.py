"""`dd-bridge train-classifier`: a drum classifier for the `class` guide from labelled one-shots (docs/guidance.md,
"The class guide"); the classifier and its card are written as new files, never replacing one."""

from __future__ import annotations

import argparse
import logging
import shlex
import time
from collections import Counter
from pathlib import Path

from bridge import files
from bridge.cli.arguments import bounded_float, bounded_int
from bridge.training.class_recipe import MAX_MEMBERS, Recipe

DEFAULTS = Recipe()
from bridge.errors import BridgeError, CheckpointError
from bridge.progress import Bar

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train-classifier", help="train a drum classifier for the class guide",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a small drum classifier on labelled one-shots and write it as FILE.safetensors with its "
                    "card FILE.yaml (classes, features, training data with each kit's licence, held-out "
                    "accuracy).\n\nDATA labels itself:\n"
                    "  - a Hydrogen kit (a folder with drumkit.xml), or a folder of kits: each sample by its "
                    "instrument's name\n    (else its file's): kick/bd/bass drum, snare/sd, hat/hh, tom, "
                    "cymbal/crash/ride/china/splash, clap,\n    perc (cowbell, conga, tambourine, ...); "
                    "unsure names are left out;\n"
                    "  - any other folder: each sub-folder's name is a label (kick/, snare/, my-808/ ...; "
                    "classes of your own),\n    and files directly in it are labelled by their names as above.",
        epilog="Then: dd-bridge vary kick.wav --guide class=1:FILE.safetensors#snare")
    train.add_argument("data", nargs="+", type=Path, metavar="DATA", help="kits or labelled folders (above)")
    train.add_argument("--out", required=True, type=Path, metavar="FILE", help="the classifier: FILE.safetensors")
    train.add_argument("--held-out-kits", nargs="+", default=[], metavar="KIT",
                       help="kits (folder names) kept out of training: the card's accuracy is measured on them")
    train.add_argument("--chosen-on", nargs="+", default=[], metavar="KIT",
                       help="held-out kits whose figure chose the recipe: the card gives the accuracy on them and on "
                            "the other held-out kits apart (only the others' is a clean test)")
    recipe = train.add_argument_group("recipe", "how it learns (defaults: the shipped classifier's, each measured "
                                                "on held-out kits in docs/guidance.md)")
    recipe.add_argument("--steps", type=bounded_int(1, 1_000_000), default=DEFAULTS.steps, metavar="N",
                        help="training steps of 32 sounds per network (default: %(default)s; about 0.1 s each on "
                             "one core)")
    recipe.add_argument("--augment", choices=("none", "blur", "model"), default=DEFAULTS.augment,
                        help="what besides the clean (coloured) sounds it learns from: nothing (none), blurred "
                             "noisy copies (blur), a diffusion model's denoised estimates of noised copies (model) "
                             "(default: %(default)s)")
    recipe.add_argument("--rough", type=bounded_float(0, 1), default=DEFAULTS.rough, metavar="SHARE",
                        help="the share of training sounds put in a small synthetic room, soft-clipped and over a "
                             "noise floor, as real kits are recorded (default: %(default)s)")
    recipe.add_argument("--masks", type=bounded_int(0, 8), default=DEFAULTS.masks, metavar="N",
                        help="SpecAugment: N random bands and N random moments of each training spectrogram "
                             "silenced (default: %(default)s)")
    recipe.add_argument("--members", type=bounded_int(1, MAX_MEMBERS), default=DEFAULTS.members, metavar="N",
                        help="networks trained from seeds K, K+1, ... and averaged in logits (default: %(default)s)")
    recipe.add_argument("--channels", type=bounded_int(1, 256), nargs="+", default=list(DEFAULTS.channels),
                        metavar="W", help="each convolution layer's width (default: %(default)s)")
    recipe.add_argument("--mels", type=bounded_int(8, 256), default=DEFAULTS.n_mels, metavar="N",
                        help="mel bands of the spectrogram it hears (default: %(default)s)")
    recipe.add_argument("--dropout", type=bounded_float(0, 0.9), default=DEFAULTS.dropout, metavar="P",
                        help="dropout before the last layer while training (default: %(default)s)")
    train.add_argument("--model", default=None, metavar="M",
                       help="the diffusion model whose estimates --augment model uses (default: the bundled one)")
    train.add_argument("--weights-from", type=Path, default=None, metavar="FILE",
                       help="train nothing: FILE's network, with the class guide's ceilings made from DATA's "
                            "training sounds (its own, for a classifier made before ceilings existed), written "
                            "to --out with FILE's card")
    train.add_argument("--ceiling-percentile", nargs="+", type=_class_percentile, default=[],
                       metavar="CLASS=P[@HZ]",
                       help="a class's ceiling (the class guide's, and a new sound's heard as it) at the P-th "
                            "percentile of its training sounds' levels: a class whose sounds share no shape needs "
                            "a high one; CLASS=P@HZ sets it in the bands centred over HZ alone (default: 75, perc "
                            "90, kick 50@500, tom 50@1000)")
    train.add_argument("--seed", type=bounded_int(0, 2**31 - 1), default=0, metavar="K", help="(default: 0)")
    train.add_argument("--cache", type=Path, default=None, metavar="DIR",
                       help="keep the read sounds (and estimates) here: a rerun on the same files reads nothing")
    train.set_defaults(run=run_train_classifier)


def run_train_classifier(args) -> int:
    import torch

    from bridge.engine.classifier import Features, save_classifier
    from bridge.engine.guides.classes import class_ceilings, class_name_problem
    from bridge.training import classify, labels

    weights = args.out if args.out.suffix.lower() == ".safetensors" else args.out.with_name(
        args.out.name + ".safetensors")
    for path in (weights, weights.with_suffix(".yaml")):  # before any work: a taken name costs nothing
        files.check_new(path, CheckpointError)
    items = labels.labelled(args.data)
    for item in items:  # a class the guide could not name would cost its training for nothing
        problem = class_name_problem(item.label)
        if problem:
            raise BridgeError(f"{item.path.parent}: a class named {item.label!r} could not be asked for "
                              f"(class=1:FILE#NAME): {problem}; rename the folder")
    held = set(args.held_out_kits)
    unknown = held - {item.kit for item in items}
    if unknown:
        raise BridgeError(f"--held-out-kits: no kit named {', '.join(sorted(unknown))} in the data "
                          f"(kits: {', '.join(sorted({item.kit for item in items})) or 'none'})")
    if set(args.chosen_on) - held:
        raise BridgeError(f"--chosen-on: {', '.join(sorted(set(args.chosen_on) - held))} not among --held-out-kits")
    taught = {item.label for item in items if item.kit not in held}
    untaught = sorted({item.label for item in items} - taught)
    if untaught:  # in the held-out kits only: a class with nothing to learn it from, and a test it can only fail
        log.warning("left out: %s, only in the held-out kits (nothing to train %s on)", ", ".join(untaught),
                    "it" if len(untaught) == 1 else "them")
        items = [item for item in items if item.label in taught]
        emptied = held - {item.kit for item in items}
        if emptied:  # nothing of it is left to test on
            log.warning("held-out kit %s: none of its sounds is of a trained class; no held-out test on it",
                        ", ".join(sorted(emptied)))
            held -= emptied
            if set(args.chosen_on) & emptied:
                raise BridgeError(f"--chosen-on: {', '.join(sorted(set(args.chosen_on) & emptied))} has no sound of "
                                  "a trained class left to test on")
    data = classify.ClassSet.load(items, Features(), args.cache)
    training = data.indices(held, inside=False)
    if len({int(data.labels[i]) for i in training}) < 2:
        raise BridgeError("fewer than two classes left to train on (after --held-out-kits and unreadable files)")
    odd = sorted({name for name, _, _ in args.ceiling_percentile} - set(data.classes))
    if odd:
        raise BridgeError(f"--ceiling-percentile: no class {', '.join(odd)} in the data "
                          f"(classes: {', '.join(data.classes)})")
    if args.weights_from is not None:
        return _with_ceilings(args, weights, data, training)
    counts = Counter(data.classes[int(data.labels[i])] for i in training)
    log.info("training on %d sounds: %s", len(training), ", ".join(f"{n} {k}" for k, n in counts.items()))
    blurred = None
    if args.augment == "model":
        from bridge.engine.engine import Engine
        engine = Engine(args.model, device="auto")
        with Bar(f"estimates of {engine.card.name}", unit="sound") as progress:
            blurred = classify.estimates(engine, data.windows[training], args.cache, args.seed, progress)
    recipe = _recipe(args)
    total = recipe.steps * recipe.members
    started = time.perf_counter()
    with Bar("train-classifier", unit="step") as progress:
        model = classify.train(data, training, recipe, seed=args.seed, blurred=blurred,
                               progress=lambda step, loss: progress(step, total, f"loss {loss:.3f}"))
    seconds = time.perf_counter() - started
    # The class guide's ceilings, from the same training sounds (bridge/engine/guides/classes.py)
    model.ceilings = class_ceilings(data.windows[training], data.labels[training], data.classes, data.sample_rate,
                                    *_percentiles(args))
    model.ceilings[1]["command"] = _command(args, weights)
    card = {"training": {"command": _command(args, weights), "steps": recipe.steps, "batch": recipe.batch,
                         "augment": recipe.augment, "rough": recipe.rough, "masks": recipe.masks,
                         "members": recipe.members,
                         "dropout": recipe.dropout, "seed": args.seed, "seconds": round(seconds),
                         "hardware": f"{torch.get_num_threads()} CPU threads"},
            "training_data": _kits(data, training, items)}
    if held:
        heldout = data.indices(held, inside=True)
        result = classify.accuracy(model, data, heldout)
        overall = result.card()["overall"]
        log.info("held-out accuracy: %.1f %% +- %.1f over %d sounds of %d kits", 100 * overall["accuracy"],
                 100 * overall["se"], overall["files"], len(result.per_kit))
        figures = result.card() | (result.split(args.chosen_on) if args.chosen_on else {})
        card["held_out"] = {"kits": _kits(data, heldout, items), "accuracy": figures,
                            "measured_by": "this training run, on the held-out kits' clean one-shots"}
    for path in save_classifier(model, weights, **card):
        print(path)
    return 0


def _with_ceilings(args, weights: Path, data, training: list[int]) -> int:
    """--weights-from: the network as it is, its card as it is, and ceilings from ``training`` (module doc)."""
    import torch

    from bridge.engine.classifier import load_classifier, save_classifier
    from bridge.engine.guides.classes import class_ceilings

    model, card = load_classifier(args.weights_from)
    unknown = sorted(set(data.classes) - set(model.classes))
    if unknown:
        raise BridgeError(f"--weights-from {files.shown(str(args.weights_from))}: it has no class "
                          f"{', '.join(unknown)} (its classes: {', '.join(model.classes)})")
    if data.sample_rate != model.features.sample_rate:
        raise BridgeError(f"--weights-from: it hears {model.features.sample_rate} Hz, the data was read at "
                          f"{data.sample_rate} Hz")
    chosen = torch.tensor(training)
    ours = torch.tensor([model.classes.index(name) for name in data.classes])[data.labels[chosen]]
    model.ceilings = class_ceilings(data.windows[chosen], ours, model.classes, data.sample_rate,
                                    *_percentiles(args))
    model.ceilings[1]["command"] = _command(args, weights)
    kept = {key: value for key, value in card.items()
            if key not in ("kind", "classes", "sample_rate", "features", "architecture", "ceilings")}
    for path in save_classifier(model, weights, **kept):
        print(path)
    return 0


def _class_percentile(text: str) -> tuple[str, float, float | None]:
    """CLASS=P or CLASS=P@HZ of --ceiling-percentile: (class, percentile, Hz or None)."""
    name, _, value = text.partition("=")
    value, at, hz = value.partition("@")
    if not name or not value or (at and not hz):
        raise argparse.ArgumentTypeError(f"expected CLASS=P (perc=90) or CLASS=P@HZ (kick=50@500), got {text!r}")
    hz = hz.strip().lower().removesuffix("hz")
    return (name.strip().lower(), bounded_float(1, 100)(value),
            bounded_float(1, 24000)(hz) if at else None)


def _percentiles(args) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """--ceiling-percentile as class_ceilings takes it: whole classes', and (Hz, percentile) over Hz."""
    given = args.ceiling_percentile
    return ({name: p for name, p, hz in given if hz is None},
            {name: (hz, p) for name, p, hz in given if hz is not None})


def _recipe(args):
    return Recipe(steps=args.steps, augment=args.augment, rough=args.rough, masks=args.masks, members=args.members,
                  channels=tuple(args.channels), n_mels=args.mels, dropout=args.dropout)


def _command(args, weights: Path) -> str:
    """The command that trains the same classifier again."""
    if args.weights_from is not None:
        words = ["dd-bridge", "train-classifier", *map(str, args.data), "--out", str(weights), "--weights-from",
                 str(args.weights_from)]
        return shlex.join(words + (["--held-out-kits", *args.held_out_kits] if args.held_out_kits else [])
                          + _percentile_words(args))
    words = ["dd-bridge", "train-classifier", *map(str, args.data), "--out", str(weights), "--steps",
             str(args.steps), "--augment", args.augment, "--rough", str(args.rough), "--masks", str(args.masks), "--members", str(args.members),
             "--channels", *map(str, args.channels), "--mels", str(args.mels), "--dropout", str(args.dropout),
             "--seed", str(args.seed)]
    if args.model:
        words += ["--model", args.model]
    if args.held_out_kits:
        words += ["--held-out-kits", *args.held_out_kits]
    if args.chosen_on:
        words += ["--chosen-on", *args.chosen_on]
    return shlex.join(words + _percentile_words(args))


def _percentile_words(args) -> list[str]:
    given = [f"{name}={value:g}" + (f"@{hz:g}" if hz is not None else "")
             for name, value, hz in args.ceiling_percentile]
    return ["--ceiling-percentile", *given] if given else []


def _kits(data, indices: list[int], items) -> list[dict]:
    """Per kit: its source (author, licence), and its sounds per class."""
    from bridge.training.labels import kit_source

    sources = {item.kit: item.source for item in items}
    entries = []
    for kit in sorted({data.kits[i] for i in indices}):
        per_class = Counter(data.classes[int(data.labels[i])] for i in indices if data.kits[i] == kit)
        entries.append({"kit": kit, "path": str(sources[kit]), **kit_source(sources[kit]),
                        "files": sum(per_class.values()), "classes": dict(sorted(per_class.items()))})
    return entries
