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
import pickle
import shutil
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import yaml
from torch.nn import functional as F

from bridge import files
from bridge.constants import MAX_COUNT
from bridge.engine.checkpoints import check_finite, check_shapes, load_failure
from bridge.engine.schedules import alpha_sigma, crash_schedule
from bridge.engine.unet import DanceDiffusionUNet, UNetConfig
from bridge.errors import BridgeError, CheckpointError, ConfigError, one_line
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

# A loss that is NaN or infinite. In fp32 and bf16 (no GradScaler) that step's update has already spoilt the
# weights: clipping a NaN gradient norm scales every gradient by NaN, and the optimiser steps anyway. The run then
# stops (Diverged) before anything more is saved, so state.pt stays the last good one. With fp16 the GradScaler skips
# every step whose gradients overflow and leaves the weights as they were; while it finds its scale that is
# routine, and the loss is finite then (the scaled gradients overflow, not the loss). A non-finite loss under the
# scaler means the forward pass itself overflowed: one such step is skipped by the scaler (the weights untouched) and
# left out of loss.csv, but SKIPPED_IN_A_ROW of them in a row stop the run, since lowering the scale cannot fix a
# forward pass and a run that skips every step is not training. Whatever the loss said, weights or EMA that are not
# finite are never saved (Run.save) and a state.pt holding them is not resumed (Run.restore), so never exported.
SKIPPED_IN_A_ROW = 20


class Diverged(BridgeError):
    """Training went NaN or infinite: the run stopped, its last good state.pt kept."""


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
    base_model: str | None = None  # the model fine-tuned from, if any (its resolved path since base_sha256)
    # The files kept out for eval: relative to the data folders ("0/kick.wav": kick.wav in the first DATA_DIR) in
    # a run.yaml that has data_files, so a run continues with its data elsewhere; absolute paths in older ones
    held_out_files: list[str] = field(default_factory=list)
    # Augmentation beyond gain, polarity and L/R swap (data.augment). Off here, because a run.yaml written before
    # these existed must continue exactly as it started; prepare() gives new runs data's defaults.
    onset_shift_ms: float = 0.0
    pitch_semitones: float = 0.0
    # The recipe (bridge.training.recipe): defaults are the original loss, for new runs and old run.yaml files alike
    loss_weight: str = "flat"
    pre_emphasis: float = 0.0
    t_sampling: str = "uniform"
    # Written since runs continue on another machine (bridge.training.session; absent from older run.yaml files):
    # the base model's weights (LoadedModel.sha256) and licence, so a continued fine-tune needs no base file, and
    # the data's fingerprint {files, bytes, sha256} over its relative names and sizes (the list: data-files.json)
    base_sha256: str | None = None
    base_licence: str | None = None
    data_files: dict | None = None
    # What the base and its own bases trained on (ModelCard.lineage: [{data, held_out_files}]), copied into the
    # export's card so eval leaves those files out of a reference too; absent from older run.yaml files
    base_training: list | None = None

    @property
    def config(self) -> UNetConfig:
        return UNetConfig.from_dict(self.architecture)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


SEED_LIMIT = 2**42


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
    # Negative seeds were always taken (older runs store them); the batch order seeds torch with seed x 1,000,003
    # plus the epoch, which must stay inside torch's 64-bit seeds: 2^42 leaves room.
    "seed": (_whole(-SEED_LIMIT, SEED_LIMIT), "a whole number between -2^42 and 2^42"),
    "warmup": (_whole(0), "a whole number of steps >= 0"),
    "grad_clip": (lambda v: _number(v) and v > 0, "a positive number (the largest gradient norm)"),
    "weight_decay": (lambda v: _number(v) and 0 <= v < math.inf, "a number >= 0"),
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
    says; the original recipe is this plain MSE).

    The schedule is float64 maths (bridge.engine.schedules): it runs on the CPU, and only its results, in the
    batch's dtype, go to the batch's device. MPS has no float64 at all (a Mac's `dd-bridge train` failed at its
    first step), and on the CPU the values are the same bits as computing it where the batch is."""
    t = crash_schedule(u.detach().cpu()).to(reals.dtype)
    alpha, sigma = (w.to(reals.dtype).to(reals.device)[:, None, None] for w in alpha_sigma(t))
    t = t.to(reals.device)
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


def _nbytes(value) -> int:
    """The bytes of the tensors in a state (nested dicts, lists and tuples): about what torch.save writes."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    return 0


