"""The training data loader on real one-shots and on the odd files producers' folders hold."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from bridge.errors import BridgeError, ConfigError
from bridge.training import data

RATE = 48000
WINDOW = 8192


@pytest.fixture
def odd_folder(tmp_path, drum_samples):
    """A folder of real drums in every shape, plus files that cannot be used."""
    hit, rate = soundfile.read(drum_samples["wav"], dtype="float32", always_2d=True)
    mono = hit.mean(axis=1)
    nested = tmp_path / "kit" / "deeper"
    nested.mkdir(parents=True)
    soundfile.write(tmp_path / "mono.wav", mono, RATE)  # at the model rate: comparable frame by frame
    soundfile.write(nested / "stereo_22k.flac", np.stack([mono, -mono], 1)[::2], rate // 2)
    soundfile.write(tmp_path / "quad.wav", np.stack([mono, mono, 0 * mono, 0 * mono], 1), rate, subtype="FLOAT")
    soundfile.write(tmp_path / "late.aiff", np.concatenate([np.zeros(3000, np.float32), mono]), RATE)
    soundfile.write(tmp_path / "long.wav", np.tile(mono, 40)[: rate * 3] * 0.5 + 0.25, rate)
    soundfile.write(tmp_path / "tiny.wav", mono[:10], rate)
    soundfile.write(tmp_path / "silent.wav", np.zeros(4000, np.float32), rate)
    (tmp_path / "notes.wav").write_text("this is not audio")
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "readme.txt").write_text("ignored: not an audio suffix")
    return tmp_path


def test_scan_finds_audio_recursively_in_stable_order(odd_folder):
    files = data.scan([odd_folder])
    names = [f.name for f in files]
    assert "stereo_22k.flac" in names and "late.aiff" in names
    assert "readme.txt" not in names
    assert files == sorted(files) == data.scan([odd_folder])


def test_scan_of_a_missing_folder_is_one_clear_error(tmp_path):
    with pytest.raises(BridgeError, match="no such file or folder"):
        data.scan([tmp_path / "nope"])


def test_odd_files_load_or_are_listed_as_skipped(odd_folder):
    shots = data.OneShots.load(data.scan([odd_folder]), RATE, WINDOW)
    skipped = {s.path.name: s.reason for s in shots.skipped}
    assert set(skipped) == {"notes.wav", "empty.wav", "silent.wav"}
    assert all(reason for reason in skipped.values())
    assert shots.windows.shape == (len(shots.files), 2, WINDOW)
    assert shots.windows.dtype == torch.float32 and torch.isfinite(shots.windows).all()
    by_name = dict(zip((f.name for f in shots.files), shots.windows))
    # mono is centred on both sides; the 22 kHz file came back to 48 kHz with its channels kept apart
    assert torch.equal(by_name["mono.wav"][0], by_name["mono.wav"][1])
    assert torch.allclose(by_name["stereo_22k.flac"][0], -by_name["stereo_22k.flac"][1], atol=1e-6)
    # a very short file is padded with silence
    assert by_name["tiny.wav"][:, 100:].abs().max() == 0


def test_window_starts_at_the_onset(odd_folder):
    shots = data.OneShots.load([odd_folder / "mono.wav", odd_folder / "late.aiff"], RATE, WINDOW)
    early, late = shots.windows
    # the 3000 frames of leading silence are gone, but for a short pre-roll that keeps the attack whole
    assert late[:, :data.PRE_ROLL // 2].abs().max() < 1e-3
    half = WINDOW // 2  # before either fade-out
    assert torch.allclose(early[:, :half], late[:, data.PRE_ROLL:half + data.PRE_ROLL], atol=1e-6)


def test_a_long_file_is_cut_with_a_fade_not_a_click(odd_folder):
    window = data.to_window(data.to_model(data.read_audio(odd_folder / "long.wav"), RATE).numpy(), WINDOW)
    assert abs(window[:, -1]).max() < 1e-3
    assert abs(window[:, WINDOW // 2]).max() > 0.1


def test_held_out_split_is_fixed_and_disjoint(tmp_path):
    files = [tmp_path / f"{i}.wav" for i in range(20)]
    training, held = data.split_held_out(files, 0.1, seed=3)
    assert len(held) == 2 and not set(held) & set(training) and len(training) + len(held) == 20
    assert (training, held) == data.split_held_out(list(reversed(files)), 0.1, seed=3)
    assert len(data.split_held_out(files[:3], 0.1)[1]) == 1


def test_batches_repeat_exactly_and_cover_every_file():
    windows = torch.arange(5.0)[:, None, None].expand(5, 2, 4)
    seen = torch.cat([data.batch_at(windows, step, 2, seed=1)[:, 0, 0] for step in range(5)])
    assert sorted(seen[:5].tolist()) == [0, 1, 2, 3, 4]  # the first epoch is a permutation
    assert torch.equal(data.batch_at(windows, 3, 2, seed=1), data.batch_at(windows, 3, 2, seed=1))
    with pytest.raises(BridgeError):
        data.batch_at(windows[:0], 0, 2, seed=1)


def test_augmentation_keeps_the_sound():
    batch = torch.randn(64, 2, 32)
    out = data.augment(batch, torch.Generator().manual_seed(0))
    ratio = out.abs().amax(dim=(1, 2)) / batch.abs().amax(dim=(1, 2))
    assert (ratio <= 1 + 1e-6).all() and (ratio >= 10 ** (-6 / 20) - 1e-6).all()
    swapped_or_not = torch.stack([batch, batch.flip(1)], 1)  # each item is +-gain times itself or its swap
    fits = [(out[i] / swapped_or_not[i]).flatten(1).std(dim=1).min() < 1e-5 for i in range(64)]
    assert all(fits)
    assert (out * batch).sum(dim=(1, 2)).lt(0).any()  # some polarity flips happened


def test_a_file_far_too_long_once_resampled_is_skipped_before_resampling(tmp_path, drum_samples):
    """120 kB whose header says 50 Hz: 1200 s, 57.6 million samples at 48 kHz (with a 1 Hz header, 23 GB)."""
    soundfile.write(tmp_path / "fifty hertz.wav", np.full(60000, 1000, np.int16), 50, subtype="PCM_16")
    shutil.copy(drum_samples["wav"], tmp_path / "kick.wav")
    shots = data.OneShots.load(data.scan([tmp_path]), RATE, WINDOW)
    assert [f.name for f in shots.files] == ["kick.wav"]
    assert [(s.path.name, s.reason) for s in shots.skipped] == [
        ("fifty hertz.wav", "1200 s long (at 50 Hz): longer than 600 s, not a one-shot")]


def test_augmentation_without_the_new_changes_is_what_it_always_was():
    """A run.yaml from before onset shifts and pitch shifts continues with exactly the batches it had."""
    batch = torch.randn(8, 2, 64)
    old_generator, new_generator = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    n = batch.shape[0]  # the old augment, written out: gain, polarity, swap drawn in that order
    gain = 10 ** (-6.0 * torch.rand(n, generator=old_generator) / 20)
    polarity = torch.where(torch.rand(n, generator=old_generator) < 0.5, -1.0, 1.0)
    swap = torch.rand(n, generator=old_generator) < 0.5
    old = torch.where(swap[:, None, None], batch.flip(1), batch) * (gain * polarity)[:, None, None]
    assert torch.equal(data.augment(batch, new_generator, shift_ms=0.0, semitones=0.0), old)
    assert torch.equal(old_generator.get_state(), new_generator.get_state())  # the next batch draws the same


def _drum_windows(drum_samples, window=WINDOW):
    return data.OneShots.load([drum_samples["wav"], drum_samples["flac"]], RATE, window).windows


def test_onset_and_pitch_shifts_keep_the_window(drum_samples):
    batch = _drum_windows(drum_samples)
    out = data.augment(batch, torch.Generator().manual_seed(0), sample_rate=RATE, shift_ms=5.0, semitones=1.0)
    assert out.shape == batch.shape and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert not torch.allclose(out.abs(), batch.abs(), atol=1e-3)  # something beyond gain and polarity changed


def test_a_delay_moves_the_onset_by_the_asked_frames_and_keeps_the_attack(drum_samples):
    batch = _drum_windows(drum_samples)
    moved = data.delay(batch, torch.tensor([0, 240]))
    assert torch.equal(moved[0], batch[0])
    assert data.onset(moved[1].numpy()) - data.onset(batch[1].numpy()) == 240  # 5 ms at 48 kHz
    assert torch.equal(moved[1][:, 240:WINDOW // 2], batch[1][:, :WINDOW // 2 - 240])  # the attack whole
    assert moved[1][:, -1].abs().max() < 1e-3  # what the delay pushed out of the window is faded, not clicked


def _fundamental(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal)), n=8 * len(signal)))
    return float(np.argmax(spectrum)) * rate / (8 * len(signal))


@pytest.mark.parametrize("semitones", [1.0, -1.0, 0.5])
def test_a_pitch_shift_moves_the_fundamental_by_the_asked_ratio(semitones):
    window = 32768
    t = np.arange(window) / RATE
    tone = torch.from_numpy(np.stack([np.sin(2 * np.pi * 440.0 * t)] * 2).astype(np.float32) * 0.5)[None]
    ratio = 2 ** (semitones / 12)
    shifted = data.pitch_shift(tone, torch.tensor([ratio]), RATE)
    assert shifted.shape == tone.shape
    heard = shifted[0, 0, : int(window / max(ratio, 1)) - 64].numpy()  # the part the resampled tone fills
    assert _fundamental(heard, RATE) == pytest.approx(440.0 * ratio, abs=0.3)
    assert _fundamental(tone[0, 0].numpy(), RATE) == pytest.approx(440.0, abs=0.3)


def test_augmentation_is_decided_by_the_seed(drum_samples):
    batch = _drum_windows(drum_samples)
    options = dict(sample_rate=RATE, shift_ms=5.0, semitones=1.0)
    first = data.augment(batch, torch.Generator().manual_seed(3), **options)
    assert torch.equal(first, data.augment(batch, torch.Generator().manual_seed(3), **options))
    assert not torch.equal(first, data.augment(batch, torch.Generator().manual_seed(4), **options))


def test_training_scans_leave_run_folders_out(tmp_path, drum_samples):
    """A run folder inside the data holds demos/ (a model's renders): training must not learn them."""
    kit = tmp_path / "kit"
    (kit / "old run" / "demos").mkdir(parents=True)
    (kit / "old run" / "run.yaml").write_text("steps: 1\n")
    (kit / "run" / "demos").mkdir(parents=True)  # the run being trained: left out before its run.yaml exists
    for path in (kit / "kick.wav", kit / "old run" / "demos" / "d.wav", kit / "run" / "demos" / "d.wav"):
        shutil.copy(drum_samples["wav"], path)
    assert len(data.scan([kit])) == 3  # other commands (sheet, pack) still see every file
    left_out = []
    assert data.scan([kit], run_dir=kit / "run", left_out=left_out) == [kit / "kick.wav"]
    assert left_out == [kit / "old run", kit / "run"]
    assert data.scan([kit], leave_out_runs=True) == [kit / "kick.wav", kit / "run" / "demos" / "d.wav"]
    # a run folder named as the data itself is read: only the one being trained, or runs below, are left out
    assert data.scan([kit / "old run"], leave_out_runs=True) == [kit / "old run" / "demos" / "d.wav"]


def test_a_held_out_split_never_holds_out_every_file():
    files = [Path(f"{i}.wav") for i in range(2)]
    training, held = data.split_held_out(files, 0.9)
    assert len(training) == 1 and len(held) == 1
    with pytest.raises(ConfigError, match=r"held-out fraction must be in \[0, 1\), got 1.5"):
        data.split_held_out(files, 1.5)
