"""One `dd-bridge train` invocation: find the data, start or continue the run, report progress, export."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import yaml

from bridge import constants, files, pictures
from bridge.constants import DEFAULT_SAMPLE_RATE
from bridge.engine.audio import Clip, write_audio
from bridge.engine.checkpoints import LoadedModel, load_model, read_safetensors, save_model
from bridge.engine.devices import hardware, pick_device
from bridge.engine.engine import Engine
from bridge.engine.modelcard import CARD_SUFFIX, WEIGHTS_SUFFIX, find_model, window_problem
from bridge.engine.unet import DanceDiffusionUNet
from bridge.errors import BridgeError, CheckpointError, ConfigError
from bridge.progress import Bar
from bridge.training import data, distributed, evaluate, recipe
from bridge.training.train import (SETTINGS_FILE, SIZES, STATE_FILE, TAKEN_ON_RESUME, TRAIN_WINDOW, Run,
                                   TrainingSettings, check_stored, fit, open_run, out_of_range, read_losses,
                                   read_settings, write_settings)

log = logging.getLogger(__name__)

OWN_MESSAGES = ("onset_shift_ms", "pitch_semitones", "ema_decay")  # checked in prepare with their own words
DEFAULT_STEPS = 2000  # a new run's --steps; a continued run goes on to run.yaml's unless given
DATA_FILES = "data-files.json"  # the data's [relative name, size] list that run.yaml's data_files fingerprints
DATA_FILES_BYTES = 1 << 28  # a list of a million files is about 50 MB


def _check_options(options: dict) -> None:
    for key, value, allowed in out_of_range(options):
        if key not in OWN_MESSAGES:
            raise ConfigError(f"{key.replace('_', '-')} must be {allowed}, got {value!r}")


def prepare(data_dirs, *, size: str | None = "small", base_model: str | None = None,
            sample_rate: int | None = None, window: int | None = None, steps: int = DEFAULT_STEPS, run_dir=None,
            **options) -> tuple[TrainingSettings, DanceDiffusionUNet | None]:
    """A new run's settings and, when fine-tuning, the network to start from. Every value is checked before anything
    is written: a continued run keeps what its run.yaml holds, so a value stored there would fail every session."""
    _check_options({**options, "steps": steps})
    model = None
    options.setdefault("onset_shift_ms", data.ONSET_SHIFT_MS)  # a new run augments fully; see TrainingSettings
    options.setdefault("pitch_semitones", data.PITCH_SEMITONES)
    if base_model is not None:
        loaded = load_model(base_model)
        model = loaded.build().train().requires_grad_(True)
        config = loaded.architecture
        # The base by its weights, not by the words that named it: a continued run needs no base file, and one
        # named again (any path, any name) is compared by hash
        options.update(base_sha256=loaded.sha256, base_licence=loaded.card.licence)
        base_model = str(find_model(base_model).resolve())
        sample_rate = sample_rate or loaded.sample_rate
        window = window or loaded.window
        options.setdefault("lr", 4e-5)  # the original fine-tuning rate: keep what the model knows
        if loaded.card.lineage:  # what the base learnt from, and its bases: eval leaves it out of a reference
            options.setdefault("base_training", loaded.card.lineage)
        base_held = evaluate.held_out(loaded.card)
        if base_held and not options.get("held_out_files"):  # a base trained here: eval stays comparable
            # compared as the files they are (the base's card names them as they lay then), kept as scanned here
            files = {evaluate.resolved(f): f for f in data.scan([Path(d).resolve() for d in data_dirs],
                                                                run_dir=run_dir)}
            held = data.split_after_base(list(files), options.get("held_out", 0.1), options.get("seed", 0),
                                         base_held, evaluate.trained_on(loaded.card))[1]
            options["held_out_files"] = [str(files[p]) for p in held]
    else:
        config = _size(size or "small")
    sample_rate = int(sample_rate or DEFAULT_SAMPLE_RATE)
    window = int(window or TRAIN_WINDOW)
    problem = window_problem(config, window)  # a model card's own check: the first step would fail otherwise
    if problem:
        raise ConfigError(problem)
    if not 8000 <= sample_rate <= 192000:
        raise ConfigError(f"sample rate must be in 8000..192000, got {sample_rate}")
    if not 0 <= options["onset_shift_ms"] <= 50:  # more would move a kick's attack out of a short window
        raise ConfigError(f"onset shift must be 0 to 50 ms, got {options['onset_shift_ms']:g}")
    if not 0 <= options["pitch_semitones"] <= 12:
        raise ConfigError(f"pitch shift must be 0 to 12 semitones, got {options['pitch_semitones']:g}")
    settings = TrainingSettings(data=[str(Path(d).resolve()) for d in data_dirs], architecture=config.to_dict(),
                                sample_rate=sample_rate, window=window, steps=int(steps), base_model=base_model,
                                **options)
    recipe.Recipe.from_settings(settings)  # a bad --loss-weight, --pre-emphasis or --t-sampling: said before loading
    if not 0 <= settings.ema_decay < 1:
        raise ConfigError(f"EMA decay must be in [0, 1), got {settings.ema_decay:g}")
    return settings, model


class LossBar:
    """fit()'s on_step: the progress bar (bridge.progress) with the loss, smoothed over about 50 steps."""

    def __init__(self):
        self.bar = Bar("train", counts="step {n_fmt}/{total_fmt}", unit="step")
        self.smoothed: float | None = None

    def __call__(self, run: Run, loss: float) -> None:
        self.smoothed = loss if self.smoothed is None else 0.98 * self.smoothed + 0.02 * loss
        self.bar(run.step, run.settings.steps, note=f"loss {self.smoothed:.4f}")

    def close(self) -> None:
        self.bar.close()


