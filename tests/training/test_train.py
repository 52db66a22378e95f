"""The train loop on a tiny network and real drums: it learns, keeps an EMA, and resumes exactly."""

from __future__ import annotations

import pytest
import torch
import yaml

from bridge.engine.unet import DanceDiffusionUNet
from bridge.errors import ConfigError
from bridge.training import data, session
from bridge.training.train import TrainingSettings, fit, open_run, read_losses

RATE = 48000
WINDOW = 512  # the tiny network has attention from its second level: keep that short


@pytest.fixture(scope="module")
def windows(drumkits):
    files = sorted((drumkits / "Audiophob").glob("*.wav"))[:6]
    return data.OneShots.load(files, RATE, WINDOW).windows


def assert_continued_exactly(straight, resumed):
    """A run stopped and continued ends with the weights of one that ran straight through."""
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)


def assert_differs_from_a_plain_run(run, tmp_path, config, windows):
    """The settings under test change training: a run without them has other losses (the test can fail)."""
    plain = open_run(tmp_path / "plain", settings_for(config, 4))
    fit(plain, windows)
    assert [loss for _, loss, _ in read_losses(plain.dir)] != [loss for _, loss, _ in read_losses(run.dir)]


def settings_for(config, steps, **overrides):
    options = dict(data=["drums"], architecture=config.to_dict(), sample_rate=RATE, window=WINDOW, steps=steps,
                   batch_size=2, lr=1e-3, warmup=1, save_every=2, seed=0)
    options.update(overrides)
    return TrainingSettings(**options)


def test_training_lowers_the_loss_and_moves_the_ema(tmp_path, tiny_config, windows):
    run = open_run(tmp_path / "run", settings_for(tiny_config, 16, batch_size=6))
    start = {k: v.clone() for k, v in run.ema.state_dict().items()}
    fit(run, windows[:6])
    losses = [loss for _, loss, _ in read_losses(run.dir)]
    assert len(losses) == 16 and run.step == 16
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4
    moved = [k for k, v in run.ema.state_dict().items() if not torch.equal(v, start[k])]
    assert moved, "EMA weights never changed"
    differs = any(not torch.equal(a, b) for a, b in zip(run.ema.parameters(), run.model.parameters()))
    assert differs, "the EMA is a copy of the live weights, not an average"
    assert not any(p.requires_grad for p in run.ema.parameters())


def test_a_fine_tunes_ema_starts_at_the_base_weights_with_the_full_decay(tmp_path, tiny_config, windows):
    base = DanceDiffusionUNet(tiny_config)
    start = {k: v.clone() for k, v in base.state_dict().items()}
    run = open_run(tmp_path / "run", settings_for(tiny_config, 1, base_model="base.safetensors"), base)
    fit(run, windows[:2])

    def distance(net):
        return sum(float((v - start[k]).norm()) for k, v in net.state_dict().items() if v.is_floating_point())

    # One step at decay 0.995 moves the EMA 0.5 % of the way; the warm-up from scratch (0.1) would move it 90 %
    assert 0 < distance(run.ema) < 0.01 * distance(run.model)


def test_an_interrupted_run_continues_exactly(tmp_path, tiny_config, windows):
    straight = open_run(tmp_path / "straight", settings_for(tiny_config, 4))
    fit(straight, windows)

    first = open_run(tmp_path / "resumed", settings_for(tiny_config, 4))
    calls = iter([False, False, True])
    with pytest.raises(KeyboardInterrupt):
        fit(first, windows, on_step=lambda run, loss: next(calls) and (_ for _ in ()).throw(KeyboardInterrupt))
    assert first.step == 3 and (tmp_path / "resumed" / "state.pt").exists()
    del first

    resumed = open_run(tmp_path / "resumed", settings_for(tiny_config, 4), model=DanceDiffusionUNet(tiny_config))
    assert resumed.step == 3
    fit(resumed, windows)
    assert resumed.step == 4
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)
    for a, b in zip(straight.ema.state_dict().values(), resumed.ema.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)
    assert [s for s, _, _ in read_losses(tmp_path / "resumed")] == [1, 2, 3, 4]


def test_a_run_folder_refuses_other_settings(tmp_path, tiny_config):
    open_run(tmp_path / "run", settings_for(tiny_config, 4))
    with pytest.raises(ConfigError, match="window"):
        open_run(tmp_path / "run", settings_for(tiny_config, 4, window=4096))
    longer = open_run(tmp_path / "run", settings_for(tiny_config, 10))
    assert longer.settings.steps == 10  # the one setting a continued run may change


