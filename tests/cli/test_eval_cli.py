"""The landing commands' choice of files (eval, eval-vary, check-memorization): which real files judge a model,
said when any are left out, and their options checked before anything renders (review s42 r5)."""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path

import pytest
import torch

from bridge.cli import main
from bridge.training import evaluate, memorization, vary_eval
from bridge.training.data import OneShots
from tests.conftest import TINY_RENDER

pytestmark = pytest.mark.usefixtures("one_thread")

QUICK = ["--count", "3", "--steps", "1"]


def _kit(root: Path, drumkits: Path, name: str, count: int) -> Path:
    """A folder of ``count`` short real one-shots of a Hydrogen kit, linked (a library reached through links)."""
    folder = root / name
    folder.mkdir(parents=True)
    files = sorted((drumkits / name).glob("*.flac"), key=lambda p: p.stat().st_size)
    for src in [p for p in files if p.name != "emptySample.flac"][:count]:
        (folder / src.name).symlink_to(src)
    return folder


@pytest.fixture
def kits(tmp_path, drumkits):
    """Three small kits: A (8 files), B and C (5 each)."""
    return (_kit(tmp_path, drumkits, "rumpf_kit_z01_h2", 8), _kit(tmp_path, drumkits, "Millo-Drums_v.1", 5),
            _kit(tmp_path, drumkits, "HardElectro1", 5))


def carded(folder: Path, name: str, data=(), held=()) -> str:
    """A tiny random model whose card says it trained on ``data`` (absolute, as `dd-bridge train` writes them)
    holding out ``held``."""
    from bridge.engine.checkpoints import LoadedModel, save_model
    from bridge.engine.unet import DanceDiffusionUNet

    with torch.random.fork_rng():
        torch.manual_seed(7)
        network = DanceDiffusionUNet(TINY_RENDER)
    training = {"data": [str(Path(d).resolve()) for d in data], "held_out_files": [str(Path(f).absolute())
                                                                                      for f in held]}
    loaded = LoadedModel.from_network(network, name=name, sample_rate=48000, window=8192, provenance="tests",
                                      training=training)
    return str(save_model(loaded, folder / name)[0])


def _said(caplog) -> str:
    return "\n".join(caplog.messages)


def _reference(caplog) -> int:
    (count,) = re.findall(r"^reference: (\d+) real files", _said(caplog), re.M)
    caplog.clear()
    return int(count)


def test_a_relative_data_path_finds_the_cards_held_out_files(tmp_path, kits, capsys, caplog, monkeypatch):
    """H1: the card's absolute held-out paths match --data however it is written."""
    caplog.set_level(logging.INFO)
    a = kits[0]
    held = sorted(a.iterdir())[:3]
    model = carded(tmp_path, "held", data=[a], held=held)
    monkeypatch.chdir(tmp_path)
    for written in (str(a), a.name, f"./{a.name}/../{a.name}"):
        assert main(["eval", "--model", model, "--data", written, *QUICK, "--no-baselines"]) == 0
        assert _reference(caplog) == 3, written
    # check-memorization calibrates on the files the model trained on only, the held-out 3 left out
    main(["check-memorization", "--model", model, "--data", a.name, *QUICK])
    assert "quantile of 5 training files'" in capsys.readouterr().out


def test_a_reference_file_in_train_data_is_left_out_with_a_line(tmp_path, kits, tiny_model_path, caplog):
    """H2: --data overlapping --train-data: the shared files are training files, not the reference."""
    caplog.set_level(logging.INFO)
    a, b, _c = kits
    assert main(["eval", "--model", str(tiny_model_path), "--data", str(a), str(b), "--train-data", str(a),
                 *QUICK]) == 0
    assert re.search(r"^8 files of --data \(kit rumpf_kit_z01_h2\) were trained on by tiny-test, as --train-data "
                     r"says: left out of the reference$", _said(caplog), re.M), _said(caplog)
    assert re.search(r"^reference: 5 real files; floor: 8 training files", _said(caplog), re.M), _said(caplog)