def _size(size: str):
    if size not in SIZES:
        raise ConfigError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    return SIZES[size]


def _flag(key: str) -> str:
    return f"--{key.replace('_', '-')}"


def resume(previous: TrainingSettings, run_dir, *, size: str | None = None, base_model: str | None = None,
           sample_rate: int | None = None, window: int | None = None, steps: int | None = None,
           **options) -> tuple[TrainingSettings, DanceDiffusionUNet | None, list[str]]:
    """The settings that continue the run whose run.yaml holds ``previous``, given the options typed this time
    (None: not given), the network to start from when it has not saved a state yet (a fine-tune's base), and a
    line for each option typed otherwise than run.yaml holds it, to log once the data is found.

    The architecture, rate and window are run.yaml's; given otherwise they are refused in one line naming its
    value. The base model is not needed (state.pt holds the weights); given again it is compared by its weights'
    hash. Every other option follows train.TAKEN_ON_RESUME (taken) or is kept, and each that differs from run.yaml
    is said in one line (docs/training-data.md, "Continuing a run")."""
    run_dir = Path(run_dir)
    path = run_dir / SETTINGS_FILE
    check_stored(run_dir, previous)
    try:
        config = previous.config
    except (TypeError, ValueError, AttributeError) as error:
        raise ConfigError(f"{path}: architecture: {str(error)[:200]}") from None
    problem = window_problem(config, previous.window)
    if problem:  # written by an older version, which checked less: its first step failed
        fix = "this run has not trained yet: delete that file" if not (run_dir / STATE_FILE).exists() else \
            "correct the window there"
        raise ConfigError(f"{path}: {problem}; {fix} and run the command again")
    given = {key: value for key, value in options.items() if value is not None}
    _check_options({**given, **({"steps": steps} if steps is not None else {})})
    if size is not None and _size(size).to_dict() != previous.architecture:
        raise ConfigError(f"{path}: this run's architecture is {_architecture_name(previous)}, not --size {size}; "
                          "leave out --size to continue it")
    if sample_rate is not None and sample_rate != previous.sample_rate:
        raise ConfigError(f"{path}: this run trains at {previous.sample_rate} Hz, not --sample-rate {sample_rate}; "
                          "leave out --sample-rate to continue it")
    if window is not None and window != previous.window:
        raise ConfigError(f"{path}: this run's window is {previous.window}, not --window {window}; leave out "
                          "--window to continue it")
    model = _base_for(previous, run_dir, base_model)
    changes, notes = {}, []
    if steps is not None:
        given["steps"] = int(steps)
    for key, value in given.items():
        if not hasattr(previous, key):
            raise ConfigError(f"unknown training setting {key!r}")
        stored = getattr(previous, key)
        if value == stored:
            continue
        if key in TAKEN_ON_RESUME:
            changes[key] = value
            notes.append(f"takes {_flag(key)} {value} (run.yaml had {stored})")
        else:
            notes.append(f"keeps {key} {stored} from run.yaml ({_flag(key)} {value} ignored)")
    return replace(previous, **changes), model, notes


