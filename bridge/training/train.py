"""The training loop of Dance Diffusion's trainer, resumable from a run folder.

As in Harmonai's train_uncond.py: the network predicts v, t is drawn uniformly and bent by the crash schedule,
the loss is the MSE to v = alpha * noise - sigma * x, and an EMA copy of the weights is what inference uses.
Here the optimiser is AdamW with gradient clipping, t is drawn stratified across the batch, and everything a
run needs to continue (weights, EMA, optimiser, step, random state) lives in RUN_DIR/state.pt.
"""

from __future__ import annotations

import copy
import csv
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import yaml
from torch.nn import functional as F

from bridge import files
from bridge.constants import MAX_COUNT
from bridge.engine.schedules import alpha_sigma, crash_schedule
from bridge.engine.unet import DanceDiffusionUNet, UNetConfig
from bridge.errors import BridgeError, ConfigError
from bridge.training import data, recipe
from bridge.training.distributed import SINGLE, Group

log = logging.getLogger(__name__)

# Named sizes for training from scratch. "small" (7.2 M parameters) is the bundled model's architecture: narrow
# outer levels, where the time axis is long and convolutions cost most, the released model's 14 levels (length
# multiple 8192) and its attention placement.
SIZES = {
    "tiny": UNetConfig(channels=(32, 32, 64, 64), n_attn_layers=2),
    "small": UNetConfig(channels=(8, 16, 32, 32, 64, 64) + (96,) * 8, n_attn_layers=4),
    "medium": UNetConfig(channels=(32, 64, 64, 128, 128, 128, 256, 256, 256, 256, 256, 256, 256, 256),
                         n_attn_layers=4),
    "full": UNetConfig(),
}

TRAIN_WINDOW = 32768  # from scratch: 0.68 s at 48 kHz, a whole drum one-shot, half the released models' window

STATE_FILE = "state.pt"
SETTINGS_FILE = data.RUN_SETTINGS  # the data scan leaves a folder holding one out: a run never learns its demos
LOSS_FILE = "loss.csv"


@dataclass
class TrainingSettings:
    """What a run was started with; stored in RUN_DIR/run.yaml so the same command continues it."""

    data: list[str]
    architecture: dict
    sample_rate: int
    window: int
    steps: int
    batch_size: int = 8
    lr: float = 2e-4
    warmup: int = 100
    ema_decay: float = 0.995
    grad_clip: float = 1.0
    weight_decay: float = 0.01
    held_out: float = 0.1
    seed: int = 0
    save_every: int = 50
    demo_every: int = 250
    demo_count: int = 4
    demo_steps: int = 50
    base_model: str | None = None  # the model fine-tuned from, if any
    held_out_files: list[str] = field(default_factory=list)
    # Augmentation beyond gain, polarity and L/R swap (data.augment). Off here, because a run.yaml written before
    # these existed must continue exactly as it started; prepare() gives new runs data's defaults.
    onset_shift_ms: float = 0.0
    pitch_semitones: float = 0.0
    # The recipe (bridge.training.recipe): defaults are the original loss, for new runs and old run.yaml files alike
    loss_weight: str = "flat"
    pre_emphasis: float = 0.0
    t_sampling: str = "uniform"

    @property
    def config(self) -> UNetConfig:
        return UNetConfig.from_dict(self.architecture)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole(low: int, high: int | None = None):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low and (high is None or v <= high)


# What each checked setting may hold, and how to say so: checked on the command line (bridge.cli.train), by
# session.prepare before a run is written, and in a stored run.yaml (an older version wrote what it did not check).
LIMITS = {
    "batch_size": (_whole(1), "a whole number >= 1"),
    "lr": (lambda v: _number(v) and 0 < v < math.inf, "a positive number"),
    "held_out": (lambda v: _number(v) and 0 <= v < 1, "a fraction in [0, 1), e.g. 0.1 for 10 %"),
    "save_every": (_whole(1), "a whole number >= 1"),
    "demo_every": (_whole(0), "a whole number >= 0 (0: no demos)"),
    "demo_count": (_whole(0, MAX_COUNT), f"a whole number in 0..{MAX_COUNT} (0: no demos)"),
    "demo_steps": (_whole(1), "a whole number >= 1"),
    "onset_shift_ms": (lambda v: _number(v) and 0 <= v <= 50, "0 to 50 ms"),
    "pitch_semitones": (lambda v: _number(v) and 0 <= v <= 12, "0 to 12 semitones"),
    "ema_decay": (lambda v: _number(v) and 0 <= v < 1, "in [0, 1)"),
}


def out_of_range(values) -> list[tuple[str, object, str]]:
    """(key, value, what it must be) of each setting in ``values`` (TrainingSettings or a mapping of some of its
    fields) that LIMITS refuses."""
    if not isinstance(values, dict):
        values = asdict(values)
    return [(key, values[key], allowed) for key, (ok, allowed) in LIMITS.items() if key in values and
            not ok(values[key])]


