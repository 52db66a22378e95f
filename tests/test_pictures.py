"""The pictures' scales mean what their labels say, and a picture never replaces a file it should not."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bridge.engine.audio import Clip, read_audio
from bridge.errors import BridgeError
from bridge.pictures import LEVEL_FLOOR_DB, Tile, contact_sheet, level, loss_curve, spectrogram


@pytest.mark.parametrize("rate, hz", [(48000, 1000), (44100, 1000), (48000, 15100)])
def test_a_full_scale_sine_reads_0_dbfs_at_its_frequency(rate, hz):
    seconds = np.arange(rate // 2) / rate
    clip = Clip(np.stack([np.sin(2 * np.pi * hz * seconds)] * 2, axis=1), rate)
    spec = spectrogram(clip)
    middle = spec.db[:, spec.db.shape[1] // 2]
    peak_row = int(np.argmax(middle))
    assert abs(spec.freqs[peak_row] / hz - 1) < 0.05
    assert abs(middle[peak_row]) < 1.5  # dBFS; a Hann window reads a sine between two bins up to 1.42 dB low
    assert middle[np.argmin(abs(spec.freqs - hz * 3))] < -60
    assert spec.freqs[0] == 20 and spec.freqs[-1] == min(24000, rate / 2)
    assert abs(spec.times[-1] - 0.5) <= spec.hop / rate  # the columns span the clip


def test_the_level_strip_follows_a_decay_down_to_its_floor():
    rate = 48000
    t = np.arange(rate) / rate
    decay = np.exp(-t / 0.05) * np.sign(np.sin(2 * np.pi * 100 * t))  # square wave, -8.7 dB per 50 ms
    clip = Clip(np.concatenate([decay, np.zeros(rate // 2)]), rate)
    times, levels = level(clip, 480)
    assert abs(levels[0]) < 0.5
    at_100_ms = levels[np.argmin(abs(times - 0.1))]
    assert -19.5 < at_100_ms < -15.5  # 20 log10(e^-2) = -17.4 dB, give or take a block
    assert levels[-1] == LEVEL_FLOOR_DB and np.all(np.diff(levels[:50]) <= 1e-6)


def test_a_sheet_never_replaces_a_file_and_leaves_nothing_behind(tmp_path, drum_samples):
    tiles = [[Tile("drum", read_audio(drum_samples["wav"]))]]
    taken = tmp_path / "sheet.png"
    taken.write_bytes(b"mine")
    with pytest.raises(BridgeError, match="already exists"):
        contact_sheet(taken, tiles)
    assert taken.read_bytes() == b"mine"
    made = contact_sheet(tmp_path / "new.pdf", tiles)
    assert made.read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.pdf", "sheet.png"]


def test_the_loss_curve_is_redrawn_in_place(tmp_path):
    path = tmp_path / "loss.png"
    loss_curve(path, [1], [0.5])
    first = path.read_bytes()
    loss_curve(path, list(range(1, 101)), list(np.geomspace(0.5, 0.05, 100)))
    assert path.read_bytes() != first
    with Image.open(path) as image:
        image.verify()
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]