def _architecture_name(settings: TrainingSettings) -> str:
    named = [name for name, config in SIZES.items() if config.to_dict() == settings.architecture]
    if named:
        return named[0]
    return "its base model's" if settings.base_model else files.shown(settings.architecture)


def _base_for(previous: TrainingSettings, run_dir: Path, given: str | None) -> DanceDiffusionUNet | None:
    """A continued fine-tune's base: checked when given again (by the weights' hash; an older run.yaml holds
    the name as typed), loaded only while the run has no state.pt to start from."""
    path = run_dir / SETTINGS_FILE
    needed = previous.base_model is not None and not (run_dir / STATE_FILE).exists()
    if given is None and not needed:
        return None
    if previous.base_model is None:
        raise ConfigError(f"{path}: this run trains from scratch, not from {given}; leave out --from to continue "
                          f"it (another --out starts a fine-tune of {given})")
    if given is not None and not previous.base_sha256 and str(given) == previous.base_model and not needed:
        return None  # an older run.yaml: the same words, as the older version compared them
    try:
        loaded = load_model(given if given is not None else previous.base_model)
    except BridgeError as error:
        if given is not None:
            raise
        raise ConfigError(f"{run_dir} has no {STATE_FILE} yet, so it starts from its base model, which is not "
                          f"here ({error}); give --from with that model") from None
    stored = previous.base_sha256
    if not stored and given is not None and str(given) != previous.base_model:
        try:  # an older run.yaml: compared by the weights when the base it names is still there
            stored = load_model(previous.base_model).sha256
        except BridgeError:
            raise ConfigError(f"{path}: this run fine-tunes {previous.base_model}, which is not here to compare "
                              f"with --from {given}; leave out --from to continue it") from None
    if stored and loaded.sha256 != stored:
        if given is None:  # the base at run.yaml's path, replaced since
            raise ConfigError(f"{path}: this run fine-tunes {previous.base_model} as it was (weights {stored[:12]}), "
                              f"which holds other weights now ({loaded.sha256[:12]}); give --from with the model "
                              "it started from")
        raise ConfigError(f"{path}: this run fine-tunes {previous.base_model} (weights {stored[:12]}), not "
                          f"{given} (weights {loaded.sha256[:12]}); leave out --from to continue it")
    return loaded.build().train().requires_grad_(True) if needed else None


# -- where the data is -------------------------------------------------------------------------------------------
# run.yaml records the data by where it lay (data: the folders, absolute) and by what it holds (data_files: the
# count, bytes and sha256 of [relative name, size] of every file, the list itself in DATA_FILES). A relative name
# is "N/path" below the N-th (from 0) DATA_DIR ("N/." for a file given as DATA_DIR); held_out_files are named so.


def relative_name(path: Path, roots: list[Path]) -> str | None:
    """path's relative name under the first of roots that holds it (None: under none of them)."""
    for number, root in enumerate(roots):
        if path == root or root in path.parents:
            return f"{number}/{path.relative_to(root).as_posix()}"
    return None


def data_listing(roots: list[Path], found: list[Path]) -> dict[Path, tuple[str, int]]:
    """{file: (relative name, size)} of the files found under roots."""
    listing = {}
    for path in found:
        name = relative_name(path, roots)
        if name is None:
            continue
        try:
            size = path.stat().st_size
        except OSError:  # gone since the scan: it will be skipped as unreadable too
            size = -1
        listing[path] = (name, size)
    return listing