def _megabytes(count: int) -> str:
    return f"{count / 1e6:,.0f}" if count >= 10e6 else f"{count / 1e6:.1f}"


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
        self.saved_step: int | None = None  # the step state.pt holds (None: none written or restored yet)
        self.skipped = False  # whether the GradScaler skipped the last step (fp16: its gradients overflowed)
        self.skipped_in_a_row = 0  # steps in a row with a non-finite loss that the scaler skipped

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
        """Write state.pt atomically: a run interrupted mid-save keeps its previous state. Rank 0 writes.

        Every rank first checks that the weights and the EMA are finite (they are the same on every rank, so all
        stop together): NaN weights never replace the last good state (Diverged). A write that fails (a full disk)
        is one line naming state.pt, and the previous state.pt stays."""
        spoilt = self.nonfinite()
        if spoilt:
            raise self.diverged(f"the {spoilt} became NaN or infinite")
        if not self.group.main:
            self.saved_step = self.step
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
        try:
            files.replace_file(self.state_path, lambda file: torch.save(state, file))
        except (OSError, RuntimeError) as error:
            if isinstance(error, RuntimeError) and files.system_error(error) is None \
                    and "inline_container" not in str(error):
                raise  # not a write that failed (torch's writer words those so): a bug, shown as one
            raise BridgeError(self._not_saved(error, _nbytes(state))) from None
        self.saved_step = self.step

    def _not_saved(self, error: BaseException, need: int) -> str:
        """One line for a state.pt that could not be written: a full disk said as such, with the space it needs."""
        kept = f"the previous state.pt (step {self.saved_step}) is kept" if self.saved_step is not None else \
            "the previous state.pt is kept" if self.state_path.exists() else "nothing was saved"
        try:
            free = shutil.disk_usage(self.dir).free
        except OSError:
            free = None
        cause = files.system_error(error)
        if files.disk_full(error) or (free is not None and free < need):
            room = f", {_megabytes(free)} MB free" if free is not None else ""
            return (f"{self.state_path}: disk full while saving (about {_megabytes(need)} MB needed{room}); {kept}: "
                    "free space and run the same command again to continue")
        return f"{self.state_path}: cannot save ({files.reason(cause) if cause else one_line(error)}); {kept}"

    def restore(self) -> None:
        """The state in state.pt: refused in one line naming it when it is no run state of this network (another
        architecture, a file that would run code) or holds NaN weights (a run that diverged before this was
        checked)."""
        path = self.state_path
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except pickle.UnpicklingError as error:  # torch's reason, without its advice to turn weights_only off
            raise BridgeError(f"{path}: cannot resume from this run state (refused: {load_failure(error)})") \
                from None
        except Exception as error:
            raise BridgeError(f"{path}: cannot resume from this run state ({load_failure(error)})") from None
        if not isinstance(state, dict) or not {"model", "ema", "optimizer", "step"} <= state.keys():
            raise BridgeError(f"{path}: cannot resume from this run state (not a state.pt written by dd-bridge train)")
        try:
            for part, name in (("model", "weights"), ("ema", "EMA weights")):
                try:
                    check_finite(state[part], path)
                except CheckpointError as error:  # check_finite's "PATH: KEY holds NaN ...": the key said here
                    first = str(error).removeprefix(f"{path}: ").split(" holds ")[0]
                    raise BridgeError(f"{path}: its {name} hold NaN or infinite values (first: {first}), saved by "
                                      "a run that diverged; nothing to continue from: start again in a new --out "
                                      "folder with a lower --lr") from None
            for part in ("model", "ema"):
                check_shapes(state[part], self.settings.config, path)
        except CheckpointError as error:
            raise BridgeError(f"{error}; it is the state of another architecture than {self.dir / SETTINGS_FILE} "
                              "(or the command line) gives: continue it with the --size or --from it started with, "
                              "or start again in a new --out folder") from None
        except (AttributeError, TypeError) as error:  # not a mapping of tensors
            raise BridgeError(f"{path}: cannot resume from this run state ({one_line(error)})") from None
        try:
            self.model.load_state_dict(state["model"])
            self.ema.load_state_dict(state["ema"])
            self.optimizer.load_state_dict(state["optimizer"])
            scaler = state.get("scaler") or {}
            if scaler or not self.scaler.is_enabled():
                self.scaler.load_state_dict(scaler)
            else:  # saved where no scaler ran (fp32 on a CPU, bf16 on an A100/H100), continued in fp16 (a T4, a V100)
                log.info("%s was saved without fp16 loss scaling: it starts afresh here", path.name)
            self.step = int(state["step"])
            self.elapsed = float(state.get("elapsed", 0.0))
            self.generator.set_state(state["generator"].cpu())
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
            raise BridgeError(f"{path}: cannot resume from this run state ({one_line(error)})") from None
        self.saved_step = self.step

    def nonfinite(self) -> str:
        """"weights" or "EMA weights" when they hold a NaN or infinite value, else "" (one sync for each)."""
        for name, module in (("weights", self.model), ("EMA weights", self.ema)):
            checks = [torch.isfinite(t).all() for t in module.state_dict().values() if t.is_floating_point()]
            if checks and not bool(torch.stack(checks).all()):
                return name
        return ""

    def diverged(self, what: str) -> Diverged:
        """The error that stops a run gone NaN, saying what is kept and what to do."""
        kept = f"{self.state_path} kept at step {self.saved_step}" if self.saved_step is not None \
            else "nothing was saved yet"
        lower = (f"lower lr in {self.dir / SETTINGS_FILE} and run the same command to continue from there, or start "
                 "a new --out folder with a lower --lr") if self.saved_step is not None \
            else "start again in a new --out folder with a lower --lr"
        return Diverged(f"{what} at step {self.step}; {kept} ({lower})")

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
            loss = v_loss(self.network, reals.to(self.device), u, noise.to(self.device),  # u: v_loss's CPU maths
                          self.recipe)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        scale = self.scaler.get_scale() if self.scaler.is_enabled() else None  # fp16 only: its sync costs there
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.skipped = scale is not None and self.scaler.get_scale() < scale  # it backs off after a skipped step
        ema_update(self.model, self.ema,
                   ema_decay_at(self.step, self.settings.ema_decay, self.settings.base_model is not None))
        self.step += 1
        return self.group.mean(loss.detach())

    def check_loss(self, loss: float) -> bool:
        """Whether the loss of the step just taken counts (is finite); Diverged when the run cannot go on: see
        SKIPPED_IN_A_ROW. The loss is the global batch's, so every rank decides alike."""
        if math.isfinite(loss):
            self.skipped_in_a_row = 0
            return True
        self.skipped_in_a_row += 1
        if not self.skipped or self.skipped_in_a_row >= SKIPPED_IN_A_ROW:
            raise self.diverged(f"loss became {'NaN' if math.isnan(loss) else 'infinite'}")
        log.warning("step %d: loss %s in fp16, step skipped (the weights are as they were)", self.step, loss)
        return False


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
    """(step, loss, seconds) in step order, the last row of each step (a loss.csv written before trim_losses existed
    can hold a step twice) and without a row a crash cut short."""
    path = Path(run_dir) / LOSS_FILE
    if not path.exists():
        return []
    rows = {}
    with path.open() as f:
        for r in csv.DictReader(f):
            try:
                rows[int(r["step"])] = (int(r["step"]), float(r["loss"]), float(r["seconds"]))
            except (TypeError, ValueError):
                continue
    return [rows[step] for step in sorted(rows)]


