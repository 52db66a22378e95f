"""Model cards: YAML round trip with unknown fields kept, one-line validation errors, and the registry."""

from __future__ import annotations

import logging

import pytest

from bridge import constants
from bridge.engine.modelcard import ModelCard, find_model, list_models, read_card, user_models_dir, write_card
from bridge.engine.unet import UNetConfig
from bridge.errors import CheckpointError

CARD_TEXT = """\
name: kit-808
sample_rate: 44100
window: 65536
architecture:
  channels: [32, 32, 64, 64]
  n_attn_layers: 2
  io_channels: 2
provenance: fine-tuned from gwf-440k on my 808 kit
licence: CC-BY-4.0
training:
  steps: 12000
  dataset: {files: 412, hours: 0.7}
notes: [crunchy, short tails]
"""


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder = user_models_dir()
    assert folder == tmp_path / "data" / "dd-bridge" / "models"
    folder.mkdir(parents=True)
    return folder


def test_round_trip_keeps_every_field(tmp_path):
    source = tmp_path / "kit-808.yaml"
    source.write_text(CARD_TEXT)
    card = read_card(source)
    assert card.name == "kit-808" and card.sample_rate == 44100 and card.window == 65536
    assert card.architecture == UNetConfig(channels=(32, 32, 64, 64), n_attn_layers=2)
    assert card.licence == "CC-BY-4.0"
    assert card.extra == {"training": {"steps": 12000, "dataset": {"files": 412, "hours": 0.7}},
                          "notes": ["crunchy", "short tails"]}
    assert card.weights_path == source.with_suffix(".safetensors")

    copy = write_card(card, tmp_path / "copy.yaml")
    again = read_card(copy)
    assert again == card
    assert again.to_dict() == card.to_dict()


def test_write_card_never_replaces_a_file(tmp_path):
    card = ModelCard(name="m", sample_rate=48000, window=8192, architecture=UNetConfig(channels=(32, 32, 64, 64)))
    target = tmp_path / "m.yaml"
    target.write_text("precious")
    with pytest.raises(CheckpointError, match="already exists"):
        write_card(card, target)
    assert target.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["m.yaml"]  # no temporary left behind


@pytest.mark.parametrize("change, fragment", [
    (("sample_rate: 44100", "sample_rate: fast"), "sample_rate must be an integer"),
    (("sample_rate: 44100", "sample_rate: 100"), "sample_rate must be an integer in [1000, 384000]"),
    (("window: 65536", "window: 1001"), "window must be a multiple of 8 samples, at least 24"),
    (("window: 65536", "window: 16"), "at least 24"),
    (("window: 65536", "window: true"), "window must be a multiple"),
    (("name: kit-808", "name: ../../etc"), "name must be"),
    (("name: kit-808\n", ""), "missing field(s) name"),
    (("  io_channels: 2", "  io_channels: 2\n  dropout: 0.1"), "unknown architecture keys: dropout"),
    (("channels: [32, 32, 64, 64]", "channels: [30, 30, 30, 30]"), "divisible by 32"),
    (("licence: CC-BY-4.0", "licence: [a, b]"), "licence must be text"),
    (("window: 65536", "window: [65536"), "not valid YAML at line"),
])
def test_invalid_cards_fail_with_one_line(tmp_path, change, fragment):
    old, new = change
    assert old in CARD_TEXT
    path = tmp_path / "bad.yaml"
    path.write_text(CARD_TEXT.replace(old, new))
    with pytest.raises(CheckpointError) as excinfo:
        read_card(path)
    message = str(excinfo.value)
    assert "\n" not in message and "bad.yaml" in message and fragment in message, message


def test_a_card_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(CheckpointError, match="expected a mapping"):
        read_card(path)


def test_yaml_tags_cannot_run_code(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text(CARD_TEXT + "hook: !!python/object/apply:os.system ['touch " + str(tmp_path / "pwned") + "']\n")
    with pytest.raises(CheckpointError, match="not valid YAML"):
        read_card(path)
    assert not (tmp_path / "pwned").exists()


def test_registry_finds_names_in_the_user_folder(user_folder):
    (user_folder / "kit-808.yaml").write_text(CARD_TEXT)
    (user_folder / "broken.yaml").write_text("name: [")
    assert find_model("kit-808") == user_folder / "kit-808.yaml"
    names = [card.name for card in list_models()]
    assert "kit-808" in names and "broken" not in names
    assert constants.MODELS_DIR.resolve() != user_folder


def test_registry_skips_a_broken_card_with_a_warning(user_folder, caplog):
    (user_folder / "broken.yaml").write_text("name: [")
    with caplog.at_level(logging.WARNING):
        list_models()
    assert any("broken.yaml" in record.getMessage() for record in caplog.records)


def test_find_model_passes_paths_through_and_names_misses(user_folder, tmp_path):
    existing = tmp_path / "anything.ckpt"
    existing.write_bytes(b"x")
    assert find_model(existing) == existing
    assert find_model(str(existing)) == existing
    with pytest.raises(CheckpointError, match="no such file"):
        find_model(tmp_path / "gone.ckpt")
    with pytest.raises(CheckpointError) as excinfo:
        find_model("kit-909")
    message = str(excinfo.value)
    assert "kit-909" in message and str(user_folder) in message and str(constants.MODELS_DIR) in message


def test_the_bundled_model_s_card_credits_each_training_set_once_and_keeps_its_history():
    """What a producer, or a sample pack's credits (bridge/pack), read of the shipped weights: each training folder
    credited once, under a licence that lets weights ship (no copyleft, no share-alike, no non-commercial), with
    the held-out counts the run wrote; and the earlier weights' run and figures as they were, not the new ones
    copied (a card written twice from its own output once credited the GM set three times and called its own run
    the previous one)."""
    card = read_card(constants.MODELS_DIR / f"{constants.DEFAULT_MODEL}.yaml").extra
    training, credits = card["training"], card["training_data"]
    kits = [entry["kit"] for entry in credits]
    assert len(kits) == len(set(kits)) == len(training["data"]), kits
    for entry in credits:
        folder = entry.get("made_at") or next(path for path in training["data"] if path.endswith("/" + entry["kit"]))
        assert folder in training["data"]
        held = sum(path.startswith(folder + "/") for path in training["held_out_files"])
        assert entry["held_out"] == held and entry["trained_on"] == entry["files"] - held, entry["kit"]
        assert not any(word in entry["licence"].upper() for word in ("GPL", "-SA", "-NC", "SHARE")), entry
    for now, before in (("training", "previous_training"), ("evaluation", "earlier_evaluation"),
                        ("memorization", "earlier_memorization")):
        if before in card:
            assert card[before] != card[now], before
    if "previous_training" in card:
        assert card["previous_training"]["steps"] != training["steps"]
