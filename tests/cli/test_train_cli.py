"""`dd-bridge train`, `eval` and `check-memorization` end to end on real drums with a tiny network."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from bridge import constants, pictures
from bridge.cli import main
from bridge.engine.checkpoints import load_model
from bridge.training.evaluate import trained_on
from bridge.pictures import SheetLayout


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def kit(tmp_path, drumkits):
    folder = tmp_path / "my samples"
    (folder / "snares").mkdir(parents=True)
    files = sorted((drumkits / "rumpf_kit_z01_h2").glob("*.flac"), key=lambda p: p.stat().st_size)[:8]
    for i, src in enumerate(files):
        (folder / ("snares" if i % 2 else "") / src.name).symlink_to(src)
    (folder / "broken.wav").write_text("not audio")
    return folder


def train(kit, run, *extra):
    return main(["train", str(kit), "--out", str(run), "--window", "512", "--batch-size", "2",
                 "--held-out", "0.25", "--save-every", "1", "--demo-count", "1", "--demo-steps", "3", *extra])


def test_train_resume_export_and_fine_tune(tmp_path, kit, capsys, caplog):
    caplog.set_level(logging.INFO)
    run = tmp_path / "run"
    assert train(kit, run, "--size", "tiny", "--steps", "2", "--demo-every", "2") == 0
    first = capsys.readouterr()
    exported = [line for line in first.out.splitlines() if line]
    assert [p.rsplit(".", 1)[1] for p in exported] == ["safetensors", "yaml"]
    assert "broken.wav" in caplog.text  # listed, not fatal
    assert "step 2/2" in first.err  # the progress line
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "demos" / "step0000002.png").exists() and (run / "demos" / "step0000002-1.wav").exists()
    with Image.open(run / "loss.png") as loss, Image.open(run / "demos" / "step0000002.png") as demos:
        assert loss.size == (640, 340)  # 6.4 x 3.4 inches at 100 dpi
        width, height = SheetLayout().size(1, 1)  # one demo: one tile, at 80 dpi
        assert abs(demos.width - width * 80) <= 1 and abs(demos.height - height * 80) <= 1

    model = load_model(exported[0])
    assert model.window == 512 and model.sample_rate == 48000
    training = model.card.extra["training"]
    assert training["steps"] == 2 and len(training["held_out_files"]) == 2
    assert (training["onset_shift_ms"], training["pitch_semitones"]) == (5.0, 1.0)  # a new run's augmentation

    # The same command, asked for more steps, continues the run
    assert train(kit, run, "--size", "tiny", "--steps", "3", "--demo-every", "0") == 0
    assert "resuming" in caplog.text
    assert capsys.readouterr().out.split()[0].endswith("run-step3.safetensors")
    steps = [line.split(",")[0] for line in (run / "loss.csv").read_text().splitlines()[1:]]
    assert steps == ["1", "2", "3"]

    # Fine-tuning starts from the exported model and records it
    tuned = tmp_path / "tuned"
    assert train(kit, tuned, "--from", exported[0], "--steps", "1", "--demo-every", "0", "--licence", "CC0") == 0
    out = capsys.readouterr().out.split()
    card = load_model(out[0]).card
    assert card.extra["training"]["base_model"] == exported[0] and card.licence == "CC0"
    assert card.architecture == model.architecture


def test_fine_tuning_keeps_the_base_models_held_out_files_out_and_splits_only_new_files(tmp_path, kit, drumkits,
                                                                                        capsys):
    assert train(kit, tmp_path / "base", "--size", "tiny", "--steps", "1", "--demo-every", "0") == 0
    base = load_model(capsys.readouterr().out.split()[0])
    base_held = {str(p) for p in base.card.held_out_files}
    base_trained = {str(p) for p in kit.rglob("*.flac")} - base_held
    more = tmp_path / "more"
    more.mkdir()
    for src in sorted((drumkits / "Audiophob").glob("*.wav"))[:8]:
        (more / src.name).symlink_to(src)
    assert main(["train", str(kit), str(more), "--out", str(tmp_path / "tuned"), "--from",
                 str(base.card.weights_path), "--steps", "1", "--batch-size", "2", "--held-out", "0.25",
                 "--demo-every", "0"]) == 0
    tuned = load_model(capsys.readouterr().out.split()[0]).card
    held = {str(p) for p in tuned.held_out_files}
    assert len(base_held) == 2 and base_held <= held  # eval compares both on files neither learned
    assert not held & base_trained  # what the base learned stays in training
    assert len(held - base_held) == 2 and all(p.startswith(str(more)) for p in held - base_held)  # 25 % of 8 new
    # The fine-tune's card carries what its base learnt from, so a judge leaves those files out of a reference too
    # (before, only the fine-tune's own new data: the base's kit was a "held-out" reference for the fine-tune)
    assert tuned.lineage[1:] == base.card.lineage
    learnt, files = trained_on(tuned), lambda names: {Path(name).resolve() for name in names}  # as the files they are
    assert files(base_trained) <= learnt and not learnt & files(held)
    assert files(more.iterdir()) - files(held) <= learnt

    # and a fine-tune of the fine-tune carries both
    assert main(["train", str(more), "--out", str(tmp_path / "again"), "--from", str(tuned.weights_path),
                 "--steps", "1", "--batch-size", "2", "--demo-every", "0"]) == 0
    again = load_model(capsys.readouterr().out.split()[0]).card
    assert again.lineage[1:] == tuned.lineage and files(base_trained) <= trained_on(again)


def test_time_limit_stops_saves_and_exports_and_the_same_command_continues(tmp_path, kit, capsys, caplog):
    caplog.set_level(logging.INFO)
    run = tmp_path / "run"
    # save-every 1000: the stop itself must save, or nothing would be there to continue from
    assert main(["train", str(kit), "--out", str(run), "--size", "tiny", "--window", "512", "--batch-size", "2",
                 "--steps", "100000", "--save-every", "1000", "--demo-every", "0", "--time-limit", "3"]) == 0
    exported = capsys.readouterr().out.split()
    reached = load_model(exported[0]).card.extra["training"]["steps"]
    assert 0 < reached < 1000 and exported[0].endswith(f"run-step{reached}.safetensors")
    assert f"stopped: saved {run} at step {reached}" in caplog.text
    if pictures.available():  # drawn at the stop too, not only at the periodic saves (review s42: a GPU run's none)
        assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["train", str(kit), "--out", str(run), "--size", "tiny", "--window", "512", "--batch-size", "2",
                 "--steps", str(reached + 1), "--save-every", "1000", "--demo-every", "0"]) == 0
    assert f"resuming {run} at step {reached}" in caplog.text
    assert capsys.readouterr().out.split()[0].endswith(f"run-step{reached + 1}.safetensors")


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_time_limit_must_be_positive(tmp_path, kit, capsys, value):
    with pytest.raises(SystemExit) as stopped:
        main(["train", str(kit), "--out", str(tmp_path / "run"), "--time-limit", value])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert stopped.value.code == 2 and "--time-limit: must be positive seconds" in last, last
    assert not (tmp_path / "run").exists()


def test_without_matplotlib_training_skips_the_pictures_and_says_so_once(tmp_path, kit, caplog, monkeypatch):
    for name in ["matplotlib", *(name for name in sys.modules if name.startswith("matplotlib."))]:
        monkeypatch.setitem(sys.modules, name, None)  # what an install without the plots extra sees
    caplog.set_level(logging.INFO)
    run = tmp_path / "run"
    assert train(kit, run, "--size", "tiny", "--steps", "2", "--demo-every", "1") == 0
    assert len((run / "loss.csv").read_text().splitlines()) == 3
    assert (run / "demos" / "step0000001-1.wav").exists() and (run / "demos" / "step0000002-1.wav").exists()
    assert not list(run.rglob("*.png"))
    assert caplog.text.count("matplotlib is not installed") == 1


def test_bad_training_input_is_one_line(tmp_path, kit, capsys):
    assert main(["train", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    assert train(kit, tmp_path / "r", "--size", "tiny", "--window", "500") == 1
    assert "multiple of 8" in capsys.readouterr().err


def test_eval_and_memorization_commands_print_their_figures(tmp_path, kit, capsys):
    run = tmp_path / "run"
    assert train(kit, run, "--size", "tiny", "--steps", "1", "--demo-every", "0") == 0
    model = capsys.readouterr().out.split()[0]
    assert main(["eval", "--model", model, "--data", str(kit), "--count", "2"]) == 1
    assert "--count must be at least 3" in capsys.readouterr().err
    assert main(["eval", "--model", model, "--data", str(kit), "--count", "3", "--steps", "2,3",
                 "--sampler", "v-ddim"]) == 0
    table = capsys.readouterr().out
    for label in ("± se", "v-ddim, 2 steps", "v-ddim, 3 steps", "floor", "noise bursts", "untrained"):
        assert label in table
    # without --sampler, new sounds are scored as `generate` makes them (its per-kind default)
    assert main(["eval", "--model", model, "--data", str(kit), "--count", "3", "--steps", "2",
                 "--no-baselines"]) == 0
    assert "dpmpp-2m-sde-karras-eta0.5, 2 steps" in capsys.readouterr().out
    code = main(["check-memorization", "--model", model, "--data", str(kit), "--count", "2", "--steps", "2"])
    report = capsys.readouterr().out
    assert code in (0, 1) and "threshold" in report and "renders flagged" in report


def test_eval_against_another_model_renders_both_from_the_same_seeds_and_pairs_them(tmp_path, kit, capsys):
    assert train(kit, tmp_path / "a", "--size", "tiny", "--steps", "1", "--demo-every", "0") == 0
    first = capsys.readouterr().out.split()[0]
    # the same seed, so the same held-out files: any one held out by b and trained on by a is left out of the
    # reference (reference_and_training), which would leave none here
    assert train(kit, tmp_path / "b", "--size", "tiny", "--steps", "2", "--demo-every", "0") == 0
    second = capsys.readouterr().out.split()[0]
    args = ["eval", "--data", str(kit), "--count", "3", "--steps", "2", "--sampler", "v-ddim", "--no-baselines"]
    assert main([*args, "--model", second, "--against", first, "--json", str(tmp_path / "rows.json")]) == 0
    table = capsys.readouterr().out.splitlines()
    theirs, ours = table[1], table[2]
    assert theirs.startswith("a-step1: v-ddim, 2 steps") and ours.startswith("b-step2: v-ddim, 2 steps")
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert rows[0]["change"] is None and rows[1]["change"] is not None and rows[1]["change_error"] > 0
    assert rows[1]["change"] == pytest.approx(rows[1]["mmd2"] - rows[0]["mmd2"])  # one reference, both rows
    assert rows[1]["clicks_change"] == pytest.approx(rows[1]["clicks"] - rows[0]["clicks"])
    assert any(line.startswith("b-step2: v-ddim, 2 steps: clicks ") and "(paired)" in line for line in table)
    assert any("change: MMD^2 minus a-step1's row of the same setting" in line for line in table)
    # a model against itself: the same seeds give the same sounds, so the paired change is nothing at all
    assert main([*args, "--model", first, "--against", first, "--json", str(tmp_path / "self.json")]) == 0
    out = capsys.readouterr().out
    assert f"a-step1 ({first}): v-ddim" in out
    rows = json.loads((tmp_path / "self.json").read_text())
    assert rows[1]["change"] == 0 and rows[1]["change_error"] == 0 and rows[0]["mmd2"] == rows[1]["mmd2"]
    assert rows[1]["clicks_change"] == 0 and rows[1]["clicks_change_error"] == 0


def test_eval_against_a_model_of_another_window_is_one_line(tmp_path, kit, capsys):
    assert train(kit, tmp_path / "a", "--size", "tiny", "--steps", "1", "--demo-every", "0") == 0
    first = capsys.readouterr().out.split()[0]
    assert train(kit, tmp_path / "b", "--size", "tiny", "--steps", "1", "--demo-every", "0", "--window", "1024") == 0
    other = capsys.readouterr().out.split()[0]
    assert main(["eval", "--model", first, "--against", other, "--data", str(kit), "--count", "3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not comparable" in err[0]


@pytest.mark.parametrize("option, value, message", [("--pitch-semitones", "-1", "pitch shift must be 0 to 12"),
                                                    ("--onset-shift-ms", "100", "onset shift must be 0 to 50"),
                                                    ("--loss-weight", "min-snr", "flat | min-snr:GAMMA"),
                                                    ("--t-sampling", "low:2:0.5", "uniform | low:T:FRACTION"),
                                                    ("--pre-emphasis", "1", "pre-emphasis must be in [0, 1)"),
                                                    ("--ema-decay", "1.5", "EMA decay must be in [0, 1)")])
def test_an_augmentation_out_of_range_is_one_line(tmp_path, kit, capsys, option, value, message):
    assert train(kit, tmp_path / "run", "--size", "tiny", "--steps", "1", option, value) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "run").exists()


def test_the_recipe_options_reach_the_card_and_a_continued_run_keeps_them(tmp_path, kit, capsys):
    recipe = ["--loss-weight", "min-snr:5", "--pre-emphasis", "0.9", "--t-sampling", "low:0.3:0.75",
              "--ema-decay", "0.99"]
    assert train(kit, tmp_path / "run", "--size", "tiny", "--steps", "1", "--demo-every", "0", *recipe) == 0
    assert train(kit, tmp_path / "run", "--size", "tiny", "--steps", "2", "--demo-every", "0") == 0
    card = load_model(capsys.readouterr().out.split()[-2]).card.extra["training"]
    assert card["steps"] == 2
    assert [card[k] for k in ("loss_weight", "pre_emphasis", "t_sampling", "ema_decay")] == \
        ["min-snr:5", 0.9, "low:0.3:0.75", 0.99]


@pytest.mark.parametrize("command", ["train", "eval", "eval-vary", "check-memorization"])
def test_an_unknown_device_is_refused_before_any_work(tmp_path, kit, capsys, command):
    """The device choices of every command come from bridge.constants: a typo stops at the command line."""
    args = [command, str(kit), "--out", str(tmp_path / "run")] if command == "train" else [command, "--data", str(kit)]
    with pytest.raises(SystemExit) as stopped:
        main([*args, "--device", "gpu"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert stopped.value.code == 2 and "invalid choice: 'gpu'" in last, last
    assert all(device in last for device in constants.DEVICES)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("option, value, message", [
    ("--held-out", "10", "must be a fraction in [0, 1)"), ("--held-out", "1.5", "must be a fraction in [0, 1)"),
    ("--held-out", "1", "must be a fraction in [0, 1)"), ("--held-out", "-0.1", "must be a fraction in [0, 1)"),
    ("--held-out", "nan", "must be a fraction in [0, 1)"), ("--demo-count", "-1", "must be a whole number in 0..64"),
    ("--demo-count", "65", "must be a whole number in 0..64"), ("--demo-every", "-1", "must be a whole number >= 0"),
    ("--lr", "0", "must be a positive number"), ("--lr", "nan", "must be a positive number")])
def test_a_mistyped_option_is_refused_before_the_run_is_written(tmp_path, kit, capsys, option, value, message):
    """A continued run keeps its stored settings: a bad value must never reach run.yaml, or the corrected command
    would fail in every later session."""
    with pytest.raises(SystemExit) as stopped:
        train(kit, tmp_path / "run", "--size", "tiny", "--steps", "1", option, value)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert stopped.value.code == 2 and f"argument {option}: {message}" in last and last.endswith(f"got {value}"), last
    assert not (tmp_path / "run").exists()


def test_a_bad_value_an_older_version_stored_in_run_yaml_is_one_line_that_says_what_to_do(tmp_path, kit, capsys):
    from dataclasses import replace

    from bridge.training import session
    from bridge.training.train import STATE_FILE, write_settings

    run = tmp_path / "run"
    run.mkdir()
    settings, _ = session.prepare([kit], size="tiny", window=512, steps=1, batch_size=2)
    write_settings(run, replace(settings, held_out=1.5))  # what `--held-out 1.5` left behind before it was checked
    assert train(kit, run, "--size", "tiny", "--steps", "1", "--demo-every", "0", "--held-out", "0.1") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{run / 'run.yaml'}: held_out is 1.5, but must be a fraction in [0, 1)" in err[0], err
    assert "this run has not trained yet: delete that file" in err[0] and "ValueError" not in err[0]
    (run / "run.yaml").unlink()  # what the line says to do
    assert train(kit, run, "--size", "tiny", "--steps", "1", "--demo-every", "0") == 0
    capsys.readouterr()

    text = (run / "run.yaml").read_text()  # a run that trained: the value is corrected in place
    (run / "run.yaml").write_text(text.replace("demo_count: 1", "demo_count: -1"))
    assert (run / STATE_FILE).exists()
    assert train(kit, run, "--size", "tiny", "--steps", "2", "--demo-every", "0") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "demo_count is -1, but must be a whole number in 0..64" in err[0], err
    assert "correct demo_count there" in err[0]
    (run / "run.yaml").write_text(text)
    assert train(kit, run, "--size", "tiny", "--steps", "2", "--demo-every", "0") == 0


def test_an_export_cut_short_before_its_card_is_written_again_but_a_strangers_file_is_not(tmp_path, kit, capsys,
                                                                                          caplog):
    """s41 review #15: a stop between the weights and their card (save_model writes the card last) left
    RUN-stepN.safetensors alone, and every later run of the same command failed: "already exists; not overwriting"."""
    caplog.set_level(logging.INFO)
    run = tmp_path / "run"
    options = ("--size", "tiny", "--demo-every", "0", "--steps", "2")
    assert train(kit, run, *options) == 0
    weights, card = capsys.readouterr().out.split()
    Path(card).unlink()  # the stop, between the two
    assert train(kit, run, *options) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.split() == [weights, card] and "an export cut short before its card" in caplog.text
    assert load_model(card).card.extra["training"]["steps"] == 2
    Path(card).unlink()
    Path(weights).write_bytes(b"someone else's file under that name")  # not the run's weights: left alone
    assert train(kit, run, *options) == 1
    assert "already exists" in capsys.readouterr().err and Path(weights).read_bytes().startswith(b"someone")


def test_a_named_run_continues_and_replaces_only_its_own_export(tmp_path, kit, capsys, caplog):
    caplog.set_level(logging.INFO)
    run = tmp_path / "run"
    named = ("--size", "tiny", "--demo-every", "0", "--name", "mykick")
    assert train(kit, run, *named, "--steps", "2") == 0
    paths = capsys.readouterr().out.split()
    assert paths == [str(run / "mykick.safetensors"), str(run / "mykick.yaml")]
    # The same command with more steps (or another --time-limit) continues and updates the export under its name
    assert train(kit, run, *named, "--steps", "3") == 0
    assert capsys.readouterr().out.split() == paths
    model = load_model(paths[0])
    assert model.card.name == "mykick" and model.card.extra["training"]["steps"] == 3
    assert sorted(p.name for p in run.glob("mykick*")) == ["mykick.safetensors", "mykick.yaml"]
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temporary left behind
    assert train(kit, run, *named, "--steps", "3") == 0  # finished: asked again, it is already there
    assert capsys.readouterr().out.split() == paths and "already exported at step 3" in caplog.text

    # A file the run did not write under that name is never replaced, and that is said before any training
    (run / "mykick.safetensors").write_bytes(b"the producer's own file")
    steps = len((run / "loss.csv").read_text().splitlines())
    assert train(kit, run, *named, "--steps", "4") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mykick.safetensors: already exists and this run did not export it" in err[0], err
    assert (run / "mykick.safetensors").read_bytes() == b"the producer's own file"
    assert len((run / "loss.csv").read_text().splitlines()) == steps
    assert train(kit, run, "--size", "tiny", "--steps", "4", "--name", "../mykick") == 1
    assert "a file name, not a path" in capsys.readouterr().err
    assert len((run / "loss.csv").read_text().splitlines()) == steps


def test_a_run_folder_inside_the_data_never_trains_on_demos(tmp_path, kit, capsys, caplog):
    caplog.set_level(logging.INFO)
    other = kit / "an older run"  # another run's folder in the data: its demos are a model's renders too
    (other / "demos").mkdir(parents=True)
    (other / "run.yaml").write_text("steps: 1\n")
    (other / "demos" / "step0000001-1.wav").symlink_to(next(kit.glob("*.flac")))
    run = kit / "run"
    for steps in ("1", "2", "3"):
        caplog.clear()
        assert train(kit, run, "--size", "tiny", "--steps", steps, "--demo-every", "1", "--demo-steps", "2") == 0
        line = next(message for message in caplog.messages if message.startswith("training on "))
        assert line.startswith("training on 6 files (1 skipped, 2 held out)"), line  # 8 drums, 2 held out
        assert caplog.text.count("left out of the training data") == 1
    assert (run / "demos" / "step0000002-1.wav").exists()
    assert f"left out of the training data: {other}, {run}" in caplog.text
    capsys.readouterr()
    assert train(kit, kit, "--size", "tiny", "--steps", "1") == 1  # the data folder itself as the run folder
    assert "is a data folder itself" in capsys.readouterr().err


# -- a run continued elsewhere: the run folder copied to a new machine, its data at another path ----------------


def copy_data(kit, folder):
    """The kit as plain files at another path (the fixture's links resolved), as a copy to a new machine has it."""
    shutil.copytree(kit, folder, symlinks=False)
    return folder


def loss_rows(run):
    return (run / "loss.csv").read_text().splitlines()


def test_a_run_folder_copied_to_another_machine_continues_with_its_data_at_a_new_path(tmp_path, kit, capsys, caplog,
                                                                                      monkeypatch):
    caplog.set_level(logging.INFO)
    assert train(kit, tmp_path / "here" / "run", "--size", "tiny", "--steps", "2", "--demo-every", "0") == 0
    before = load_model(capsys.readouterr().out.split()[0]).card.extra["training"]["held_out_files"]
    assert len(before) == 2
    there = tmp_path / "there"  # the new machine: the run folder and the data copied, the old place gone
    shutil.copytree(tmp_path / "here" / "run", there / "run")
    copy_data(kit, there / "samples")
    kit.rename(tmp_path / "gone")
    monkeypatch.chdir(there)  # the data given relative, from another directory
    caplog.clear()
    assert main(["train", "samples", "--out", "run", "--size", "tiny", "--window", "512", "--steps", "3",
                 "--demo-every", "0"]) == 0
    exported = capsys.readouterr().out.split()
    assert exported[0].endswith("run-step3.safetensors")
    assert "resuming run at step 2" in caplog.text and f"the data moved: {there / 'samples'} now" in caplog.text
    line = next(message for message in caplog.messages if message.startswith("training on "))
    assert line.startswith("training on 6 files (1 skipped, 2 held out)"), line  # 9 files, 2 of them held out
    held = load_model(exported[0]).card.extra["training"]["held_out_files"]
    # the same files held out, named where they lie now (eval finds them there), never trained on
    assert [Path(p).name for p in held] == [Path(p).name for p in before]
    assert all(Path(p).is_file() and p.startswith(str(there / "samples")) for p in held), held
    stored = yaml.safe_load((there / "run" / "run.yaml").read_text())
    assert stored["data"] == [str(there / "samples")] and stored["data_files"]["files"] == 9
    assert all(not Path(name).is_absolute() for name in stored["held_out_files"])  # relative to the data
    assert [row.split(",")[0] for row in loss_rows(there / "run")[1:]] == ["1", "2", "3"]


def test_a_moved_run_given_other_data_is_refused_in_one_line_saying_what_differs(tmp_path, kit, capsys):
    run = tmp_path / "run"
    assert train(kit, run, "--size", "tiny", "--steps", "1", "--demo-every", "0") == 0
    capsys.readouterr()
    rows = loss_rows(run)
    other = copy_data(kit, tmp_path / "fewer")
    missing = sorted(other.rglob("*.flac"))[0]
    missing.unlink()
    assert main(["train", str(other), "--out", str(run), "--size", "tiny", "--window", "512", "--steps", "2",
                 "--demo-every", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"1 of its 9 files missing, e.g. {missing.relative_to(other).as_posix()}" in err[0], err
    assert "pass the same data" in err[0] and "--out" not in err[0], err  # never: throw the run away
    assert loss_rows(run) == rows
    copy_data(kit, tmp_path / "same")  # the same files at yet another path: taken
    assert main(["train", str(tmp_path / "same"), "--out", str(run), "--steps", "2", "--demo-every", "0"]) == 0


def test_a_run_whose_listing_holds_macos_dot_underscore_files_still_takes_its_data_moved(tmp_path, kit, capsys):
    """Review s41: hidden files are passed over since session 41; a run begun before listed macOS's ._NAME files (an
    exFAT or SMB disk) in its data-files.json, and the same data, moved, was refused as "other files"."""
    import json

    from bridge.training import session

    run = tmp_path / "run"
    assert train(kit, run, "--size", "tiny", "--steps", "1", "--demo-every", "0") == 0
    capsys.readouterr()
    listing = json.loads((run / session.DATA_FILES).read_text())
    first = listing[0][0]
    dotted = f"{first.rpartition('/')[0]}/._{first.rpartition('/')[2]}".replace("/./", "/")
    listing.append([dotted, 4096])  # as the version before wrote it
    (run / session.DATA_FILES).write_text(json.dumps(listing))
    stored = yaml.safe_load((run / "run.yaml").read_text())
    stored["data_files"].update(session.fingerprint([(name, size) for name, size in listing]))
    (run / "run.yaml").write_text(yaml.safe_dump(stored))

    moved = copy_data(kit, tmp_path / "moved")
    (moved / dotted.partition("/")[2]).write_bytes(b"\0" * 4096)  # still there, still passed over
    assert main(["train", str(moved), "--out", str(run), "--steps", "2", "--demo-every", "0"]) == 0, \
        capsys.readouterr().err
    (moved / dotted.partition("/")[2]).unlink()  # or gone: the same
    assert main(["train", str(moved), "--out", str(run), "--steps", "3", "--demo-every", "0"]) == 0, \
        capsys.readouterr().err


def test_two_folders_alike_by_name_and_size_given_in_another_order_are_refused(tmp_path, drumkits, capsys):
    """Review s41 diff #4: two folders of renders alike by names and sizes (two kits rendered the same way) given in
    the other order matched the run's fingerprint and were taken for "the data moved"; the held-out name "0/..."
    then pointed at the other folder's file, and the file held out before was trained on."""
    import numpy as np
    import soundfile

    sources = sorted((drumkits / "rumpf_kit_z01_h2").glob("*.flac"))[:8]
    for kit, offset in (("kitA", 0), ("kitB", 4)):  # the same four names and lengths, other sounds
        (tmp_path / kit).mkdir()
        for index in range(4):
            audio, rate = soundfile.read(sources[index + offset], frames=4800, always_2d=True)
            stereo = np.zeros((4800, 2))
            stereo[:len(audio)] = audio[:, :2] if audio.shape[1] > 1 else audio
            soundfile.write(tmp_path / kit / f"hit {index}.wav", stereo, 48000, subtype="PCM_16")
    run = tmp_path / "run"
    common = ["--out", str(run), "--window", "512", "--batch-size", "2", "--held-out", "0.25", "--size", "tiny",
              "--demo-every", "0"]
    assert main(["train", str(tmp_path / "kitA"), str(tmp_path / "kitB"), *common, "--steps", "1"]) == 0
    capsys.readouterr()
    rows = loss_rows(run)
    assert main(["train", str(tmp_path / "kitB"), str(tmp_path / "kitA"), *common, "--steps", "2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "its held-out files are not the ones in" in err[0], err
    assert "in the order the run started with (kitA, kitB)" in err[0] and loss_rows(run) == rows
    moved = tmp_path / "moved"  # the same folders moved, in their order: taken
    shutil.copytree(tmp_path / "kitA", moved / "kitA")
    shutil.copytree(tmp_path / "kitB", moved / "kitB")
    assert main(["train", str(moved / "kitA"), str(moved / "kitB"), *common, "--steps", "2"]) == 0


def test_a_fine_tune_continues_without_its_base_and_a_base_named_again_is_compared_by_its_weights(
        tmp_path, kit, capsys, monkeypatch):
    assert train(kit, tmp_path / "base-run", "--size", "tiny", "--steps", "1", "--demo-every", "0") == 0
    weights = Path(capsys.readouterr().out.split()[0])
    assert train(kit, tmp_path / "other-run", "--size", "tiny", "--steps", "2", "--demo-every", "0") == 0
    other = capsys.readouterr().out.split()[0]
    (tmp_path / "base").mkdir()
    for path in (weights, weights.with_suffix(".yaml")):
        shutil.copy(path, tmp_path / "base" / path.name.replace(weights.stem, "b"))
    monkeypatch.chdir(tmp_path)
    tune = ("--demo-every", "0", "--licence", "CC0")
    assert main(["train", str(kit), "--out", "ft", "--from", "base/b.safetensors", "--steps", "1",
                 "--batch-size", "2", *tune]) == 0
    capsys.readouterr()
    (tmp_path / "base").rename(tmp_path / "elsewhere")  # the base is not on the new machine, or not at that path
    assert main(["train", str(kit), "--out", "ft", "--size", "tiny", "--window", "512", "--steps", "2", *tune]) == 0
    assert capsys.readouterr().out.split()[0].endswith("ft-step2.safetensors")
    monkeypatch.chdir(tmp_path / "elsewhere")  # named again, by another path from another directory
    assert main(["train", str(kit), "--out", str(tmp_path / "ft"), "--from", str(tmp_path / "elsewhere" / "b.yaml"),
                 "--steps", "3", *tune]) == 0
    assert capsys.readouterr().out.split()[0].endswith("ft-step3.safetensors")
    assert main(["train", str(kit), "--out", str(tmp_path / "ft"), "--from", other, "--steps", "4", *tune]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "this run fine-tunes" in err[0] and "b.safetensors" in err[0] and other in err[0], err
    stored = yaml.safe_load((tmp_path / "ft" / "run.yaml").read_text())
    assert stored["base_model"] == str(tmp_path / "base" / "b.safetensors") and len(stored["base_sha256"]) == 64


def test_flags_given_to_a_continued_run_are_said_and_taken_or_ignored_by_one_rule(tmp_path, kit, capsys, caplog):
    caplog.set_level(logging.INFO)
    run = tmp_path / "run"
    assert train(kit, run, "--size", "tiny", "--steps", "1", "--demo-every", "0") == 0
    caplog.clear()
    assert main(["train", str(kit), "--out", str(run), "--size", "tiny", "--window", "512", "--steps", "2",
                 "--lr", "1e-3", "--batch-size", "4",
                 "--seed", "5", "--ema-decay", "0.9", "--loss-weight", "min-snr:5", "--held-out", "0.5",
                 "--save-every", "2", "--demo-every", "0"]) == 0
    for line in ("keeps lr 0.0002 from run.yaml (--lr 0.001 ignored)",
                 "keeps batch_size 2 from run.yaml (--batch-size 4 ignored)",
                 "keeps seed 0 from run.yaml (--seed 5 ignored)",
                 "keeps ema_decay 0.995 from run.yaml (--ema-decay 0.9 ignored)",
                 "keeps loss_weight flat from run.yaml (--loss-weight min-snr:5 ignored)",
                 "keeps held_out 0.25 from run.yaml (--held-out 0.5 ignored)",
                 "takes --save-every 2 (run.yaml had 1)", "takes --steps 2 (run.yaml had 1)"):
        assert line in caplog.messages, (line, caplog.messages)
    assert not [m for m in caplog.messages if "demo" in m and "run.yaml" in m]  # the same value: nothing said
    stored = yaml.safe_load((run / "run.yaml").read_text())
    assert (stored["lr"], stored["batch_size"], stored["seed"], stored["save_every"]) == (2e-4, 2, 0, 2)


def test_a_continued_run_takes_its_architecture_window_and_rate_from_run_yaml(tmp_path, kit, capsys):
    run = tmp_path / "run"
    assert train(kit, run, "--size", "tiny", "--steps", "1", "--demo-every", "0") == 0
    capsys.readouterr()
    assert main(["train", str(kit), "--out", str(run), "--steps", "2", "--demo-every", "0"]) == 0
    assert capsys.readouterr().out.split()[0].endswith("run-step2.safetensors")
    for option, value, said in (("--window", "1024", "this run's window is 512, not --window 1024"),
                                ("--size", "small", "this run's architecture is tiny, not --size small"),
                                ("--sample-rate", "44100", "this run trains at 48000 Hz, not --sample-rate 44100")):
        assert main(["train", str(kit), "--out", str(run), "--steps", "3", option, value]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0] and f"leave out {option}" in err[0], err
    assert len(loss_rows(run)) == 3


def test_a_window_shorter_than_the_network_takes_is_refused_before_anything_is_written(tmp_path, kit, capsys):
    assert main(["train", str(kit), "--out", str(tmp_path / "run"), "--size", "tiny", "--window", "16"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "window must be a multiple of 8 samples, at least 24" in err[0], err
    assert not (tmp_path / "run").exists()
    assert main(["train", str(kit), "--out", str(tmp_path / "run"), "--size", "tiny", "--window", "24",
                 "--steps", "1", "--batch-size", "2", "--demo-every", "0"]) == 0


KILLED_MID_WRITE = """
import os, signal, sys, tempfile
from pathlib import Path
from bridge import files
run, what = Path(sys.argv[1]), sys.argv[2]
def killed(file):
    file.write(b"half a state" * 100000)
    file.flush()
    os.kill(os.getpid(), signal.SIGKILL)
if what == "save":
    files.replace_file(run / "state.pt", killed)
else:
    folder = tempfile.mkdtemp(dir=run, prefix=files.TEMPORARY_FOLDER_PREFIX)  # as session.export's
    files.replace_file(Path(folder) / "run-step9.safetensors", killed)
"""


def test_what_a_save_killed_mid_write_leaves_is_removed_when_the_run_continues(tmp_path, kit, capsys, caplog):
    import subprocess

    from bridge import files

    caplog.set_level(logging.INFO)
    run = tmp_path / "run"
    assert train(kit, run, "--size", "tiny", "--steps", "1", "--demo-every", "0") == 0
    for what in ("save", "save", "export"):  # kill -9 while the project's writer is writing
        done = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(run), what], cwd=Path(__file__).parents[2])
        assert done.returncode == -9
    leftovers = sorted(p.name for p in run.iterdir() if p.name.startswith(files.TEMPORARY_PREFIX))
    assert len(leftovers) == 3, leftovers
    victim = tmp_path / "precious.wav"
    victim.write_bytes(b"a file of the user's")
    link = run / f"{files.TEMPORARY_PREFIX}planted{files.TEMPORARY_MARK}.pt"
    link.symlink_to(victim)
    (run / "demos").mkdir(exist_ok=True)
    below = run / "demos" / f"{files.TEMPORARY_PREFIX}x{files.TEMPORARY_MARK}.wav"
    below.write_bytes(b"not in the run folder itself")
    staging = run / ".dd-bridge-staging"  # the service's, where --out is its sample folder: a press heard, not kept
    staging.mkdir()
    (staging / "held.wav").write_bytes(b"a variation heard and not kept yet")
    assert train(kit, run, "--size", "tiny", "--steps", "2", "--demo-every", "0") == 0
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(files.TEMPORARY_PREFIX)) == \
        [link.name, staging.name]
    assert (staging / "held.wav").exists()
    assert victim.read_bytes() == b"a file of the user's" and link.is_symlink() and below.exists()
    assert "removed what an interrupted save left in" in caplog.text


def test_an_older_run_yaml_continues_where_its_data_lay_and_then_records_its_files(tmp_path, kit, capsys, caplog):
    """A run.yaml of an older version (absolute paths, no data_files: the GPU kit's carried runs) continues with
    its data at the same absolute paths, as gpu/session.sh restores it, even with the run folder elsewhere; from
    then on it knows its files and can move. With its data elsewhere first, it says where to put it."""
    caplog.set_level(logging.INFO)
    assert train(kit, tmp_path / "made" / "run", "--size", "tiny", "--steps", "1", "--demo-every", "0") == 0
    capsys.readouterr()
    older = yaml.safe_load((tmp_path / "made" / "run" / "run.yaml").read_text())
    roots = [Path(root) for root in older["data"]]
    older["held_out_files"] = [name if Path(name).is_absolute() else str(roots[int(name.split("/")[0])] /
                                                                         name.split("/", 1)[1])
                               for name in older["held_out_files"]]  # as an older version wrote them
    for key in ("data_files", "base_sha256", "base_licence"):
        older.pop(key, None)
    (tmp_path / "made" / "run" / "run.yaml").write_text(yaml.safe_dump(older, sort_keys=False))
    (tmp_path / "made" / "run" / "data-files.json").unlink(missing_ok=True)
    shutil.copytree(tmp_path / "made" / "run", tmp_path / "carried")

    moved = copy_data(kit, tmp_path / "moved")
    assert main(["train", str(moved), "--out", str(tmp_path / "made" / "run"), "--size", "tiny", "--window", "512",
                 "--steps", "2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"knows its data only by where it lay ({kit})" in err[0] and "--out" not in err[0], err

    caplog.clear()
    assert main(["train", str(kit), "--out", str(tmp_path / "carried"), "--steps", "2", "--demo-every", "0"]) == 0
    assert capsys.readouterr().out.split()[0].endswith("carried-step2.safetensors")
    line = next(message for message in caplog.messages if message.startswith("training on "))
    assert "2 held out" in line, line
    now = yaml.safe_load((tmp_path / "carried" / "run.yaml").read_text())
    assert now["data_files"]["files"] == 9 and [Path(n).name for n in now["held_out_files"]] == \
        [Path(p).name for p in older["held_out_files"]] and not Path(now["held_out_files"][0]).is_absolute()
    assert main(["train", str(moved), "--out", str(tmp_path / "carried"), "--steps", "3", "--demo-every", "0"]) == 0