def trim_losses(run_dir: Path, step: int) -> None:
    """loss.csv without the rows past ``step``, where the run continues: a session killed after its last save had
    written rows for steps that are now trained (and written) again. Rewritten atomically, only when it changes."""
    path = Path(run_dir) / LOSS_FILE
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return
    if not text.startswith(b"step,"):  # empty, or not ours: left as it is
        return
    header, *lines = text.split(b"\n")
    kept = []
    for line in lines:
        try:
            if int(line.split(b",", 1)[0]) <= step and line.count(b",") == 2:
                kept.append(line)
        except ValueError:  # a row cut short by a crash, or the empty string after the last newline
            continue
    trimmed = b"\n".join([header, *kept]) + b"\n"
    if trimmed != text:
        files.replace_file(path, trimmed)


# What a continued run does with each setting it is given again (docs/training-data.md, "Continuing a run";
# bridge.training.session says each difference in one line before this is reached):
# - taken: how far to go and when to save or render demos; no step depends on them.
TAKEN_ON_RESUME = ("steps", "save_every", "demo_every", "demo_count", "demo_steps")
# - refused when different: another network or another input is another run.
REFUSED_ON_RESUME = ("architecture", "sample_rate", "window")
# - where the data lies now, taken once session.train has matched the files to run.yaml's data_files (their
#   relative names and sizes) and re-mapped the held-out files; a base model only by its weights' hash.
DATA_PLACE = ("data", "held_out_files", "data_files")
# - every other setting (batch_size, lr, seed, ema_decay, held_out, the augmentation and the recipe, warmup,
#   grad_clip, weight_decay) is kept from run.yaml: the run continues with the batches and updates it started with.