def v_loss(model, reals: torch.Tensor, u: torch.Tensor, noise: torch.Tensor,
           loss_recipe: recipe.Recipe | None = None) -> torch.Tensor:
    """MSE between the predicted and the true v at the crash-schedule times of uniform u (weighted as the recipe
    says; the original recipe is this plain MSE)."""
    t = crash_schedule(u).to(reals.dtype)
    alpha, sigma = (w.to(reals.dtype)[:, None, None] for w in alpha_sigma(t))
    noised = reals * alpha + noise * sigma
    target = noise * alpha - reals * sigma
    if loss_recipe is None or loss_recipe.is_original:
        return F.mse_loss(model(noised, t).float(), target)
    return loss_recipe.loss(model(noised, t).float(), target, alpha, sigma)


@torch.no_grad()
def ema_update(model, ema, decay: float) -> None:
    for p, q in zip(model.parameters(), ema.parameters()):
        q.lerp_(p, 1 - decay)


def ema_decay_at(step: int, decay: float, fine_tuning: bool = False) -> float:
    """Warm-up so early EMA weights are not dominated by the random initialisation. A fine-tune starts from trained
    weights: its EMA averages at the full decay from the first step, so the first noisy steps on new data do not
    replace what the base model knew."""
    return decay if fine_tuning else min(decay, (1 + step) / (10 + step))


def autocast(device: torch.device, precision: str):
    """bf16/fp16 autocast on GPU (and bf16 on CPU when asked); fp32 otherwise."""
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def pick_precision(device: torch.device, precision: str) -> str:
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


class Run:
    """A training run in RUN_DIR: network, EMA, optimiser and step, saved and restored as a whole.

    Under torchrun, group is this process's place (bridge.training.distributed): model stays the plain module
    (saved, averaged into the EMA, exported) and network, the module a step calls, wraps it in DDP.
    """

    def __init__(self, run_dir: Path, settings: TrainingSettings, model: DanceDiffusionUNet, device: torch.device,
                 precision: str = "auto", group: Group = SINGLE):
        self.dir = Path(run_dir)
        self.settings = settings
        self.recipe = recipe.Recipe.from_settings(settings)
        self.device = device
        self.group = group
        self.precision = pick_precision(device, precision)
        self.model = model.to(device).train()
        self.ddp = group.wrap(self.model) if group.distributed else None
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=settings.lr,
                                           weight_decay=settings.weight_decay)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        self.generator = torch.Generator("cpu").manual_seed(settings.seed)
        self.step = 0
        self.elapsed = 0.0  # seconds of training over all sessions of this run

    @property
    def network(self) -> torch.nn.Module:
        """The module a step calls: DDP around model under torchrun, else model itself (as it is now: the
        training bench swaps in its torch.compile'd form)."""
        return self.model if self.ddp is None else self.ddp

    # -- state ---------------------------------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.dir / STATE_FILE

    def save(self) -> None:
        """Write state.pt atomically: a run interrupted mid-save keeps its previous state. Rank 0 only."""
        if not self.group.main:
            return
        state = {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "elapsed": self.elapsed,
            "generator": self.generator.get_state(),
        }
        files.replace_file(self.state_path, lambda file: torch.save(state, file))

    def restore(self) -> None:
        try:
            state = torch.load(self.state_path, map_location=self.device, weights_only=True)
        except Exception as error:
            raise BridgeError(f"{self.state_path}: cannot resume from this run state ({error})") from error
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.elapsed = float(state["elapsed"])
        self.generator.set_state(state["generator"].cpu())

    # -- training ------------------------------------------------------------------------------------------

    def lr_at(self, step: int) -> float:
        return self.settings.lr * min(1.0, (step + 1) / max(self.settings.warmup, 1))

    def train_step(self, reals: torch.Tensor) -> float:
        """One step on reals, this rank's share of the global batch; the global batch's mean loss."""
        n = reals.shape[0] * self.group.world
        share = self.group.share(n)  # u and noise drawn for the whole batch: see bridge.training.distributed
        u = ((torch.arange(n) + torch.rand(n, generator=self.generator)) / n)[share]  # stratified over the batch
        u = self.recipe.times(u)
        noise = torch.randn((n, *reals.shape[1:]), generator=self.generator)[share]
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        with autocast(self.device, self.precision):
            loss = v_loss(self.network, reals.to(self.device), u.to(self.device), noise.to(self.device),
                          self.recipe)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        ema_update(self.model, self.ema,
                   ema_decay_at(self.step, self.settings.ema_decay, self.settings.base_model is not None))
        self.step += 1
        return self.group.mean(loss.detach())


