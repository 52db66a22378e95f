"""`dd-bridge eval-vary`: variations of held-out one-shots measured against their sources, as a user runs it."""

from __future__ import annotations

import re

import pytest
import soundfile

from bridge.cli import main
from tests.conftest import TINY_RENDER

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


def test_eval_vary_compares_samplers_on_the_same_sources(kits, tiny_model_path, tmp_path, capsys):
    keep = tmp_path / "listen"
    code = main(["eval-vary", "--model", str(tiny_model_path), "--data", *map(str, kits), "--count", "3",
                 "--steps", "2", "--max-seconds", "2", "--sampler", "v-iplms,dpmpp-2m-sde-karras-eta0.5",
                 "--keep", str(keep)])
    out = capsys.readouterr().out
    assert code == 0
    labels = re.findall(r"^noise 0\.5, shape 1, (\S+) 2: 3 variations of 3 held-out sources$", out, re.M)
    assert labels == ["v-iplms", "dpmpp-2m-sde-karras-eta0.5"], out
    sources = re.findall(r"MMD\^2 to real drums: variations \d\.\d+, sources (\d\.\d+)", out)
    assert len(sources) == 2 and sources[0] == sources[1], out
    kept = sorted(path.name for path in keep.iterdir())  # --keep: each variation, named by source and setting
    assert len(kept) == 6 and sum("dpmpp-2m-sde-karras-eta0.5 2 001.wav" in name for name in kept) == 3, kept
    # the second sampler paired with the first, source by source, as the loops are
    assert re.search(r"^  against noise 0\.5, shape 1, v-iplms 2, source by source: tail [+-]\d+\.\d dB", out, re.M)


@pytest.fixture
def other_model(tmp_path, tiny_model_path):
    """A second tiny model of the same size, window and rate, with other random weights."""
    import torch

    from bridge.engine.checkpoints import LoadedModel, save_model
    from bridge.engine.unet import DanceDiffusionUNet

    with torch.random.fork_rng():
        torch.manual_seed(99)
        network = DanceDiffusionUNet(TINY_RENDER)
    loaded = LoadedModel.from_network(network, name="tiny-other", sample_rate=48000, window=8192,
                                      provenance="random weights made by the tests")
    return save_model(loaded, tmp_path / "tiny-other")[0]


GROOVE = r"groove kept \(correlation of the 20 ms level with the source's\): (-?\d\.\d+) ± "
FIGURES = (r"^(?P<label>[^\n]+): 4 variations of 4 held-out sources\n  tail level, variation - source: median "
           r"(?P<tail>[+-]\d+\.\d) dB.*?MMD\^2 to real drums: variations (?P<mmd>\d\.\d+),.*?clicks in the decay: "
           r"variations (?P<clicks>\d+\.\d+),")
AGAINST = (r"^  against (?P<label>.+), source by source: tail (?P<tail>[+-]\d+\.\d) dB \(± (?P<tail_se>\d+\.\d) se, "
           r"median\), MMD\^2 (?P<mmd>[+-]\d\.\d+) ± (?P<mmd_se>\d\.\d+), clicks (?P<clicks>[+-]\d+\.\d) ± "
           r"(?P<clicks_se>\d+\.\d) a variation$")