def fingerprint(entries: list[tuple[str, int]]) -> dict:
    """data_files of run.yaml for the sorted [relative name, size] entries."""
    text = json.dumps(sorted(map(list, entries)), separators=(",", ":"))
    return {"files": len(entries), "bytes": sum(max(size, 0) for _, size in entries),
            "sha256": hashlib.sha256(text.encode()).hexdigest()}


def held_out_paths(settings: TrainingSettings) -> list[Path]:
    """settings.held_out_files as paths under settings.data (an older run.yaml's absolute ones as they are)."""
    paths = []
    for name in settings.held_out_files:
        number, _, rest = str(name).partition("/")
        if Path(name).is_absolute() or not number.isdigit() or int(number) >= len(settings.data):
            paths.append(Path(name))
        else:
            paths.append(Path(settings.data[int(number)]) / rest)
    return paths


def _read_listing(run_dir: Path, stored: dict) -> dict[str, int] | None:
    """The list run.yaml's data_files fingerprints ({relative name: size}), when DATA_FILES still holds it."""
    try:
        entries = json.loads(files.read_regular(run_dir / DATA_FILES, DATA_FILES_BYTES))
        if fingerprint([(str(name), int(size)) for name, size in entries])["sha256"] == stored.get("sha256"):
            return {str(name): int(size) for name, size in entries}
    except (OSError, ValueError, TypeError):
        pass
    return None


def _without_hidden(run_dir: Path, stored: dict) -> str | None:
    """The sha256 of the stored listing with its hidden files and folders left out, where it has any: a run begun
    before they were passed over (macOS's ._kick.wav beside each sound on an exFAT or SMB disk, a .Trash folder)
    listed them, and the same data, moved, must still be the same. None where there are none (or no listing)."""
    before = _read_listing(run_dir, stored)
    if before is None:
        return None
    kept = [(name, size) for name, size in before.items()  # N/dir/name: hidden below the data folder N
            if not any(part.startswith(".") for part in name.split("/")[1:])]
    return fingerprint(kept)["sha256"] if len(kept) < len(before) else None


def _shown(name: str, roots: int) -> str:
    number, _, rest = name.partition("/")
    return rest if roots == 1 else f"{rest} (DATA_DIR {int(number) + 1})"


def _differences(run_dir: Path, stored: dict, here: dict[str, int], roots: int) -> str:
    """What differs between the data a run trained on and the files here, in a few words."""
    before = _read_listing(run_dir, stored)
    if before is None:
        return (f"{len(here)} files ({sum(max(s, 0) for s in here.values())} bytes) here, {stored.get('files')} "
                f"files ({stored.get('bytes')} bytes) when it trained")
    missing = [name for name in before if name not in here]
    new = [name for name in here if name not in before]
    resized = [name for name in before if name in here and here[name] != before[name]]
    parts = []
    if missing:
        parts.append(f"{len(missing)} of its {len(before)} files missing, e.g. {_shown(min(missing), roots)}")
    if resized:
        parts.append(f"{len(resized)} of another size, e.g. {_shown(min(resized), roots)}")
    if new:
        parts.append(f"{len(new)} new, e.g. {_shown(min(new), roots)}")
    return "; ".join(parts)


