"""One `dd-bridge train` invocation: find the data, start or continue the run, report progress, export."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import torch

from bridge.engine.unet import DanceDiffusionUNet
from bridge.errors import BridgeError, ConfigError
from bridge.training import data
from bridge.training.train import SIZES, Run, Settings, fit, open_run, write_settings

log = logging.getLogger(__name__)


def prepare(data_dirs, run_dir, *, size: str | None = "small", base_model: str | None = None,
            sample_rate: int | None = None, window: int | None = None, steps: int = 1000,
            **options) -> tuple[Settings, DanceDiffusionUNet | None]:
    """The run's settings and, when fine-tuning, the network to start from."""
    model = None
    if base_model is not None:
        from bridge.engine.checkpoints import load_model

        loaded = load_model(base_model)
        model = loaded.model
        config = model.config
        sample_rate = sample_rate or loaded.card.sample_rate
        window = window or loaded.card.window
        options.setdefault("lr", 4e-5)  # the original fine-tuning rate: keep what the model knows
    else:
        if size not in SIZES:
            raise ConfigError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
        config = SIZES[size]
    sample_rate = int(sample_rate or 48000)
    window = int(window or 32768)
    if window <= 0 or window % config.length_multiple:
        raise ConfigError(f"window must be a positive multiple of {config.length_multiple} for this "
                          f"architecture, got {window}")
    if not 8000 <= sample_rate <= 192000:
        raise ConfigError(f"sample rate must be in 8000..192000, got {sample_rate}")
    settings = Settings(data=[str(Path(d).resolve()) for d in data_dirs], architecture=config.to_dict(),
                        sample_rate=sample_rate, window=window, steps=int(steps),
                        base_model=str(base_model) if base_model else None, **options)
    return settings, model


class Progress:
    """A one-line progress report on stderr: step, smoothed loss, speed and time left."""

    def __init__(self, every_seconds: float = 10.0, stream=sys.stderr):
        self.every = every_seconds
        self.stream = stream
        self.last = 0.0
        self.smoothed = None
        self.tty = stream.isatty()
        self.first_step = None
        self.started = time.monotonic()

    def __call__(self, run: Run, loss: float) -> None:
        self.smoothed = loss if self.smoothed is None else 0.98 * self.smoothed + 0.02 * loss
        if self.first_step is None:
            self.first_step, self.started = run.step - 1, time.monotonic()
        now = time.monotonic()
        if now - self.last < (0.5 if self.tty else self.every) and run.step < run.settings.steps:
            return
        self.last = now
        done, total = run.step, run.settings.steps
        rate = (now - self.started) / max(done - self.first_step, 1)
        left = _clock(rate * (total - done))
        width = 24
        bar = "#" * int(width * done / total) + "-" * (width - int(width * done / total))
        line = f"[{bar}] step {done}/{total}  loss {self.smoothed:.4f}  {rate:.2f} s/step  {left} left"
        if self.tty:
            print("\r" + line, end="\n" if done >= total else "", file=self.stream, flush=True)
        else:
            print(line, file=self.stream, flush=True)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def train(data_dirs, run_dir, *, device: str = "cpu", precision: str = "auto", threads: int | None = None,
          should_stop=lambda: False, **settings_options) -> Run:
    """Train (or continue training) in run_dir on the one-shots under data_dirs."""
    run_dir = Path(run_dir)
    if threads:
        torch.set_num_threads(threads)
    settings, model = prepare(data_dirs, run_dir, **settings_options)
    files = data.scan(settings.data)
    if not files:
        raise BridgeError(f"no audio files under {', '.join(settings.data)}")
    run = open_run(run_dir, settings, model, device=device, precision=precision)
    settings = run.settings
    if not settings.held_out_files:
        training, held = data.split_held_out(files, settings.held_out, settings.seed)
        settings.held_out_files = [str(p) for p in held]
        write_settings(run_dir, settings)
    held = {Path(p) for p in settings.held_out_files}
    training = [f for f in files if f not in held]
    shots = data.OneShots.load(training, settings.sample_rate, settings.window)
    if not len(shots):
        raise BridgeError("none of the training files could be read")
    log.info("training on %d files (%d skipped, %d held out) at %d Hz, window %d; %s, %.1f M parameters",
             len(shots), len(shots.skipped), len(held), settings.sample_rate, settings.window,
             run.precision, run.model.num_parameters / 1e6)
    return fit(run, shots.windows, on_step=Progress(), should_stop=should_stop)
