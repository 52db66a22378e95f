"""The classifier's training recipe: the room, clip and noise floor `--rough` adds sound as they should, an
ensemble is one module averaged in logits that saves and loads as a single classifier does, and a card asking
for an absurd ensemble is refused in one line."""

from __future__ import annotations

import pytest
import torch

from bridge.engine.classifier import DrumClassifier, Ensemble, Features, load_classifier, save_classifier
from bridge.errors import BridgeError, CheckpointError
from bridge.training import classify, labels
from bridge.training.class_recipe import MAX_MEMBERS, Recipe
from tests.engine.test_guides import one_shot

pytestmark = pytest.mark.usefixtures("one_thread")
RATE = 48000


def test_rough_sounds_ring_in_a_room_over_a_noise_floor_and_keep_their_onset(drumkits):
    click = torch.zeros(64, 1, 32768)
    click[:, :, 1000] = 1.0  # a click: anything after it is the room, anything before it the noise floor
    out = classify.roughen(click.clone(), torch.Generator().manual_seed(0), RATE)
    assert out.shape == click.shape and torch.isfinite(out).all()
    peak = out.abs().amax(-1)
    before_db = 10 * torch.log10(out[..., :1000].pow(2).mean(-1) / peak ** 2)
    assert (before_db < -45 + 1).all() and (before_db > -80 - 3).all(), before_db  # 45-80 dB under the peak
    tail = out[..., 1001:1001 + RATE // 20].pow(2).mean()  # the first 50 ms after the click: the room
    end = out[..., -RATE // 20:].pow(2).mean()  # 0.63 s on: the longest room (0.6 s to -60 dB) has died away
    assert tail > 3 * end, (tail, end)
    assert (out[..., 1000].abs() == peak).float().mean() > 0.9  # the hit stays the loudest moment
    kick = one_shot(drumkits, "Millo-Drums_v.1/bd1.flac")[None].mean(1, keepdim=True)
    again = classify.roughen(kick.clone(), torch.Generator().manual_seed(1), RATE)
    assert torch.argmax(again.abs()) == pytest.approx(int(torch.argmax(kick.abs())), abs=48)


def test_an_ensemble_averages_its_members_logits_and_loads_as_one_classifier(tmp_path, drumkits):
    torch.manual_seed(0)
    features = Features(window=8192, n_mels=32)
    members = [DrumClassifier(labels.CLASSES, features, (4, 8)).eval() for _ in range(3)]
    ensemble = Ensemble(members).eval()
    sound = one_shot(drumkits, "Millo-Drums_v.1/bd1.flac")[None]
    expected = torch.stack([member(sound) for member in members]).mean(0)
    assert torch.allclose(ensemble(sound), expected, atol=1e-6)
    save_classifier(ensemble, tmp_path / "three")
    loaded, card = load_classifier(tmp_path / "three.safetensors")
    assert isinstance(loaded, Ensemble) and card["architecture"] == {"channels": [4, 8], "members": 3}
    assert loaded.features == features and loaded.classes == labels.CLASSES
    assert torch.allclose(loaded(sound), expected, atol=1e-6)
    audio = sound.clone().requires_grad_(True)  # a guide takes its gradient
    loaded(audio)[0, 0].backward()
    assert audio.grad.abs().sum() > 0


def test_a_card_asking_for_too_many_members_is_refused_in_one_line(tmp_path):
    save_classifier(Ensemble([DrumClassifier(labels.CLASSES, Features(window=8192), (4,)) for _ in range(2)]),
                    tmp_path / "two")
    card = tmp_path / "two.yaml"
    card.write_text(card.read_text().replace("members: 2", f"members: {MAX_MEMBERS + 1}"))
    with pytest.raises(CheckpointError, match=f"members must be 1 to {MAX_MEMBERS}") as error:
        load_classifier(tmp_path / "two.safetensors")
    assert "\n" not in str(error.value)


def test_a_recipe_with_an_unknown_augment_or_no_members_is_refused():
    with pytest.raises(BridgeError, match="augment must be one of blur, model, none"):
        Recipe(augment="wobble")
    with pytest.raises(BridgeError, match="members must be 1 to"):
        Recipe(members=0)


def test_members_train_from_their_own_seeds(drumkits):
    items = labels.labelled([drumkits / "Millo-Drums_v.1"])
    data = classify.ClassSet.load(items, Features(window=8192))
    recipe = Recipe(steps=2, rounds=1, channels=(4, 8), n_mels=32, members=2, rough=0.5)
    model = classify.train(data, list(range(len(items))), recipe, seed=3)
    assert isinstance(model, Ensemble) and model.features.n_mels == 32 and not model.training
    one, two = model.members
    assert not torch.equal(one.head.weight, two.head.weight)
    alone = classify.train(data, list(range(len(items))), Recipe(steps=2, rounds=1, channels=(4, 8), n_mels=32,
                                                                 rough=0.5), seed=4)
    assert torch.equal(alone.head.weight, two.head.weight)  # member k is the run from seed + k