def place_data(run_dir, settings: TrainingSettings, previous: TrainingSettings | None, roots: list[Path],
               listing: dict[Path, tuple[str, int]]) -> TrainingSettings:
    """settings with the data where it lies now (data, held_out_files relative to it, data_files).

    A continued run accepts its data anywhere (other folders, given from another directory) when the files are
    the same (relative names and sizes), and refuses other files in one line saying what differs. At the folders
    run.yaml names, changed files are said and trained on, as before. An older run.yaml (no data_files) continues
    where its data lay and is then recorded, so that it can move from then on."""
    run_dir = Path(run_dir)
    path = run_dir / SETTINGS_FILE
    place = [str(root) for root in roots]
    entries = list(listing.values())
    now = fingerprint(entries)
    if previous is None or previous.data_files is None:  # a new run, or an older run.yaml: recorded from now on
        if previous is not None and previous.data != place:
            raise ConfigError(f"{path} was written by an older version, which knows its data only by where it lay "
                              f"({', '.join(previous.data)}); pass the data at that place once (restore or link it "
                              "there): the run then records its files, and continues with them anywhere after that")
        held = [relative_name(Path(name), roots) for name in settings.held_out_files]
        outside = [name for name, relative in zip(settings.held_out_files, held) if relative is None]
        if outside:  # its data: edited by hand in run.yaml
            raise ConfigError(f"{path}: its held-out files lie outside its data (e.g. {outside[0]}); continue it "
                              "once with the data where it lay when the run started")
        digest = {"held_out": held_out_digest(held, roots)} if held else {}  # a new run's: once they are chosen
        return replace(settings, data=place, held_out_files=held, data_files={**now, **digest})
    stored = previous.data_files
    if not isinstance(stored, dict) or not isinstance(stored.get("sha256"), str):
        raise ConfigError(f"{path}: data_files must be a mapping with files, bytes and sha256 (as this version "
                          f"writes it), got {files.shown(stored)}")
    bad = [name for name in settings.held_out_files if not Path(name).is_absolute() and not (
        str(name).partition("/")[0].isdigit() and int(str(name).partition("/")[0]) < len(previous.data))]
    if bad:
        raise ConfigError(f"{path}: held_out_files names {files.shown(bad[0])}, not a file of its data "
                          f"(N/NAME, N from 0 to {len(previous.data) - 1})")
    hidden_only = now["sha256"] != stored["sha256"] and now["sha256"] == _without_hidden(run_dir, stored)
    if hidden_only:
        log.info("the hidden files and folders among the data the run began on (.name: macOS's ._ files, a .stash) "
                 "are passed over now: training on the others")
    if now["sha256"] != stored["sha256"] and not hidden_only:
        differs = _differences(run_dir, stored, dict(entries), len(roots))
        if previous.data != place:
            raise ConfigError(f"{run_dir} was trained on other files than those in {', '.join(place)} ({differs}); "
                              "pass the same data to continue it (the same folders, in the same order, wherever "
                              "they lie now)")
        log.info("the data in %s changed since the last session (%s): training on the files there now; the "
                 "held-out ones stay held out", ", ".join(place), differs)
    elif previous.data != place:
        # Names and sizes alike, but which folder is which: two folders of fixed-length renders given in another
        # order look the same by them, and the held-out names would then point at the other folder's files, while
        # the ones held out were trained on. Their first bytes tell.
        if stored.get("held_out") and held_out_digest(settings.held_out_files, roots) != stored["held_out"]:
            raise ConfigError(f"{run_dir}: its held-out files are not the ones in {', '.join(place)} (the same names "
                              "and sizes, other sounds: the folders in another order?); pass the data folders in "
                              f"the order the run started with ({', '.join(Path(d).name for d in previous.data)})")
        log.info("the data moved: %s now (the same %d files as in %s)", ", ".join(place), len(entries),
                 ", ".join(previous.data))
    digest = {"held_out": held_out_digest(settings.held_out_files, roots)} if settings.held_out_files else {}
    return replace(settings, data=place, data_files={**now, **digest})


HELD_OUT_BYTES = 1 << 20  # of each held-out file: enough to tell two sounds apart, little to read for a long one


def held_out_digest(held: list[str], roots: list[Path]) -> str:
    """A digest of the held-out files' names and first bytes (N/NAME under roots[N]; one missing counts as such)."""
    digest = hashlib.sha256()
    for name in sorted(map(str, held)):
        number, _, rest = name.partition("/")
        digest.update(name.encode() + b"\0")
        try:
            with open(roots[int(number)] / rest, "rb") as file:
                digest.update(file.read(HELD_OUT_BYTES))
        except (OSError, ValueError, IndexError):
            digest.update(b"\0missing")
    return digest.hexdigest()


def _write_listing(run_dir: Path, settings: TrainingSettings, entries: list[tuple[str, int]]) -> None:
    if _read_listing(run_dir, settings.data_files) is None:
        files.replace_file(run_dir / DATA_FILES, json.dumps(sorted(map(list, entries))).encode())


