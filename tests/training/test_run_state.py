"""What a run keeps when training goes wrong: a loss gone NaN, Ctrl-C or SIGTERM mid-step, a crash after the last
save, a full disk while saving, and a state.pt that is not this run's. Real tiny runs on real drums."""

from __future__ import annotations

import logging
import os
import re
import signal

import pytest
import torch

from bridge.cli import main, stop_on_terminate
from bridge.engine.unet import DanceDiffusionUNet
from bridge.training import train
from bridge.training.train import Diverged, fit, open_run, read_losses
from tests.cli.test_models_get import small_disk
from tests.support.model_files import Malicious
from tests.training.test_train import settings_for, windows  # noqa: F401 (windows: the fixture, used by name)

RATE = 48000


@pytest.fixture
def kit(tmp_path, drumkits):
    """8 real one-shots in a folder of their own."""
    folder = tmp_path / "kit"
    folder.mkdir()
    for src in sorted((drumkits / "Audiophob").glob("*.wav"))[:8]:
        (folder / src.name).symlink_to(src)
    return folder


def train_command(kit, run, *extra):
    return main(["train", str(kit), "--out", str(run), "--size", "tiny", "--window", "512", "--batch-size", "2",
                 "--held-out", "0.25", "--demo-every", "0", *extra])


def state_at(run_dir) -> dict:
    return torch.load(run_dir / "state.pt", map_location="cpu", weights_only=True)


def finite(state: dict) -> bool:
    return all(torch.isfinite(t).all() for part in ("model", "ema") for t in state[part].values())