def write_settings(run_dir: Path, settings: TrainingSettings) -> None:
    files.replace_file(run_dir / SETTINGS_FILE, yaml.safe_dump(asdict(settings), sort_keys=False).encode())


def read_settings(run_dir: Path) -> TrainingSettings | None:
    path = Path(run_dir) / SETTINGS_FILE
    if not path.exists():
        return None
    data = files.read_yaml(path, BridgeError)
    try:
        return TrainingSettings(**data)
    except TypeError as error:  # not a mapping, or keys this version does not know
        raise BridgeError(f"{path}: not a run settings file ({error})") from None


def check_stored(run_dir: Path, settings: TrainingSettings) -> None:
    """A continued run keeps its stored settings: one an older version stored without checking it is named, with
    what to do, before anything is written (it would fail the same way in every session)."""
    bad = out_of_range(settings)
    if not bad:
        return
    path = Path(run_dir) / SETTINGS_FILE
    key, value, allowed = bad[0]
    fix = f"correct {key} there" if (Path(run_dir) / STATE_FILE).exists() else \
        "this run has not trained yet: delete that file (or correct the value there)"
    raise ConfigError(f"{path}: {key} is {value!r}, but must be {allowed}; a continued run keeps its stored "
                      f"settings, so {fix} and run the command again")


def append_loss(run_dir: Path, step: int, loss: float, elapsed: float) -> None:
    path = Path(run_dir) / LOSS_FILE
    header = "" if path.exists() else "step,loss,seconds\n"
    with files.open_append(path) as f:  # one write a step: a line is never split between two runs
        f.write(f"{header}{step},{loss:.6f},{elapsed:.1f}\n".encode())


def read_losses(run_dir: Path) -> list[tuple[int, float, float]]:
    path = Path(run_dir) / LOSS_FILE
    if not path.exists():
        return []
    with path.open() as f:
        return [(int(r["step"]), float(r["loss"]), float(r["seconds"])) for r in csv.DictReader(f)]


def open_run(run_dir, settings: TrainingSettings, model: DanceDiffusionUNet | None = None, device="cpu",
             precision: str = "auto", group: Group = SINGLE) -> Run:
    """A new run (settings written by rank 0) or the existing one in run_dir (state restored; settings must
    agree)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    previous = read_settings(run_dir)
    if previous is not None:
        for key in ("architecture", "sample_rate", "window", "data", "base_model"):
            if getattr(previous, key) != getattr(settings, key):
                raise ConfigError(f"{run_dir} holds a run with another {key} ({getattr(previous, key)}); "
                                  "use a new --out folder")
        previous.steps = settings.steps  # the one setting a continued run may change
        check_stored(run_dir, previous)
        settings = previous
    if model is None:
        with torch.random.fork_rng(devices=[]):  # the seed alone decides the starting weights
            torch.manual_seed(settings.seed)
            model = DanceDiffusionUNet(settings.config)
    run = Run(run_dir, settings, model, device, precision, group)
    if run.state_path.exists():
        run.restore()
        log.info("resuming %s at step %d", run_dir, run.step)
    if group.main:
        write_settings(run_dir, settings)
    return run


def fit(run: Run, windows: torch.Tensor, *, on_step=None, on_save=None, should_stop=lambda: False) -> Run:
    """Train until settings.steps, saving every save_every steps and when interrupted.

    on_step(run, loss) after every step; on_save(run) after every save (demos and plots hang here), both on
    rank 0 only. When should_stop() turns true (on any rank) the run is saved where it is and fit returns, so the
    caller exports it.
    """
    settings = run.settings
    group = run.group
    started = time.monotonic()
    start_elapsed = run.elapsed
    try:
        while run.step < settings.steps and not group.any(should_stop(), run.device):
            batch = data.batch_at(windows, run.step, settings.batch_size, settings.seed)
            batch = data.augment(batch, run.generator, sample_rate=settings.sample_rate,
                                 shift_ms=settings.onset_shift_ms, semitones=settings.pitch_semitones,
                                 share=group.share(settings.batch_size))
            loss = run.train_step(batch)
            run.elapsed = start_elapsed + time.monotonic() - started
            if group.main:
                append_loss(run.dir, run.step, loss, run.elapsed)
                if on_step:
                    on_step(run, loss)
            if run.step % settings.save_every == 0 or run.step == settings.steps:
                run.save()
                if on_save and group.main:
                    on_save(run)
                group.barrier()  # the others wait while rank 0 writes
        if run.step % settings.save_every and run.step < settings.steps:  # stopped early (should_stop)
            run.save()
            log.info("stopped: saved %s at step %d; the same command continues", run.dir, run.step)
    except KeyboardInterrupt:
        run.save()
        log.info("interrupted: saved %s at step %d; the same command continues", run.dir, run.step)
        raise
    return run