def continued(run_dir, previous: TrainingSettings, given: TrainingSettings) -> TrainingSettings:
    """run.yaml's settings (``previous``) continued with what ``given`` may change (the rules above); a setting
    that cannot change is refused in one line naming run.yaml's value."""
    path = Path(run_dir) / SETTINGS_FILE
    for key in REFUSED_ON_RESUME:
        if getattr(previous, key) != getattr(given, key):
            raise ConfigError(f"{path}: this run's {key} is {files.shown(getattr(previous, key))}, not "
                              f"{files.shown(getattr(given, key))}; leave it out to continue the run with its own")
    if previous.base_sha256 and given.base_sha256 and previous.base_sha256 != given.base_sha256:
        raise ConfigError(f"{path}: this run fine-tunes {previous.base_model}, not {given.base_model} (other "
                          "weights); leave out --from to continue it")
    check_stored(run_dir, previous)
    taken = {key: getattr(given, key) for key in TAKEN_ON_RESUME}
    if given.data_files is not None:
        taken.update({key: getattr(given, key) for key in DATA_PLACE})
    return TrainingSettings(**{**asdict(previous), **taken})


def open_run(run_dir, settings: TrainingSettings, model: DanceDiffusionUNet | None = None, device="cpu",
             precision: str = "auto", group: Group = SINGLE) -> Run:
    """A new run (settings written by rank 0) or the existing one in run_dir: run.yaml's settings continued with
    ``settings`` (``continued``) and the state restored. Rank 0 first removes what a save or an export killed
    mid-write left in the folder (a run folder is trained by one command at a time)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    previous = read_settings(run_dir)
    if previous is not None:
        settings = continued(run_dir, previous, settings)
    if group.main:
        removed = files.remove_leftovers(run_dir)
        if removed:
            log.info("removed what an interrupted save left in %s: %s (%.1f MB)", run_dir,
                     ", ".join(name for name, _ in removed), sum(size for _, size in removed) / 1e6)
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


class _StopAtStepEnd:
    """SIGINT (Ctrl-C), SIGTERM (a service manager, torchrun stopping its workers) and SIGHUP (the terminal closed)
    while fit trains: the first one asks the loop to stop when the step under way ends, then the run is saved there.
    A save in the middle of a step would hold a generator already past the step counter, or weights that include a
    step not counted, and the run would not continue with the same batches; the wait is one step (and the demos of a
    save then due) at most. A second one, REPEAT_SECONDS or more after the first, stops at once without saving (the
    state.pt there stays); sooner, it is the same stop said twice (systemd signals a whole cgroup, and torchrun
    passes the same signal on to its workers a few ms later). torchrun kills its workers 30 s after passing a
    signal on: a step longer than that is cut without its save. Installed in the main thread only (the one Python
    runs handlers in), not for a signal ignored (nohup), and the handlers there before are put back afterwards."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
    REPEAT_SECONDS = 1.0

    def __init__(self):
        self.requested = False
        self.forced = False
        self.before = {}
        self._first = 0.0  # when the first signal came (time.monotonic)

    def __enter__(self) -> "_StopAtStepEnd":
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                if signal.getsignal(number) is not signal.SIG_IGN:  # `nohup dd-bridge train`: the terminal may close
                    self.before[number] = signal.signal(number, self.handle)
        return self

    def handle(self, number, frame) -> None:
        if self.requested:
            if time.monotonic() - self._first < self.REPEAT_SECONDS:
                return  # the same stop, passed on twice
            self.forced = True
            raise KeyboardInterrupt
        self.requested, self._first = True, time.monotonic()
        log.warning("%s: stopping when this step ends, to save the run (again to stop at once, without saving)",
                    signal.Signals(number).name)

    def __exit__(self, *exc) -> None:
        for number, before in self.before.items():
            signal.signal(number, signal.SIG_DFL if before is None else before)