def error_line(capsys) -> str:
    """stderr's one error line (the progress bar may be there too); fails on a traceback or a second error."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("dd-bridge train:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def loss_steps(run_dir) -> list[int]:
    return [int(line.split(",")[0]) for line in (run_dir / "loss.csv").read_text().splitlines()[1:]]


# -- a loss gone NaN ---------------------------------------------------------------------------------------------

def test_a_diverging_run_stops_keeps_its_last_good_state_and_exports_nothing(tmp_path, kit, capsys):
    run = tmp_path / "run"
    code = train_command(kit, run, "--steps", "8", "--save-every", "1", "--lr", "1e30")
    line = error_line(capsys)
    found = re.search(rf"loss became NaN at step (\d+); {re.escape(str(run / 'state.pt'))} kept at step (\d+) "
                      r"\(lower lr in .*run\.yaml", line)
    assert code == 1 and found, line
    diverged, kept = int(found.group(1)), int(found.group(2))
    state = state_at(run)
    assert kept == diverged - 1 == state["step"] and finite(state)  # the save before was good, and it stays
    assert loss_steps(run) == list(range(1, diverged))  # no NaN row
    assert not list(run.glob("*.safetensors")) and not list(run.glob("*.yaml.*"))  # nothing exported


def test_a_state_pt_with_nan_weights_is_not_resumed_or_exported(tmp_path, kit, capsys):
    """As a version that trained on through NaN left it: the EMA spoilt, saved over the good state."""
    run = tmp_path / "run"
    assert train_command(kit, run, "--steps", "1", "--save-every", "1") == 0
    capsys.readouterr()
    for path in run.glob("run-step1.*"):
        path.unlink()
    state = state_at(run)
    next(iter(state["ema"].values())).fill_(float("nan"))
    torch.save(state, run / "state.pt")
    assert train_command(kit, run, "--steps", "2", "--save-every", "1") == 1
    line = error_line(capsys)
    assert f"{run / 'state.pt'}: its EMA weights hold NaN or infinite values (first: " in line, line
    assert not list(run.glob("*.safetensors")) and state_at(run)["step"] == 1


def test_under_fp16_the_scaler_skips_a_step_whose_loss_overflows_but_a_run_that_overflows_on_and_on_stops(
        tmp_path, tiny_config, windows, monkeypatch, caplog):
    """fp16's GradScaler skips a step with non-finite gradients and keeps the weights: one forward pass that
    overflows (a window far too loud for fp16) is skipped and left out of loss.csv; one overflow after another
    stops the run. Autocast to fp16 runs on the CPU too, the scaler with it."""
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(train, "SKIPPED_IN_A_ROW", 3)  # the real 20 would take a minute of fp16 on the CPU
    loud = windows.clone()
    loud[0] *= 1e6  # in the second step's batch only
    run = open_run(tmp_path / "once", settings_for(tiny_config, 3), precision="fp16")
    assert run.scaler.is_enabled()
    fit(run, loud)
    assert run.step == 3 and [step for step, _, _ in read_losses(run.dir)] == [1, 3]
    assert "step 2: loss nan in fp16, step skipped" in caplog.text
    assert state_at(run.dir)["step"] == 3 and finite(state_at(run.dir))

    run = open_run(tmp_path / "always", settings_for(tiny_config, 8, save_every=8), precision="fp16")
    with pytest.raises(Diverged, match="loss became NaN at step 3; nothing was saved yet"):
        fit(run, windows * 1e6)
    assert not (run.dir / "state.pt").exists()


def test_a_run_saved_without_loss_scaling_continues_where_fp16_is_chosen(tmp_path, tiny_config, windows, caplog):
    """Review s41 diff #1: a run saved in fp32 (a CPU) or bf16 (an A100, an H100) stores an empty GradScaler state;
    carried to a GPU where fp16 is chosen (a T4, a V100) it was refused: "The source state dict is empty"."""
    caplog.set_level(logging.INFO)
    settings = settings_for(tiny_config, 2)
    fit(open_run(tmp_path / "run", settings, precision="fp32"), windows)
    run = open_run(tmp_path / "run", settings_for(tiny_config, 3), precision="fp16")
    assert run.step == 2 and run.scaler.is_enabled() and "starts afresh here" in caplog.text
    fit(run, windows)
    assert state_at(run.dir)["step"] == 3 and finite(state_at(run.dir))


# -- Ctrl-C and SIGTERM -----------------------------------------------------------------------------------------

def signal_during_step(model, number: int, step: int, times: int = 1):
    """Sends ``number`` to this process ``times`` times from inside the forward pass of ``step`` (1-based): after
    that step's augmentation and noise were drawn, before its update. A real signal, handled by whatever handler
    is installed, as a Ctrl-C or a service manager's SIGTERM lands."""
    calls = [0]

    def hook(module, inputs):
        calls[0] += 1
        if calls[0] == step:
            for _ in range(times):
                os.kill(os.getpid(), number)

    return model.register_forward_pre_hook(hook)


@pytest.fixture
def terminate_as_the_command_does():
    """SIGTERM handled as `dd-bridge train` handles it outside the loop; the handler before put back after."""
    with stop_on_terminate():
        yield


def assert_same_state(a: dict, b: dict):
    assert a["step"] == b["step"]
    assert torch.equal(a["generator"], b["generator"])
    for part in ("model", "ema"):
        for key in a[part]:
            assert torch.allclose(a[part][key], b[part][key], atol=1e-6), (part, key)


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_step_saves_when_the_step_ends_and_the_run_continues_exactly(
        tmp_path, tiny_config, windows, number, terminate_as_the_command_does, caplog):
    caplog.set_level(logging.INFO)
    augmented = dict(onset_shift_ms=5.0, pitch_semitones=1.0)  # more of the generator drawn in each step
    straight = open_run(tmp_path / "straight", settings_for(tiny_config, 6, **augmented))
    fit(straight, windows)

    first = open_run(tmp_path / "resumed", settings_for(tiny_config, 6, **augmented))
    signal_during_step(first.model, number, step=3)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        fit(first, windows)
    assert state_at(first.dir)["step"] == 3  # not 2 (save_every 2): the step under way ended, then it was saved
    assert f"interrupted: saved {first.dir} at step 3" in caplog.text
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # fit's are gone

    resumed = open_run(tmp_path / "resumed", settings_for(tiny_config, 6, **augmented),
                       model=DanceDiffusionUNet(tiny_config))
    fit(resumed, windows)
    assert_same_state(state_at(straight.dir), state_at(resumed.dir))
    assert loss_steps(resumed.dir) == [1, 2, 3, 4, 5, 6]