def test_eval_vary_against_another_model_pairs_them_source_by_source(kits, tiny_model_path, other_model, tmp_path,
                                                                     capsys):
    keep = tmp_path / "listen"
    args = ["eval-vary", "--data", *map(str, kits), "--count", "4", "--steps", "2", "--max-seconds", "2"]
    assert main([*args, "--model", str(other_model), "--against", str(tiny_model_path), "--keep", str(keep)]) == 0
    out = capsys.readouterr().out
    measured = [m.groupdict() for m in re.finditer(FIGURES, out, re.M | re.S)]
    assert [m["label"] for m in measured] == ["tiny-other: noise 0.5, shape 1, dpmpp-2m-sde 2",
                                              "tiny-test: noise 0.5, shape 1, dpmpp-2m-sde 2"], out
    (paired,) = [m.groupdict() for m in re.finditer(AGAINST, out, re.M)]
    assert paired["label"] == "tiny-test: noise 0.5, shape 1, dpmpp-2m-sde 2"
    ours, theirs = measured
    # one reference and the same sources: the paired MMD^2 change is the two rows' difference, with an error
    assert float(paired["mmd"]) == pytest.approx(float(ours["mmd"]) - float(theirs["mmd"]), abs=2e-4)
    assert float(paired["mmd_se"]) > 0 and float(paired["clicks"]) == pytest.approx(
        float(ours["clicks"]) - float(theirs["clicks"]), abs=0.11)
    kept = sorted(path.name for path in keep.iterdir())  # both models' variations, named apart
    assert len(kept) == 8 and sum("tiny-other" in name for name in kept) == 4, kept
    # a model against itself: the same sources and seeds give the same variations, so every change is nothing
    assert main([*args, "--model", str(tiny_model_path), "--against", str(tiny_model_path)]) == 0
    out = capsys.readouterr().out
    (paired,) = [m.groupdict() for m in re.finditer(AGAINST, out, re.M)]
    assert paired["label"].startswith(f"tiny-test ({tiny_model_path}): noise 0.5")
    assert [float(paired[k]) for k in ("tail", "tail_se", "mmd", "mmd_se", "clicks", "clicks_se")] == [0] * 6, out


def test_eval_vary_loops_against_another_model_pairs_them_loop_by_loop(drumkits, tiny_model_path, other_model,
                                                                       capsys):
    data = [drumkits / "HardElectro1", drumkits / "Millo-Drums_v.1"]
    code = main(["eval-vary", "--loops", "--model", str(other_model), "--against", str(tiny_model_path), "--data",
                 *map(str, data), "--count", "2", "--steps", "2", "--noise", "0.3", "--sampler", "v-iplms"])
    out = capsys.readouterr().out
    assert code == 0, out
    labels = re.findall(r"^(.+): 2 variations of 2 one-bar beats", out, re.M)
    assert labels == ["tiny-other: noise 0.3, shape 1, v-iplms 2", "tiny-test: noise 0.3, shape 1, v-iplms 2"], out
    grooves = [float(x) for x in re.findall(GROOVE, out)]
    (groove,) = re.findall(r"^  against tiny-test: noise 0\.3, shape 1, v-iplms 2, loop by loop: groove ([+-]\d\.\d+) ",
                           out, re.M)
    assert float(groove) == pytest.approx(grooves[0] - grooves[1], abs=0.002)


