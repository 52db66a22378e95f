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
    clicks = re.findall(r"clicks in the decay: variations (\d+\.\d), sources (\d+\.\d), added ([+-]\d+\.\d) ± "
                        r"(\d+\.\d)", out)
    assert len(clicks) == 2, out
    # The same sources for both settings; what is added is the variations' count less theirs.
    assert clicks[0][1] == clicks[1][1]
    for made, own, added, _se in clicks:
        assert abs(float(made) - float(own) - float(added)) < 0.11


def test_eval_vary_says_how_far_a_variation_lies_from_its_source(kits, tiny_model_path, capsys):
    code = main(["eval-vary", "--model", str(tiny_model_path), "--data", *map(str, kits), "--count", "4",
                 "--steps", "2", "--max-seconds", "2", "--noise", "0,0.5"])
    out = capsys.readouterr().out
    assert code == 0
    found = re.findall(r"distance from a variation to its source: median (\d+\.\d\d) \(from a source to the nearest "
                       r"other source: median (\d+\.\d\d);", out)
    assert len(found) == 2, out
    (copy, spacing), (varied, spacing_again) = [(float(a), float(b)) for a, b in found]
    assert spacing == spacing_again and spacing > 0.5  # the same sources, and distinct ones
    assert copy < 0.05 < varied, out  # noise 0 gives the source back; 0.5 moves from it


def test_eval_vary_compares_samplers_on_the_same_sources(kits, tiny_model_path, capsys):
    code = main(["eval-vary", "--model", str(tiny_model_path), "--data", *map(str, kits), "--count", "3",
                 "--steps", "2", "--max-seconds", "2", "--sampler", "v-iplms,dpmpp-2m-sde-karras-eta0.5"])
    out = capsys.readouterr().out
    assert code == 0
    labels = re.findall(r"^noise 0\.5, shape 1, (\S+) 2: 3 variations of 3 held-out sources$", out, re.M)
    assert labels == ["v-iplms", "dpmpp-2m-sde-karras-eta0.5"], out
    sources = re.findall(r"MMD\^2 to real drums: variations \d\.\d+, sources (\d\.\d+)", out)
    assert len(sources) == 2 and sources[0] == sources[1], out


def test_eval_vary_refuses_an_unknown_sampler(kits, tiny_model_path, capsys):
    assert main(["eval-vary", "--model", str(tiny_model_path), "--data", *map(str, kits),
                 "--sampler", "v-iplms,dpm-fast"]) == 1
    err = capsys.readouterr().err
    assert "unknown sampler 'dpm-fast'" in err and len(err.strip().splitlines()) == 1


def test_eval_vary_needs_sources(tmp_path, tiny_model_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["eval-vary", "--model", str(tiny_model_path), "--data", str(empty)]) == 1
    err = capsys.readouterr().err
    assert "need at least 3 source files" in err and len(err.strip().splitlines()) == 1