def base_licence(settings: TrainingSettings, given: str | None = None) -> str:
    """The licence an export of the run inherits: its base model's, as run.yaml records it (an older run.yaml:
    read from the base where it still is); "unknown" from scratch or when the base is not here."""
    if settings.base_licence is not None:
        return settings.base_licence
    if settings.base_model is None:
        return "unknown"
    try:
        return load_model(given or settings.base_model).card.licence
    except BridgeError as error:
        log.warning("the exported model's licence is 'unknown' (give --licence): %s", error)
        return "unknown"


def train(data_dirs, run_dir, *, device: str = "auto", precision: str = "auto", threads: int | None = None,
          should_stop=lambda: False, **settings_options) -> Run:
    """Train (or continue training) in run_dir on the one-shots under data_dirs.

    Options left out (or None) are a new run's defaults, or what run_dir's run.yaml holds (``resume``).
    Under torchrun this process joins the group (bridge.training.distributed) and trains on its share of each
    batch; the caller leaves the group (distributed.leave) when done, after rank 0 has exported.
    """
    run_dir = Path(run_dir)
    if threads:
        torch.set_num_threads(threads)
    if any(Path(folder).resolve() == run_dir.resolve() for folder in data_dirs):
        raise ConfigError(f"{run_dir} is a data folder itself: the run would learn its own demos; put the run "
                          "elsewhere (a sub-folder of the data is fine: it is left out)")
    previous = read_settings(run_dir)
    notes = []
    if previous is None:
        settings, model = prepare(data_dirs, run_dir=run_dir,
                                  **{key: value for key, value in settings_options.items() if value is not None})
    else:
        settings, model, notes = resume(previous, run_dir, **settings_options)
    group, device = distributed.join(pick_device(device))
    group.share(settings.batch_size)  # refused here, before anything is written
    roots = [Path(folder).resolve() for folder in data_dirs]
    left_out = []
    found = data.scan(roots, run_dir=run_dir, left_out=left_out)
    if left_out:
        log.info("left out of the training data: %s (a training run's folder: its demos are a model's own "
                 "renders)", ", ".join(map(str, left_out)))
    if not found:
        raise BridgeError(f"no audio files under {', '.join(map(str, roots))}")
    listing = data_listing(roots, found)
    settings = place_data(run_dir, settings, previous, roots, listing)
    for note in notes:
        log.info("%s", note)
    if group.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_listing(run_dir, settings, list(listing.values()))
    run = open_run(run_dir, settings, model, device=device, precision=precision, group=group)
    settings = run.settings
    if not settings.held_out_files:
        _, held = data.split_held_out(found, settings.held_out, settings.seed)
        settings.held_out_files = [listing[path][0] for path in held]
        settings.data_files = {**(settings.data_files or {}), "held_out": held_out_digest(settings.held_out_files,
                                                                                         roots)}
        if group.main:
            write_settings(run_dir, settings)
    held = set(held_out_paths(settings))
    training = [f for f in found if f not in held]
    shots = data.OneShots.load(training, settings.sample_rate, settings.window)
    if not len(shots):
        raise BridgeError("none of the training files could be read")
    log.info("training on %d files (%d skipped, %d held out) at %d Hz, window %d; %s, %.1f M parameters%s",
             len(shots), len(shots.skipped), len(found) - len(training), settings.sample_rate, settings.window,
             run.precision, run.model.num_parameters / 1e6,
             f"; {group.world} processes, {settings.batch_size // group.world} sounds each" if group.distributed
             else "")
    if not pictures.available():  # said once here; each save then skips the pictures quietly
        log.info("matplotlib is not installed: training goes on without loss.png and demo spectrograms "
                 "(%s for them)", constants.install_command(pictures.EXTRA))
    bar = LossBar()
    try:
        fit(run, shots.windows, on_step=bar, on_save=after_save, should_stop=should_stop)
    finally:
        bar.close()
        if group.main:  # the steps since the last periodic save too (a --time-limit stop, Ctrl-C): loss.png whole
            try:
                plot_losses(run)
            except Exception as error:  # noqa: BLE001 - a picture: never in place of what ended the run
                log.debug("loss.png not drawn: %s", error)
    return run