def test_the_same_signal_passed_on_twice_at_once_is_one_stop_saved_at_the_steps_end(tmp_path, tiny_config, windows):
    """Review s41 diff #8: systemd signals the whole cgroup and torchrun passes the signal on to its workers too: a
    worker got SIGTERM twice within milliseconds, took the second for "stop at once" and never saved."""
    run = open_run(tmp_path / "run", settings_for(tiny_config, 4))
    signal_during_step(run.model, signal.SIGTERM, step=3, times=2)
    with pytest.raises(KeyboardInterrupt):
        fit(run, windows)
    assert state_at(run.dir)["step"] == 3  # saved when step 3 ended


@pytest.fixture
def hangup_default():
    """SIGHUP as from a terminal (a test run under nohup, a CI job's, inherits it ignored)."""
    before = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGHUP, before)


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on Windows")
def test_a_closed_terminal_saves_at_the_steps_end(tmp_path, tiny_config, windows, hangup_default):
    run = open_run(tmp_path / "run", settings_for(tiny_config, 4))
    signal_during_step(run.model, signal.SIGHUP, step=2)
    with pytest.raises(KeyboardInterrupt):
        fit(run, windows)
    assert state_at(run.dir)["step"] == 2


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on Windows")
def test_under_nohup_a_closed_terminal_does_not_stop_training(tmp_path, tiny_config, windows, hangup_default):
    """`nohup dd-bridge train ... &`: SIGHUP ignored before the command stays ignored while steps are trained (fit
    put its own handler in for every signal, and the closed terminal stopped the run at the next step's end)."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    run = open_run(tmp_path / "run", settings_for(tiny_config, 4))
    signal_during_step(run.model, signal.SIGHUP, step=2)
    fit(run, windows)
    assert state_at(run.dir)["step"] == 4 and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN


def test_a_signal_in_the_last_step_still_exports_the_finished_run(tmp_path, kit, monkeypatch, caplog):
    """Review s41: Ctrl-C during the last step saved the finished run and exported nothing (the command said
    "interrupted", and only a rerun exported it)."""
    caplog.set_level(logging.INFO)
    step = train.Run.train_step
    calls = [0]

    def train_step(self, reals):
        calls[0] += 1
        if calls[0] == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return step(self, reals)

    monkeypatch.setattr(train.Run, "train_step", train_step)
    run = tmp_path / "run"
    assert train_command(kit, run, "--steps", "3") == 0
    assert state_at(run)["step"] == 3 and calls[0] == 3
    assert (run / "run-step3.safetensors").exists() and (run / "run-step3.yaml").exists()
    assert "exporting the finished run" in caplog.text and "the same command continues" not in caplog.text


def test_a_second_signal_stops_at_once_and_keeps_the_last_save(tmp_path, tiny_config, windows, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(train._StopAtStepEnd, "REPEAT_SECONDS", 0.0)  # a second Ctrl-C a moment later
    straight = open_run(tmp_path / "straight", settings_for(tiny_config, 4))
    fit(straight, windows)

    first = open_run(tmp_path / "resumed", settings_for(tiny_config, 4))
    signal_during_step(first.model, signal.SIGINT, step=3, times=2)
    with pytest.raises(KeyboardInterrupt):
        fit(first, windows)
    assert state_at(first.dir)["step"] == 2  # the save before; nothing written mid-step
    assert f"interrupted at once, not saved: {first.dir / 'state.pt'} kept at step 2" in caplog.text

    resumed = open_run(tmp_path / "resumed", settings_for(tiny_config, 4), model=DanceDiffusionUNet(tiny_config))
    fit(resumed, windows)
    assert_same_state(state_at(straight.dir), state_at(resumed.dir))


# -- loss.csv after a crash ---------------------------------------------------------------------------------------

def test_a_run_that_died_after_its_last_save_has_each_step_once_in_loss_csv(tmp_path, tiny_config, windows):
    """A crash (kill -9, out of memory) after step 3 of a run saved at step 2: step 3 is trained again when the run
    continues, and is written once."""
    first = open_run(tmp_path / "run", settings_for(tiny_config, 6))

    def crash(run, loss):
        if run.step == 3:
            raise MemoryError  # not a KeyboardInterrupt: nothing saves

    with pytest.raises(MemoryError):
        fit(first, windows, on_step=crash)
    assert state_at(first.dir)["step"] == 2 and loss_steps(first.dir) == [1, 2, 3]
    resumed = open_run(tmp_path / "run", settings_for(tiny_config, 6), model=DanceDiffusionUNet(tiny_config))
    fit(resumed, windows)
    assert loss_steps(resumed.dir) == [1, 2, 3, 4, 5, 6]
    assert [step for step, _, _ in read_losses(resumed.dir)] == [1, 2, 3, 4, 5, 6]

    # a loss.csv an older version left with a step twice reads (and so plots) each step once, in order
    path = resumed.dir / "loss.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:4] + lines[3:]) + "\n")
    assert [step for step, _, _ in read_losses(resumed.dir)] == [1, 2, 3, 4, 5, 6]


# -- a full disk ----------------------------------------------------------------------------------------------------

def test_a_full_disk_while_saving_is_one_line_and_keeps_the_previous_state(tmp_path, kit, capsys):
    parameters = sum(p.numel() for p in DanceDiffusionUNet(train.SIZES["tiny"]).parameters())
    state_bytes = parameters * 4 * 4  # weights, EMA and the optimiser's two moments, fp32
    with small_disk(tmp_path / "disk", f"{state_bytes * 3 // 2 // 1024}k") as disk:  # one state.pt, not two
        run = disk / "run"
        assert train_command(kit, run, "--steps", "3", "--save-every", "1") == 1
        line = error_line(capsys)
        found = re.search(rf"{re.escape(str(run / 'state.pt'))}: disk full while saving \(about ([\d.]+) MB needed, "
                          r"[\d.]+ MB free\); the previous state.pt \(step 1\) is kept", line)
        assert found and abs(float(found.group(1)) * 1e6 / state_bytes - 1) < 0.05, line
        assert state_at(run)["step"] == 1 and finite(state_at(run))
        assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no half-written temporary


# -- a state.pt that is not this run's -----------------------------------------------------------------------------

def test_a_state_pt_that_would_run_code_is_refused_in_one_line(tmp_path, kit, capsys):
    run = tmp_path / "run"
    assert train_command(kit, run, "--steps", "1", "--save-every", "1") == 0
    capsys.readouterr()
    marker = tmp_path / "pwned"
    torch.save({**state_at(run), "model": Malicious(marker)}, run / "state.pt")
    assert train_command(kit, run, "--steps", "2") == 1
    line = error_line(capsys)
    assert f"{run / 'state.pt'}: cannot resume from this run state (refused: " in line and "GLOBAL" in line, line
    assert "weights_only" not in line and not marker.exists()


def test_a_state_pt_of_another_architecture_names_the_file_and_why(tmp_path, kit, capsys):
    run = tmp_path / "run"
    assert train_command(kit, run, "--steps", "1", "--save-every", "1") == 0
    capsys.readouterr()
    (run / "run.yaml").unlink()  # the settings gone: the command line's (default size "small") are the run's
    assert main(["train", str(kit), "--out", str(run), "--batch-size", "2", "--demo-every", "0",
                 "--steps", "2"]) == 1
    line = error_line(capsys)
    assert f"{run / 'state.pt'}: weights do not fit the architecture" in line, line
    assert "continue it with the --size or --from it started with" in line