def test_files_either_models_card_trained_on_are_left_out_of_the_reference(tmp_path, kits, caplog):
    """H2: the --model's and --against's cards are both read."""
    caplog.set_level(logging.INFO)
    a, b, c = kits
    ours = carded(tmp_path, "ours", data=[a], held=sorted(a.iterdir())[:2])
    theirs = carded(tmp_path, "theirs", data=[b])
    assert main(["eval", "--model", ours, "--against", theirs, "--data", str(b), str(c), *QUICK,
                 "--no-baselines"]) == 0
    assert "5 files of --data (kit Millo-Drums_v.1) were trained on by theirs, the --against model: left out of " \
           "the reference" in _said(caplog), _said(caplog)
    assert _reference(caplog) == 5
    # the --model's own training files in --data beside other kits: without --train-data nor held-out files there
    ours_all = carded(tmp_path, "ours-all", data=[a])
    assert main(["eval", "--model", ours_all, "--data", str(a), str(c), *QUICK, "--no-baselines"]) == 0
    assert "8 files of --data (kit rumpf_kit_z01_h2) were trained on by ours-all, the --model" in caplog.text
    assert _reference(caplog) == 5


def test_eval_vary_leaves_out_what_a_model_trained_on_and_silent_sources(tmp_path, kits, drumkits, capsys, caplog):
    """H2 and H3 for eval-vary: a trained kit is neither reference nor source; a silent file is no source."""
    caplog.set_level(logging.INFO)
    a, b, c = kits
    for kit in (b, c):
        (kit / "emptySample.flac").symlink_to(drumkits / kit.name / "emptySample.flac")
    model = carded(tmp_path, "trained-a", data=[a])
    # seed 3 puts both emptySample.flac files among the source candidates
    assert main(["eval-vary", "--model", model, "--data", str(a), str(b), str(c), "--count", "6", "--steps", "1",
                 "--max-seconds", "2", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "8 files of --data (kit rumpf_kit_z01_h2) were trained on by trained-a, the --model: left out of the " \
           "reference and sources" in _said(caplog), _said(caplog)
    assert re.search(r"^left out 2 silent sources \(peak under 1e-05\): ", _said(caplog), re.M), _said(caplog)
    (sources, folders) = re.findall(r"sources: (\d+) files from (\d+) folders", _said(caplog))[0]
    assert folders == "2" and re.search(rf": {sources} variations of {sources} held-out sources$", out, re.M)


def test_split_never_takes_a_silent_source(tmp_path, drumkits):
    b = _kit(tmp_path, drumkits, "Millo-Drums_v.1", 6)
    (b / "emptySample.flac").symlink_to(drumkits / b.name / "emptySample.flac")
    files = sorted(b.iterdir())
    candidates = 0
    for seed in range(6):
        reference, sources = vary_eval.split(files, 2.0, 10, seed)
        candidates += (b / "emptySample.flac") not in reference
        assert all(path.name != "emptySample.flac" for path in sources)
        assert len(reference) + len(sources) == len(files) - ((b / "emptySample.flac") not in reference)
    assert candidates  # some seeds offered it as a source


def test_without_a_held_out_split_eval_says_how_it_splits_and_no_baselines_takes_all(kits, tiny_model_path,
                                                                                     caplog):
    """M1."""
    caplog.set_level(logging.INFO)
    a = str(kits[0])
    assert main(["eval", "--model", str(tiny_model_path), "--data", a, *QUICK, "--no-baselines"]) == 0
    assert _reference(caplog) == 8 and "seeded half" not in caplog.text
    assert main(["eval", "--model", str(tiny_model_path), "--data", a, *QUICK]) == 0
    assert "no held-out files of tiny-test's card in --data and no --train-data: a seeded half of --data (4 files) " \
           "is the reference, the other half (4) the floor's training files" in caplog.text
    assert _reference(caplog) == 4


@pytest.fixture
def no_render(monkeypatch):
    """Any render fails the test: what is checked here is checked before rendering."""
    def render(*args, **kwargs):
        raise AssertionError("rendered before the check")
    monkeypatch.setattr(evaluate, "render", render)
    monkeypatch.setattr(vary_eval, "vary_clip", render)


def test_a_floor_too_small_is_refused_before_rendering(tmp_path, kits, tiny_model_path, capsys, no_render):
    """M2."""
    two = tmp_path / "two"
    two.mkdir()
    for src in sorted(kits[1].iterdir())[:2]:
        (two / src.name).symlink_to(src)
    assert main(["eval", "--model", str(tiny_model_path), "--data", str(kits[0]), "--train-data", str(two),
                 *QUICK]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("error: the floor (--train-data, or the card's training data) needs at least 3 readable "
                            "audio files, found 2"), err


def test_json_never_replaces_a_file_and_a_bad_path_is_refused_before_rendering(tmp_path, kits, tiny_model_path,
                                                                              capsys, no_render):
    """M3."""
    kept = tmp_path / "evidence.json"
    kept.write_text("seed 0 against seed 1000")
    for path, message in ((kept, "already exists; not overwriting it"),
                          (tmp_path / "missing" / "x.json", "no such folder")):
        assert main(["eval", "--model", str(tiny_model_path), "--data", str(kits[0]), *QUICK,
                     "--json", str(path)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert kept.read_text() == "seed 0 against seed 1000"


def test_json_writes_a_new_file(tmp_path, kits, tiny_model_path):
    out = tmp_path / "rows.json"
    assert main(["eval", "--model", str(tiny_model_path), "--data", str(kits[0]), *QUICK, "--no-baselines",
                 "--json", str(out)]) == 0
    assert '"mmd2"' in out.read_text()


@pytest.mark.parametrize("command, option, value, message", [
    ("eval", "--steps", ",", "--steps: expected at least one value, got ','"),
    ("eval", "--sampler", ",", "--sampler: expected at least one value, got ','"),
    ("eval-vary", "--noise", ",", "--noise: expected at least one value, got ','"),
    ("eval-vary", "--sampler", " , ", "--sampler: expected at least one value"),
    ("eval-vary", "--shape", "5", "--shape: shape must be in 0..1"),
    ("eval-vary", "--max-seconds", "nan", "--max-seconds: must be positive seconds, got nan"),
    ("eval-vary", "--max-seconds", "0", "--max-seconds: must be positive seconds, got 0"),
    ("eval-vary", "--count", "2", "--count must be at least 3"),
])
def test_bad_options_are_one_line_before_any_work(kits, tiny_model_path, capsys, no_render, command, option, value,
                                                  message):
    """L1, L2."""
    with pytest.raises(SystemExit) if option == "--max-seconds" else contextlib.nullcontext():  # argparse's
        code = main([command, "--model", str(tiny_model_path), "--data", str(kits[0]), option, value])
        assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and "unexpected" not in err[-1], err


def test_white_noise_is_not_a_copy_of_a_noise_like_training_file_but_a_copy_of_it_is(drumkits):
    """L3: Audiophob's crunchy hat lies as near white noise as noise does to noise; a copy lies far nearer."""
    files = sorted((drumkits / "Audiophob").iterdir())
    shots = OneShots.load([f for f in files if f.suffix in (".wav", ".flac")], 48000, 16384)
    hat = next(i for i, f in enumerate(shots.files) if "crunchtime" in f.name)
    hiss = 0.1 * torch.randn((3, 2, 16384), generator=torch.Generator().manual_seed(5))
    report = memorization.check(hiss, shots.windows, shots.files, 48000)
    assert report.flagged == [], report.summary()
    assert report.matches[0].distance < report.threshold  # what flagged it before
    assert "hiss, not a copy" in report.summary()
    copy = -0.5 * torch.roll(shots.windows[hat:hat + 1], 240, dims=-1)
    caught = memorization.check(copy, shots.windows, shots.files, 48000)
    assert [m.file for m in caught.flagged] == [shots.files[hat]], caught.summary()


def test_eval_vary_loops_builds_no_beat_from_a_kit_the_model_trained_on(tmp_path, drumkits, capsys, caplog):
    """The beats were built from every kit of --data, a trained one too ("said, not left out"): its hits are now
    left out of the beats, as its files are of a one-shot's sources."""
    caplog.set_level(logging.INFO)
    model = carded(tmp_path, "trained-hardelectro", data=[drumkits / "HardElectro1"])
    assert main(["eval-vary", "--loops", "--model", model, "--data", str(drumkits / "HardElectro1"),
                 str(drumkits / "Millo-Drums_v.1"), "--count", "2", "--steps", "1", "--noise", "0.3"]) == 0
    assert re.search(r"^\d+ files of --data \(kit HardElectro1\) were trained on by trained-hardelectro, the --model: "
                     r"left out of the beats$", _said(caplog), re.M), _said(caplog)
    (built,) = re.findall(r"^beats: (.*)$", _said(caplog), re.M)
    assert built.count("Millo-Drums_v.1") == 2 and "HardElectro1" not in built
    assert ": 2 variations of 2 one-bar beats" in capsys.readouterr().out
    # a model that trained on every kit given leaves no beat: one line
    assert main(["eval-vary", "--loops", "--model", model, "--data", str(drumkits / "HardElectro1"), "--count", "2",
                 "--steps", "1"]) == 1
    assert "that the judged models did not train on" in capsys.readouterr().err