def test_eval_vary_against_a_model_of_another_window_is_one_line(kits, tiny_model_path, tmp_path, capsys):
    from bridge.engine.checkpoints import LoadedModel, save_model
    from bridge.engine.unet import DanceDiffusionUNet

    loaded = LoadedModel.from_network(DanceDiffusionUNet(TINY_RENDER), name="tiny-short", sample_rate=48000,
                                      window=4096, provenance="random weights made by the tests")
    other = save_model(loaded, tmp_path / "tiny-short")[0]
    assert main(["eval-vary", "--model", str(tiny_model_path), "--against", str(other), "--data",
                 *map(str, kits)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not comparable" in err[0], err


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


def test_eval_vary_measures_loops_built_from_the_kits(tmp_path, drumkits, tiny_model_path, capsys):
    """--loops: one-bar beats from the kits' kick, snare and hat, varied as loops; noise 0 gives each beat back
    (its groove, its hits, no clicks added), noise 1 without the source's shape is another sound."""
    data = [drumkits / "HardElectro1", drumkits / "Millo-Drums_v.1"]  # whole kits: their drumkit.xml names the hits
    keep = tmp_path / "listen"
    code = main(["eval-vary", "--loops", "--model", str(tiny_model_path), "--data", *map(str, data), "--count", "2",
                 "--steps", "2", "--noise", "0,1", "--shape", "0", "--sampler", "v-iplms-sde", "--keep", str(keep)])
    out = capsys.readouterr().out
    assert code == 0, out
    labels = re.findall(r"^noise (\S+), shape 0, v-iplms-sde 2: 2 variations of 2 one-bar beats", out, re.M)
    assert labels == ["0", "1"], out
    grooves = [float(x) for x in re.findall(GROOVE, out)]
    hits = [float(x) for x in re.findall(r"the source's hits in the variation: ([+-]\d+\.\d) dB", out)]
    added = [float(x) for x in re.findall(r"clicks a loop: variations \d+\.\d, sources \d+\.\d, added ([+-]\d+\.\d)",
                                          out)]
    assert len(grooves) == len(hits) == len(added) == 2, out
    assert grooves[0] > 0.99 and abs(hits[0]) < 0.5 and added[0] == 0, out
    assert grooves[1] < 0.9, out
    assert "against" not in out  # one sampler: nothing to set it against
    assert len(re.findall(r"samples at full scale 0;", out)) == 2
    # --keep: each beat and each variation, to listen to: the beats' length, a beat given back at noise 0.
    kept = sorted(path.name for path in keep.iterdir())
    assert len(kept) == 6 and all(name.endswith(" 001.wav") for name in kept), kept
    assert sum(name.startswith("beat 01 source HardElectro1 rock") for name in kept) == 1, kept
    beat = soundfile.read(str(next(keep.glob("beat 01 source *"))))[0]
    copy = soundfile.read(str(next(keep.glob("beat 01 noise 0, shape 0, v-iplms-sde 2 *"))))[0]
    assert beat.shape == copy.shape == (96000, 2) and abs(beat - copy).max() < 0.01


def test_eval_vary_loops_sets_each_sampler_against_the_first_at_the_same_noise(drumkits, tiny_model_path, capsys):
    data = [drumkits / "HardElectro1", drumkits / "Millo-Drums_v.1"]
    code = main(["eval-vary", "--loops", "--model", str(tiny_model_path), "--data", *map(str, data), "--count", "2",
                 "--steps", "2", "--noise", "0.3,1", "--sampler", "v-iplms,dpmpp-2m-sde"])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = re.findall(r"^noise (\S+), shape 1, (\S+) 2: 2 variations.*?groove kept \(correlation of the 20 ms level "
                      r"with the source's\): (-?\d\.\d+) .*?added ([+-]\d+\.\d)", out, re.M | re.S)
    assert [(noise, sampler) for noise, sampler, _g, _c in rows] == [
        ("0.3", "v-iplms"), ("0.3", "dpmpp-2m-sde"), ("1", "v-iplms"), ("1", "dpmpp-2m-sde")], out
    against = re.findall(r"against noise (\S+), shape 1, v-iplms 2, loop by loop: groove ([+-]\d\.\d+) ± \d\.\d+, "
                         r"hits [+-]\d+\.\d ± \d+\.\d dB, clicks ([+-]\d+\.\d) ± ", out)
    assert [noise for noise, _g, _c in against] == ["0.3", "1"], out  # each against v-iplms at its own noise
    for (noise, groove, spikes), base, other in zip(against, rows[0::2], rows[1::2]):
        assert float(groove) == pytest.approx(float(other[2]) - float(base[2]), abs=0.002)
        assert float(spikes) == pytest.approx(float(other[3]) - float(base[3]), abs=0.11)


def test_eval_vary_loops_needs_kits_with_named_hits(tmp_path, tiny_model_path, drumkits, capsys):
    folder = tmp_path / "unnamed"
    folder.mkdir()
    (folder / "a.flac").symlink_to(drumkits / "Millo-Drums_v.1" / "bd1.flac")
    assert main(["eval-vary", "--loops", "--model", str(tiny_model_path), "--data", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "no kit in --data has a kick, a snare and a hat" in err and len(err.strip().splitlines()) == 1