def _save_together(run: Run, on_save=None) -> None:
    """run.save() and on_save (rank 0's demos) as one decision all ranks take: when rank 0 cannot save (a full
    disk) or its demos fail, every rank stops at once with rank 0's reason, instead of the others waiting at the
    next collective for DD_DDP_TIMEOUT_S (10 minutes by default) while rank 0 has already gone. The vote is also the barrier
    the others wait at while rank 0 writes."""
    failure = None
    try:
        run.save()
        if on_save and run.group.main:
            on_save(run)
    except Exception as error:  # noqa: BLE001 - re-raised below, on every rank, after the vote
        failure = error
    if run.group.any(failure is not None, run.device):
        if failure is not None:
            raise failure
        raise BridgeError("stopped: rank 0 could not save the run (its message says why)")


def fit(run: Run, windows: torch.Tensor, *, on_step=None, on_save=None, should_stop=lambda: False) -> Run:
    """Train until settings.steps, saving every save_every steps and when interrupted.

    on_step(run, loss) after every step; on_save(run) after every save (demos and plots hang here), both on
    rank 0 only. When should_stop() turns true (on any rank) the run is saved where it is and fit returns, so the
    caller exports it. SIGINT or SIGTERM stop it at the end of the step under way, saved there (_StopAtStepEnd),
    and raise KeyboardInterrupt; so does a KeyboardInterrupt raised by on_step or on_save. A loss or weights gone
    NaN raise Diverged without saving (SKIPPED_IN_A_ROW).
    """
    settings = run.settings
    group = run.group
    started = time.monotonic()
    start_elapsed = run.elapsed
    if group.main:
        trim_losses(run.dir, run.step)  # the steps from here on are trained, and written, again
    between_steps = True  # the run in memory is where a step ended: a save now continues exactly
    with _StopAtStepEnd() as interrupt:
        try:
            while run.step < settings.steps and not group.any(should_stop() or interrupt.requested, run.device):
                between_steps = False
                batch = data.batch_at(windows, run.step, settings.batch_size, settings.seed)
                batch = data.augment(batch, run.generator, sample_rate=settings.sample_rate,
                                     shift_ms=settings.onset_shift_ms, semitones=settings.pitch_semitones,
                                     share=group.share(settings.batch_size))
                loss = run.train_step(batch)
                counted = run.check_loss(loss)
                between_steps = True
                run.elapsed = start_elapsed + time.monotonic() - started
                if group.main and counted:
                    append_loss(run.dir, run.step, loss, run.elapsed)
                    if on_step:
                        on_step(run, loss)
                if run.step % settings.save_every == 0 or run.step == settings.steps:
                    _save_together(run, on_save)
            interrupted = group.any(interrupt.requested, run.device)
            if run.step != (run.saved_step or 0) and (interrupted or run.step < settings.steps):
                _save_together(run)  # stopped between two saves (should_stop, a signal)
            if interrupted and run.step >= settings.steps:
                # The stop came in the last step: the run is finished and saved, and exporting it is what the
                # run was for (a rerun would only export). The export is written atomically like every save.
                log.info("the stop came as the last step ended: exporting the finished run")
                interrupted = False
            elif (interrupted or run.step < settings.steps) and run.step == run.saved_step:
                log.info("%s: saved %s at step %d; the same command continues",
                         "interrupted" if interrupted else "stopped", run.dir, run.step)
        except KeyboardInterrupt:  # at once: a second signal, or raised by on_step or on_save
            if between_steps and run.step == run.saved_step:
                log.info("interrupted: saved %s at step %d; the same command continues", run.dir, run.step)
            elif interrupt.forced or not between_steps:  # mid-step, the state in memory would not continue exactly
                log.info("interrupted at once, not saved: %s", f"{run.state_path} kept at step {run.saved_step}"
                         if run.saved_step is not None else "nothing was saved")
            elif run.step:
                run.save()
                log.info("interrupted: saved %s at step %d; the same command continues", run.dir, run.step)
            raise
    if interrupted:
        raise KeyboardInterrupt
    return run
