"""One `dd-bridge train` invocation: find the data, start or continue the run, report progress, export."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import torch
import yaml

from bridge import files, pictures
from bridge.constants import DEFAULT_SAMPLE_RATE
from bridge.engine.audio import Clip, write_audio
from bridge.engine.checkpoints import LoadedModel, load_model, save_model
from bridge.engine.devices import hardware, pick_device
from bridge.engine.engine import Engine
from bridge.engine.modelcard import CARD_SUFFIX, WEIGHTS_SUFFIX
from bridge.engine.unet import DanceDiffusionUNet
from bridge.errors import BridgeError, CheckpointError, ConfigError
from bridge.progress import Bar
from bridge.training import data, distributed, recipe
from bridge.training.train import (SIZES, TRAIN_WINDOW, Run, TrainingSettings, fit, open_run, out_of_range,
                                   read_losses, write_settings)

log = logging.getLogger(__name__)

OWN_MESSAGES = ("onset_shift_ms", "pitch_semitones", "ema_decay")  # checked in prepare with their own words


def prepare(data_dirs, *, size: str | None = "small", base_model: str | None = None,
            sample_rate: int | None = None, window: int | None = None, steps: int = 1000, run_dir=None,
            **options) -> tuple[TrainingSettings, DanceDiffusionUNet | None]:
    """The run's settings and, when fine-tuning, the network to start from. Every value is checked before anything
    is written: a continued run keeps what its run.yaml holds, so a value stored there would fail every session."""
    for key, value, allowed in out_of_range({**options, "steps": steps}):
        if key not in OWN_MESSAGES:
            raise ConfigError(f"{key.replace('_', '-')} must be {allowed}, got {value!r}")
    model = None
    options.setdefault("onset_shift_ms", data.ONSET_SHIFT_MS)  # a new run augments fully; see TrainingSettings
    options.setdefault("pitch_semitones", data.PITCH_SEMITONES)
    if base_model is not None:
        loaded = load_model(base_model)
        model = loaded.build().train().requires_grad_(True)
        config = loaded.architecture
        sample_rate = sample_rate or loaded.sample_rate
        window = window or loaded.window
        options.setdefault("lr", 4e-5)  # the original fine-tuning rate: keep what the model knows
        base_held = loaded.card.held_out_files
        if base_held and not options.get("held_out_files"):  # a base trained here: eval stays comparable
            base_data = (loaded.card.extra.get("training") or {}).get("data") or []
            trained = [f for f in data.scan([d for d in base_data if Path(d).exists()], leave_out_runs=True)
                       if f not in set(base_held)]
            files = data.scan([Path(d).resolve() for d in data_dirs], run_dir=run_dir)
            held = data.split_after_base(files, options.get("held_out", 0.1), options.get("seed", 0), base_held,
                                         trained)[1]
            options["held_out_files"] = [str(p) for p in held]
    else:
        if size not in SIZES:
            raise ConfigError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
        config = SIZES[size]
    sample_rate = int(sample_rate or DEFAULT_SAMPLE_RATE)
    window = int(window or TRAIN_WINDOW)
    if window <= 0 or window % config.length_multiple:
        raise ConfigError(f"window must be a positive multiple of {config.length_multiple} for this "
                          f"architecture, got {window}")
    if not 8000 <= sample_rate <= 192000:
        raise ConfigError(f"sample rate must be in 8000..192000, got {sample_rate}")
    if not 0 <= options["onset_shift_ms"] <= 50:  # more would move a kick's attack out of a short window
        raise ConfigError(f"onset shift must be 0 to 50 ms, got {options['onset_shift_ms']:g}")
    if not 0 <= options["pitch_semitones"] <= 12:
        raise ConfigError(f"pitch shift must be 0 to 12 semitones, got {options['pitch_semitones']:g}")
    settings = TrainingSettings(data=[str(Path(d).resolve()) for d in data_dirs], architecture=config.to_dict(),
                                sample_rate=sample_rate, window=window, steps=int(steps),
                                base_model=str(base_model) if base_model else None, **options)
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


def train(data_dirs, run_dir, *, device: str = "auto", precision: str = "auto", threads: int | None = None,
          should_stop=lambda: False, **settings_options) -> Run:
    """Train (or continue training) in run_dir on the one-shots under data_dirs.

    Under torchrun this process joins the group (bridge.training.distributed) and trains on its share of each
    batch; the caller leaves the group (distributed.leave) when done, after rank 0 has exported.
    """
    run_dir = Path(run_dir)
    if threads:
        torch.set_num_threads(threads)
    if any(Path(folder).resolve() == run_dir.resolve() for folder in data_dirs):
        raise ConfigError(f"{run_dir} is a data folder itself: the run would learn its own demos; put the run "
                          "elsewhere (a sub-folder of the data is fine: it is left out)")
    settings, model = prepare(data_dirs, run_dir=run_dir, **settings_options)
    group, device = distributed.join(pick_device(device))
    group.share(settings.batch_size)  # refused here, before anything is written
    left_out = []
    files = data.scan(settings.data, run_dir=run_dir, left_out=left_out)
    if left_out:
        log.info("left out of the training data: %s (a training run's folder: its demos are a model's own "
                 "renders)", ", ".join(map(str, left_out)))
    if not files:
        raise BridgeError(f"no audio files under {', '.join(settings.data)}")
    run = open_run(run_dir, settings, model, device=device, precision=precision, group=group)
    settings = run.settings
    if not settings.held_out_files:
        training, held = data.split_held_out(files, settings.held_out, settings.seed)
        settings.held_out_files = [str(p) for p in held]
        if group.main:
            write_settings(run_dir, settings)
    held = {Path(p) for p in settings.held_out_files}
    training = [f for f in files if f not in held]
    shots = data.OneShots.load(training, settings.sample_rate, settings.window)
    if not len(shots):
        raise BridgeError("none of the training files could be read")
    log.info("training on %d files (%d skipped, %d held out) at %d Hz, window %d; %s, %.1f M parameters%s",
             len(shots), len(shots.skipped), len(held), settings.sample_rate, settings.window,
             run.precision, run.model.num_parameters / 1e6,
             f"; {group.world} processes, {settings.batch_size // group.world} sounds each" if group.distributed
             else "")
    if not pictures.available():  # said once here; each save then skips the pictures quietly
        log.info("matplotlib is not installed: training goes on without loss.png and demo spectrograms "
                 "(pip install 'dd-bridge[%s]' for them)", pictures.EXTRA)
    bar = LossBar()
    try:
        fit(run, shots.windows, on_step=bar, on_save=after_save, should_stop=should_stop)
    finally:
        bar.close()
    return run


def after_save(run: Run) -> None:
    """The loss plot after every save; demo renders every demo_every steps."""
    if pictures.available():
        losses = read_losses(run.dir)
        pictures.loss_curve(run.dir / "loss.png", [r[0] for r in losses], [r[1] for r in losses],
                            title=f"{run.dir.name}: training loss")
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
        "held_out_files": settings.held_out_files,
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
    return save_model(loaded, dst)


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
    with tempfile.TemporaryDirectory(dir=run.dir, prefix=files.TEMPORARY_PREFIX) as folder:
        written = save_model(loaded, Path(folder) / paths[0].stem)
        hashes = [_sha256(path) for path in written]
        record[name] = {"step": before.get("step"), "sha256": sorted({*(before.get("sha256") or []), *hashes})}
        files.replace_file(run.dir / EXPORTED_FILE, yaml.safe_dump(record, sort_keys=False).encode())
        for source, path in zip(written, paths):
            os.replace(source, path)
    record[name] = {"step": run.step, "sha256": hashes}
    files.replace_file(run.dir / EXPORTED_FILE, yaml.safe_dump(record, sort_keys=False).encode())
    return paths