def plot_losses(run: Run) -> None:
    """loss.png from loss.csv (nothing without matplotlib: said once at the start)."""
    losses = read_losses(run.dir) if pictures.available() else []
    if losses:
        pictures.loss_curve(run.dir / "loss.png", [r[0] for r in losses], [r[1] for r in losses],
                            title=f"{run.dir.name}: training loss")


def after_save(run: Run) -> None:
    """The loss plot after every save; demo renders every demo_every steps."""
    plot_losses(run)
    every = run.settings.demo_every
    if every and run.settings.demo_count and run.step % every < run.settings.save_every:
        render_demos(run)


def render_demos(run: Run) -> list[Path]:
    """demo_count sounds from the EMA weights, same seeds each time, as WAVs and one spectrogram PNG."""
    settings = run.settings
    folder = run.dir / "demos"
    folder.mkdir(exist_ok=True)
    stem = f"step{run.step:07d}"
    picture = folder / f"{stem}.png"
    last_sound = folder / f"{stem}-{settings.demo_count}.wav"
    if picture.exists() or (last_sound.exists() and not pictures.available()):  # made before an interruption
        return []
    started = time.monotonic()
    # Eager on a GPU too: a network never warmed up never compiles (bridge.engine.backends.cuda), so no minutes of
    # torch.compile, no CUDA graph pool taken from training, and no backend flags changed for the run around it.
    engine = Engine.from_module(run.ema, settings.sample_rate, settings.window, name=run.dir.name)
    with torch.no_grad():
        audio = engine.generate(settings.demo_count, steps=settings.demo_steps, seed=list(range(settings.demo_count)))
    paths, tiles = [], []
    for i, tensor in enumerate(audio):
        path = folder / f"{stem}-{i + 1}.wav"
        clip = Clip(tensor.numpy().T, settings.sample_rate)
        if not path.exists():
            paths.append(write_audio(path, clip, "pcm24"))
        tiles.append(pictures.Tile(f"{path.name} · seed {i}", clip))
    if pictures.available():
        paths.append(pictures.contact_sheet(picture, [tiles], title=f"{run.dir.name}: step {run.step}", dpi=80))
    log.info("demos at step %d in %.0f s: %s", run.step, time.monotonic() - started, paths[-1] if paths else folder)
    return paths


def export(run: Run, dst=None, *, name: str | None = None, licence: str = "unknown",
           provenance: str | None = None, **extra) -> tuple[Path, Path]:
    """The run's EMA weights in the project's own format, with a card that records how they were trained.

    Unnamed, each export is a new "RUN-stepN" pair. Named (--name), the pair keeps its name: a later session
    replaces the run's own earlier export (exported.yaml records its hashes), never a file the run did not write.
    """
    settings = run.settings
    default = f"{run.dir.name}-step{run.step}"
    named = bool(name) and dst is None
    name = name or default
    training = {
        "data": settings.data,
        "held_out_files": [str(path) for path in held_out_paths(settings)],  # where they lie now, for eval
        "steps": run.step,
        "seconds": round(run.elapsed),
        "hardware": hardware(run.device),
        "precision": run.precision,
        "base_model": settings.base_model,
        "batch_size": settings.batch_size,
        "lr": settings.lr,
        "ema_decay": settings.ema_decay,
        "onset_shift_ms": settings.onset_shift_ms,
        "pitch_semitones": settings.pitch_semitones,
        "loss_weight": settings.loss_weight,
        "pre_emphasis": settings.pre_emphasis,
        "t_sampling": settings.t_sampling,
    }
    if settings.base_training:
        training["base_training"] = settings.base_training
    if named:
        done = check_export_name(run.dir, name)
        if _exported(run.dir).get(name, {}).get("step") == run.step and all(path.exists() for path in done):
            log.info("already exported at step %d: %s", run.step, done[0])  # a finished run, asked again
            return done
    loaded = LoadedModel.from_network(
        run.ema, name=name, sample_rate=settings.sample_rate, window=settings.window, licence=licence,
        provenance=provenance or f"trained with dd-bridge train ({run.step} steps)", training=training, **extra)
    if named:
        return _replace_export(run, name, loaded, done)
    dst = Path(dst) if dst is not None else run.dir / name
    done = (run.dir / f"{default}.safetensors", run.dir / f"{default}.yaml")
    if dst == run.dir / default and all(path.exists() for path in done):
        log.info("already exported at step %d: %s", run.step, done[0])  # a finished run, asked again
        return done
    if dst == run.dir / default and done[0].exists() and not done[1].exists() and _own_weights(done[0], loaded):
        # A stop between the weights and their card (save_model writes the card last): the run's own export cut
        # short, which refused every later export of this step ("already exists"). Written again, whole.
        log.info("%s: an export cut short before its card; writing it again", done[0])
        done[0].unlink()
    return save_model(loaded, dst)