def test_a_run_with_onset_and_pitch_shifts_continues_exactly(tmp_path, tiny_config, windows):
    augmented = dict(onset_shift_ms=5.0, pitch_semitones=1.0)
    straight = open_run(tmp_path / "straight", settings_for(tiny_config, 4, **augmented))
    fit(straight, windows)
    first = open_run(tmp_path / "resumed", settings_for(tiny_config, 2, **augmented))
    fit(first, windows)
    resumed = open_run(tmp_path / "resumed", settings_for(tiny_config, 4, **augmented),
                       model=DanceDiffusionUNet(tiny_config))
    fit(resumed, windows)
    assert_continued_exactly(straight, resumed)
    assert_differs_from_a_plain_run(straight, tmp_path, tiny_config, windows)


def test_an_old_run_yaml_keeps_its_augmentation_and_new_runs_get_the_full_one(tmp_path, tiny_config):
    run = open_run(tmp_path / "old", settings_for(tiny_config, 4))
    path = run.dir / "run.yaml"
    old = yaml.safe_load(path.read_text())
    assert old["onset_shift_ms"] == 0 and old["pitch_semitones"] == 0  # recorded in run.yaml
    del old["onset_shift_ms"], old["pitch_semitones"]  # as a run.yaml written before they existed
    path.write_text(yaml.safe_dump(old, sort_keys=False))
    continued = open_run(tmp_path / "old", settings_for(tiny_config, 8, onset_shift_ms=5.0, pitch_semitones=1.0))
    assert (continued.settings.onset_shift_ms, continued.settings.pitch_semitones) == (0.0, 0.0)
    settings, _ = session.prepare(["drums"], size="tiny", steps=10)
    assert (settings.onset_shift_ms, settings.pitch_semitones) == (data.ONSET_SHIFT_MS, data.PITCH_SEMITONES)
    settings, _ = session.prepare(["drums"], size="tiny", steps=10, onset_shift_ms=0.0, pitch_semitones=0.0)
    assert (settings.onset_shift_ms, settings.pitch_semitones) == (0.0, 0.0)


@pytest.mark.parametrize("option, value", [("held_out", 10), ("held_out", 1.0), ("demo_count", -1),
                                           ("demo_every", -1), ("lr", float("nan")), ("batch_size", 0)])
def test_prepare_refuses_a_value_a_run_would_keep(option, value):
    with pytest.raises(ConfigError, match=f"{option.replace('_', '-')} must be .*, got {value}"):
        session.prepare(["drums"], size="tiny", steps=10, **{option: value})


def test_a_stored_value_out_of_range_is_named_before_anything_is_written(tmp_path, tiny_config):
    open_run(tmp_path / "run", settings_for(tiny_config, 4))
    path = tmp_path / "run" / "run.yaml"
    stored = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**stored, "held_out": 1.5}, sort_keys=False))  # as an older version wrote it
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"run.yaml: held_out is 1.5, but must be a fraction in \[0, 1\).*"
                                          "this run has not trained yet: delete that file"):
        open_run(tmp_path / "run", settings_for(tiny_config, 4))
    assert path.read_bytes() == before


def test_a_negative_seed_as_older_runs_stored_still_trains(tmp_path, tiny_config, windows):
    """Review s41 diff #7: --seed took any int before run.yaml's limits; a stored -1 was then refused, and changing
    it would change the batches (a resume no longer exact)."""
    settings = settings_for(tiny_config, 2)
    settings.seed = -1
    fit(open_run(tmp_path / "run", settings), windows)
    assert open_run(tmp_path / "run", settings_for(tiny_config, 2)).step == 2


@pytest.mark.parametrize("key, value, allowed", [("seed", "x", "a whole number between -2\\^42 and 2\\^42"),
                                                ("seed", 10**16, "a whole number between -2\\^42 and 2\\^42"),
                                                 ("weight_decay", "abc", "a number >= 0"),
                                                 ("warmup", -5, "a whole number of steps >= 0"),
                                                 ("grad_clip", 0, "a positive number")])
def test_every_stored_setting_a_step_uses_is_checked_in_run_yaml(tmp_path, tiny_config, key, value, allowed):
    """run.yaml is edited by hand (a producer's fix): a bad value is named there, not an unexpected error."""
    open_run(tmp_path / "run", settings_for(tiny_config, 4))
    path = tmp_path / "run" / "run.yaml"
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), key: value}, sort_keys=False))
    with pytest.raises(ConfigError, match=f"run.yaml: {key} is {value!r}, but must be {allowed}"):
        open_run(tmp_path / "run", settings_for(tiny_config, 4))
