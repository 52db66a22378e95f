"""`dd-bridge make-drums synth`: drum-machine one-shots made here, each class sounding as its name says, written in
the layout train-classifier reads, with a CC0 LICENCE.md the classifier's card picks up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from bridge.cli import data as data_cli
from bridge.training import drums, labels, synth_drums

ROOT = Path(__file__).resolve().parents[2]
RATE = synth_drums.RATE


def make_drums(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", "make-drums", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)


def centroid(x: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    return float((np.fft.rfftfreq(len(x), 1 / RATE) * power).sum() / power.sum())


def ring_seconds(x: np.ndarray) -> float:
    """How long the sound stays within 40 dB of its peak (5 ms RMS frames)."""
    size = RATE // 200
    frames = np.sqrt((x[: len(x) // size * size].reshape(-1, size) ** 2).mean(axis=1))
    return float(np.nonzero(frames > frames.max() / 100)[0][-1] + 1) * size / RATE


@pytest.fixture(scope="module")
def sounds():
    rng = np.random.default_rng(5)
    return {label: [synth_drums.one_shot(voice, rng) for _ in range(12)] for label, voice in synth_drums.VOICES.items()}


def test_each_class_sounds_as_its_name_says(sounds):
    assert set(sounds) == set(labels.CLASSES)
    middle = {label: float(np.median([centroid(s[0]) for s in made])) for label, made in sounds.items()}
    rings = {label: float(np.median([ring_seconds(s[0]) for s in made])) for label, made in sounds.items()}
    assert max(centroid(s[0]) for s in sounds["kick"]) < 1000  # low and falling
    assert min(centroid(s[0]) for s in sounds["hat"]) > 5000  # all metal and air
    assert middle["kick"] < middle["tom"] < middle["snare"] < middle["clap"] < middle["cymbal"]
    assert rings["cymbal"] > 2 * rings["hat"]  # a cymbal rings on; most hats are closed
    assert rings["tom"] > rings["snare"] > 0.05
    for label, made in sounds.items():
        for hit in made:
            assert hit.shape[0] == 2 and hit.shape[1] <= drums.MAX_HIT_SECONDS * RATE, label
            assert np.abs(hit).max() == pytest.approx(10 ** (drums.PEAK_DB / 20), rel=1e-6), label
            assert abs(hit[0, -1]) < 1e-3 and not np.array_equal(hit[0], hit[1]), label  # faded, and stereo


def test_make_writes_each_class_into_its_folder_with_its_licence_and_keeps_what_is_there(tmp_path):
    out = tmp_path / "synth"
    made = synth_drums.make(out, count=3, seed=7)
    assert len(made.written) == 21 and not made.existing
    found = labels.labelled([out])
    assert sorted(item.label for item in found) == sorted(list(labels.CLASSES) * 3)
    source = labels.kit_source(out)  # what train-classifier's card lists for this set
    assert source["licence"] == "CC0-1.0" and source["source"] == "dd-bridge make-drums synth --count 3 --seed 7"
    first = (out / synth_drums.out_name("snare", 2)).read_bytes()
    (out / synth_drums.out_name("snare", 2)).unlink()
    again = synth_drums.make(out, count=3, seed=7)  # fills in what is missing, keeps the rest untouched
    assert [p.name for p in again.written] == ["synth snare 002.wav"] and len(again.existing) == 20
    assert (out / synth_drums.out_name("snare", 2)).read_bytes() == first  # the same seed, the same sound
    data, rate = soundfile.read(out / synth_drums.out_name("kick", 1))
    assert rate == 48000 and data.shape[1] == 2
    with pytest.raises(Exception, match="made differently"):
        synth_drums.make(out, count=4, seed=7)  # another set into the same folder
    other = synth_drums.make(tmp_path / "other", count=3, seed=8)
    assert (tmp_path / "other" / synth_drums.out_name("snare", 2)).read_bytes() != first
    assert len(other.written) == 21


def test_the_command_line(tmp_path):
    out = tmp_path / "synth"
    result = make_drums("synth", "--count", "2", "--out", out)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split("\n")) - 1 == 14 and (out / "LICENCE.md").is_file()
    assert "14 one-shots written" in result.stderr
    kit = make_drums("synth", "--kit", "Standard", "--out", tmp_path / "a")
    assert kit.returncode == 1 and "--kit: not for synth (it takes --count and --seed)" in kit.stderr
    count = make_drums("sonic-pi", "--count", "3", "--out", tmp_path / "b")
    assert count.returncode == 1 and "--count: for synth, not sonic-pi" in count.stderr
    none = make_drums("synth", "--count", "0", "--out", tmp_path / "c")
    assert none.returncode == 1 and len(none.stderr.strip().splitlines()) == 1 and "--count must be" in none.stderr
    assert not any((tmp_path / name).exists() for name in "abc")
    assert data_cli.SYNTH_COUNT == synth_drums.COUNT
