"""Training data: folders of one-shots turned into stereo windows at the model's rate.

Every file is read once, brought to the model's rate and stereo layout as the engine does (so a model hears
training data exactly as it will hear a producer's clips), and cut to the window starting at its onset (one-shots are
short: the whole set fits in memory). Files that cannot be read are listed and skipped, never fatal.

Augmentation changes a batch in ways that keep drums drums: gain, polarity, left/right swap, and (for runs that
ask for them) small onset delays and small pitch shifts. Every random choice comes from the run's generator, so
a resumed run sees the same batches.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr
import torch

from bridge.constants import DEFAULT_SAMPLE_RATE
from bridge.engine.audio import model_length, read_audio, to_model
from bridge.errors import AudioError, BridgeError, ConfigError, one_line

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".aif", ".aiff", ".ogg", ".mp3")
ONSET_DB = -30.0  # a file starts where it first rises within 30 dB of its peak
PRE_ROLL = 32  # frames kept before the onset so the attack is not cut
FADE_OUT = 2048  # frames faded when a long file is cut to the window, so no click is learned
SILENCE = 1e-5  # a file whose peak is below this holds nothing to learn
# A one-shot lasts seconds; a file of 10 minutes is a recording (or a header claiming 1 Hz), and resampled whole it
# would take gigabytes before its first window is cut.
LONGEST_FILE_SECONDS = 600
# Defaults of the two augmentations a new run gets (a run.yaml without them has them off: see TrainingSettings).
ONSET_SHIFT_MS = 5.0  # delays of 0..5 ms: a sample's attack is never exactly at its first frame
PITCH_SEMITONES = 1.0  # pitch shifts of -1..+1 semitone: the same drum tuned a little up or down
PITCH_QUALITY = "HQ"  # soxr: anti-aliased, and fast enough to run on every batch


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


RUN_SETTINGS = "run.yaml"  # train.SETTINGS_FILE: a folder holding one is a training run's (its demos are a model's)


def scan(folders, *, leave_out_runs: bool = False, run_dir=None, out_dir=None,
         left_out: list | None = None) -> list[Path]:
    """Audio files under the folders (or the files themselves), recursively, in a stable order. Hidden files
    (".name": macOS's AppleDouble "._kick.wav" beside every file on an exFAT or SMB drive, our own temporaries)
    are never a producer's sounds and are passed over; a file named on its own is taken as it is.

    With ``leave_out_runs`` (training data), sub-folders holding a run.yaml are not entered: a training run's folder,
    whose demos/ are a model's own renders, not drums to learn from. ``run_dir`` (the run being trained; implies
    leave_out_runs) is not entered wherever it lies, even before its run.yaml exists; nor is ``out_dir`` (where the
    command writes: a pack's --out inside a source folder), which leaves out nothing else. Each folder left out is
    added to ``left_out``, for the caller to say so."""
    leave_out = None
    own = run_dir if run_dir is not None else out_dir
    if leave_out_runs or own is not None:
        mark = _identity(own) if own is not None else None
        leave_out = _run_folders(mark, [] if left_out is None else left_out,
                                 runs=leave_out_runs or run_dir is not None)
    found = []
    for folder in map(Path, folders):
        if folder.is_file():
            found.append(folder)
        elif folder.is_dir():
            found.extend(audio_under(folder, leave_out=leave_out))
        else:
            raise BridgeError(f"{folder}: no such file or folder")
    return sorted(set(found))


def _identity(path) -> tuple[int, int] | None:
    try:
        here = os.stat(path)
    except OSError:  # not made yet: nothing in it to leave out
        return None
    return here.st_dev, here.st_ino


def _run_folders(run_dir: tuple[int, int] | None, left_out: list, *, runs: bool = True):
    """leave_out(folder, identity, top) for audio_under: the run folder anywhere, other runs' below the top (with
    ``runs``)."""
    def leave_out(folder: Path, identity: tuple[int, int], top: bool) -> bool:
        if identity == run_dir or (runs and not top and (folder / RUN_SETTINGS).is_file()):
            left_out.append(folder)
            return True
        return False
    return leave_out


def audio_under(folder: Path, *, leave_out=None) -> list[Path]:
    """The audio files under ``folder``, sorted, through symbolic links to folders too: a producer's library is
    often a folder of links ("kick" -> the kits' kicks), which a plain recursive glob passed over without a word.
    A folder reached twice (a link back up the tree, or two links to one place) is read once, the first in order.
    A folder for which ``leave_out(path, (st_dev, st_ino), is_top)`` is true is not entered. Hidden files and
    folders (".name": macOS's ._kick.wav and .Spotlight-V100, a USB stick's .Trash-1000, a producer's .stash) are
    passed over (see scan); the folder given itself is read, hidden or not."""
    found, seen = [], set()
    for root, folders, names in os.walk(folder, followlinks=True):
        here = os.stat(root)
        identity = (here.st_dev, here.st_ino)
        if identity in seen or (leave_out is not None and leave_out(Path(root), identity, root == os.fspath(folder))):
            folders[:] = []
            continue
        seen.add(identity)
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        found.extend(Path(root) / name for name in names
                     if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_SUFFIXES
                     and (Path(root) / name).is_file())
    return sorted(found)


def _read(path: Path, sample_rate: int) -> np.ndarray:
    """[2, frames] float32 at sample_rate, as the model hears the file."""
    clip = read_audio(path)
    if model_length(clip, sample_rate) > LONGEST_FILE_SECONDS * sample_rate:  # checked before resampling
        raise AudioError(f"{clip.seconds:.0f} s long (at {clip.sample_rate} Hz): longer than "
                         f"{LONGEST_FILE_SECONDS} s, not a one-shot")
    return to_model(clip, sample_rate).numpy()


def onset(samples: np.ndarray) -> int:
    """First frame of [2, frames] within ONSET_DB of the peak, less a short pre-roll."""
    level = np.abs(samples).max(axis=0)
    loud = np.flatnonzero(level >= level.max() * 10 ** (ONSET_DB / 20))
    return max(int(loud[0]) - PRE_ROLL, 0) if len(loud) else 0


def to_window(samples: np.ndarray, window: int) -> np.ndarray:
    """[2, window] from stereo [2, frames]: from the onset, faded out if cut, padded with silence if short."""
    start = onset(samples)
    return to_length(samples[:, start:], window)


def to_length(samples: np.ndarray, window: int) -> np.ndarray:
    """[2, window] from [2, frames]: the start kept, faded out if cut, padded with silence if short."""
    cut = samples[:, :window].copy()
    if window < samples.shape[1]:
        fade = min(FADE_OUT, window)
        cut[:, -fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    out = np.zeros((2, window), dtype=np.float32)
    out[:, :cut.shape[1]] = cut
    return out


@dataclass
class OneShots:
    """Every readable file of a set as one [N, 2, window] tensor, and the files that were skipped."""

    files: list[Path]
    windows: torch.Tensor
    sample_rate: int
    skipped: list[Skipped] = field(default_factory=list)

    @classmethod
    def load(cls, files, sample_rate: int, window: int) -> "OneShots":
        kept, windows, skipped = [], [], []
        for path in files:
            try:
                samples = _read(Path(path), sample_rate)
                if samples.size == 0 or np.abs(samples).max() < SILENCE:
                    raise ValueError("silent or empty")
                windows.append(to_window(samples, window))
                kept.append(Path(path))
            except Exception as error:  # any unreadable file is reported and skipped
                reason = one_line(error) or type(error).__name__
                reason = reason.removeprefix(f"{path}: ")
                skipped.append(Skipped(Path(path), reason))
                log.warning("skipped %s: %s", path, reason)
        stacked = torch.from_numpy(np.stack(windows)) if windows else torch.zeros((0, 2, window))
        return cls(kept, stacked, sample_rate, skipped)

    def __len__(self) -> int:
        return len(self.files)


def split_held_out(files: list[Path], fraction: float, seed: int = 0, *,
                   leave_one: bool = True) -> tuple[list[Path], list[Path]]:
    """(training, held out): a fixed random fraction held out for evaluation, at least one when possible, and
    (``leave_one``) never every file: a run needs one to train on."""
    files = sorted(files)
    if not 0 <= fraction < 1:  # random.sample's "Sample larger than population" said plainly
        raise ConfigError(f"held-out fraction must be in [0, 1), got {fraction!r}")
    count = int(round(len(files) * fraction))
    if fraction > 0 and len(files) > 1:
        count = max(count, 1)
    if leave_one:
        count = min(count, max(len(files) - 1, 0))
    held = set(random.Random(seed).sample(files, count))
    return [f for f in files if f not in held], [f for f in files if f in held]


def split_after_base(files: list[Path], fraction: float, seed: int, base_held, base_trained) -> tuple[list[Path],
                                                                                                   list[Path]]:
    """split_held_out for fine-tuning: the base model's held-out files stay held out and the files it trained on
    stay in training, so `dd-bridge eval` compares base and fine-tune on files neither has learned; only files new
    to the base are split."""
    base_held, base_trained = set(map(Path, base_held)), set(map(Path, base_trained))
    new = [f for f in files if f not in base_held and f not in base_trained]
    held = set(split_held_out(new, fraction, seed, leave_one=False)[1]) | (set(files) & base_held)
    files = sorted(files)
    return [f for f in files if f not in held], [f for f in files if f in held]


def augment(batch: torch.Tensor, generator: torch.Generator, *, sample_rate: int = DEFAULT_SAMPLE_RATE,
            shift_ms: float = 0.0, semitones: float = 0.0, share: slice = slice(None)) -> torch.Tensor:
    """Changes that keep the sound: gain (0 to -6 dB), polarity, left/right swap; with shift_ms, a delay of
    0..shift_ms; with semitones, a pitch shift of -semitones..+semitones.

    The new changes draw from the generator only when asked for, after the old ones: a run without them sees
    exactly the batches it saw before they existed. Only batch[share] is augmented and returned (a rank's share
    under torchrun), but every choice is drawn for the whole batch, so the generator moves as in one process.
    """
    n = batch.shape[0]
    gain = 10 ** (-6.0 * torch.rand(n, generator=generator) / 20)
    polarity = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    swap = torch.rand(n, generator=generator) < 0.5
    batch, gain, polarity, swap = batch[share], gain[share], polarity[share], swap[share]
    batch = torch.where(swap[:, None, None], batch.flip(1), batch)
    batch = batch * (gain * polarity)[:, None, None]
    if semitones > 0:
        ratios = 2 ** ((2 * torch.rand(n, generator=generator) - 1) * semitones / 12)
        batch = pitch_shift(batch, ratios[share], sample_rate)
    if shift_ms > 0:
        most = int(round(shift_ms * sample_rate / 1000))
        batch = delay(batch, torch.randint(0, most + 1, (n,), generator=generator)[share])
    return batch


def delay(batch: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Each item of [N, 2, L] starting frames[i] later, the same length: silence before, faded out if cut."""
    out = [to_length(np.pad(item.numpy(), ((0, 0), (int(k), 0))), item.shape[-1]) for item, k in zip(batch, frames)]
    return torch.from_numpy(np.stack(out))


def pitch_shift(batch: torch.Tensor, ratios: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Each item of [N, 2, L] played ratios[i] times faster (its pitch times ratios[i]), the same length.

    Resampled to sample_rate / ratio and heard at sample_rate; the onset stays where it was (a shift of a
    fraction of the pre-roll), a longer result is faded out where it is cut, a shorter one padded with silence.
    """
    out = []
    for item, ratio in zip(batch, ratios.tolist()):
        moved = soxr.resample(np.ascontiguousarray(item.numpy().T), sample_rate, sample_rate / ratio,
                              quality=PITCH_QUALITY)
        out.append(to_length(np.ascontiguousarray(moved.T), item.shape[-1]))
    return torch.from_numpy(np.stack(out))


def batch_at(windows: torch.Tensor, step: int, batch_size: int, seed: int) -> torch.Tensor:
    """The step's batch, unaugmented: epochs are seeded permutations, so a resumed run sees the same batches."""
    n = len(windows)
    if n == 0:
        raise BridgeError("no readable audio files to train on")
    first = step * batch_size
    index = []
    while len(index) < batch_size:
        epoch, offset = divmod(first + len(index), n)
        order = torch.randperm(n, generator=torch.Generator("cpu").manual_seed(seed * 1_000_003 + epoch))
        index.extend(order[offset:offset + batch_size - len(index)].tolist())
    return windows[index]
