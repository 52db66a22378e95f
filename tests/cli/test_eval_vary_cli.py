"""`dd-bridge eval-vary`: variations of held-out one-shots measured against their sources, as a user runs it."""

from __future__ import annotations

import re

import pytest
import soundfile

from bridge.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def kits(tmp_path, drumkits):
    """Two small kits of short real one-shots (linked, so nothing is copied)."""
    folders = []
    for kit in ("Millo-Drums_v.1", "HardElectro1"):
        folder = tmp_path / kit
        folder.mkdir()
        # At least 0.1 s each: over a shorter clip a channel's mean is no measure of an offset.
        long_enough = [p for p in (drumkits / kit).glob("*.flac") if soundfile.info(str(p)).duration >= 0.1]
        for src in sorted(long_enough, key=lambda p: p.stat().st_size)[:6]:
            (folder / src.name).symlink_to(src)
        folders.append(folder)
    return folders


def test_eval_vary_prints_the_figures_per_setting(kits, tiny_model_path, capsys):
    code = main(["eval-vary", "--model", str(tiny_model_path), "--data", *map(str, kits), "--count", "4",
                 "--steps", "2", "--shape", "0,1", "--max-seconds", "2", "--by-noise-level"])
    out = capsys.readouterr().out
    assert code == 0
    assert len(re.findall(r"t 0\.\d\d: whole clip [+-]\d+\.\d dB, last quarter [+-]\d+\.\d dB", out)) == 7
    tails = [float(x) for x in re.findall(r"tail level, variation - source: median ([+-]\d+\.\d) dB", out)]
    assert len(tails) == 2  # shape 0 and shape 1
    # A random network fills every decay with noise; the source's shape keeps it near the source's level.
    assert tails[1] < tails[0] - 6, out
    assert len(re.findall(r"samples at full scale 0;", out)) == 2  # turned down, never clamped
    dcs = [float(x) for x in re.findall(r"largest DC added \(variation - source\) (\d\.\d+)", out)]
    assert max(dcs) < 0.001, out  # no offset added, with or without the shape guide


def test_eval_vary_needs_sources(tmp_path, tiny_model_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["eval-vary", "--model", str(tiny_model_path), "--data", str(empty)]) == 1
    err = capsys.readouterr().err
    assert "need at least 3 source files" in err and len(err.strip().splitlines()) == 1