def _own_weights(path: Path, loaded: LoadedModel) -> bool:
    """Whether ``path`` holds exactly ``loaded``'s weights (a file the run wrote), not anyone else's file."""
    try:
        found = read_safetensors(path)
    except BridgeError:
        return False
    mine = loaded.state_dict
    return found.keys() == mine.keys() and all(torch.equal(found[key], mine[key].detach().cpu()) for key in mine)


EXPORTED_FILE = "exported.yaml"  # {name: {step, sha256: [...]}}: the files the run wrote under a --name


def check_export_name(run_dir, name: str) -> tuple[Path, Path]:
    """The files a --name export writes in run_dir: free, or the run's own earlier export of that name (which the
    export replaces); refused otherwise, in one line. Asked before training, and again at the export."""
    if Path(name).name != name or name in (".", ".."):
        raise ConfigError(f"--name {name!r}: a file name, not a path (the model is written into the run folder)")
    base = Path(run_dir) / name
    weights = base.with_suffix(WEIGHTS_SUFFIX) if base.suffix.lower() in (WEIGHTS_SUFFIX, CARD_SUFFIX) \
        else base.with_name(base.name + WEIGHTS_SUFFIX)
    paths = (weights, weights.with_suffix(CARD_SUFFIX))
    ours = set(_exported(run_dir).get(name, {}).get("sha256") or [])
    for path in paths:
        if (path.exists() or path.is_symlink()) and _sha256(path) not in ours:
            raise CheckpointError(f"{path}: already exists and this run did not export it there; not overwriting "
                                  "it (move it away or choose another --name)")
    return paths


def _exported(run_dir) -> dict:
    path = Path(run_dir) / EXPORTED_FILE
    record = files.read_yaml(path, BridgeError) if path.exists() else {}
    if not isinstance(record, dict):
        return {}
    return {key: value for key, value in record.items() if isinstance(value, dict)}


def _sha256(path: Path) -> str | None:
    if not path.is_file():  # a folder, a FIFO (never opened: it would wait), a dangling link: not ours
        return None
    try:
        with path.open("rb") as file:
            return files.sha256_of(file)
    except OSError:
        return None


def _replace_export(run: Run, name: str, loaded: LoadedModel, paths: tuple[Path, Path]) -> tuple[Path, Path]:
    """save_model beside the run, then each file moved onto its name in one rename (the card last, so the model
    is complete whenever its card is there). Every hash is recorded before the move: an interruption anywhere leaves
    files the next session knows as the run's own."""
    record = _exported(run.dir)
    before = record.get(name, {})
    with tempfile.TemporaryDirectory(dir=run.dir, prefix=files.TEMPORARY_FOLDER_PREFIX) as folder:
        written = save_model(loaded, Path(folder) / paths[0].stem)
        hashes = [_sha256(path) for path in written]
        record[name] = {"step": before.get("step"), "sha256": sorted({*(before.get("sha256") or []), *hashes})}
        files.replace_file(run.dir / EXPORTED_FILE, yaml.safe_dump(record, sort_keys=False).encode())
        for source, path in zip(written, paths):
            os.replace(source, path)
    record[name] = {"step": run.step, "sha256": hashes}
    files.replace_file(run.dir / EXPORTED_FILE, yaml.safe_dump(record, sort_keys=False).encode())
    return paths
