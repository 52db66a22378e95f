"""Recipes by name and by file through the service over real UDP on loopback, where a producer's folders and
controllers make them awkward: a service started in a samples folder whose sub-folders are named like recipes, a
recipe shared with its clip beside it, a name too long for a file, a name ending in .yaml, a name of digits sent
as a float by Pure Data (review s42: M1, M2, L1, L2, L3)."""

from __future__ import annotations

import shutil

import pytest

from tests.support.service import running_service, service_config


@pytest.fixture
def config_home(tmp_path, monkeypatch):
    """The user's config folder (and so the recipes folder beside config.yaml) inside the test's own folder."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "dd-bridge"


def refused(svc, *request) -> str:
    reply = svc.ask(*request)
    assert reply.address == "/dd/error" and "\n" not in reply.args[1], (request, reply.args)
    return reply.args[1]


def test_recipes_by_name_and_file_from_a_samples_folder(tmp_path, renderer, drum, config_home, monkeypatch):
    recipes = config_home / "recipes"
    recipes.mkdir(parents=True)
    (recipes / "tight.yaml").write_text("guides: [decay=-1]\n")
    (recipes / "ref.flac").write_bytes(drum.read_bytes())
    (recipes / "like-ref.yaml").write_text("guides: [match=1:ref.flac]\n")
    shared = tmp_path / "shared"
    shared.mkdir()
    shutil.copy(drum, shared / "clip.flac")
    (shared / "like-clip.yaml").write_text("guides: [match=0.5:clip.flac]\n")
    samples = tmp_path / "samples-here"
    for name in ("ringing-tom", "tight"):
        (samples / name).mkdir(parents=True)  # a samples folder's sub-folders, named as sounds are
    (samples / "clip.flac").write_bytes(drum.read_bytes())
    monkeypatch.chdir(samples)
    with running_service(service_config(tmp_path, render={"prefetch": 0}), renderer) as svc:
        # M1: the service's working folder hides no recipe
        assert svc.ask("/dd/set", "recipe", "ringing-tom").args == ("set", "recipe", "ringing-tom")
        assert svc.status()["guides"] == ["class=1:tom", "decay=1:1.5s"]
        assert svc.ask("/dd/set", "recipe", "tight").args == ("set", "recipe", "tight")
        assert svc.status()["guides"] == ["decay=-1"]
        # M2: a recipe's relative clip is the one beside it, by name or by the recipe's full path (and not the
        # working folder's clip.flac)
        assert svc.ask("/dd/set", "recipe", "like-ref").address == "/dd/ack"
        assert svc.status()["guides"] == [f"match=1:{recipes / 'ref.flac'}"]
        assert svc.ask("/dd/set", "recipe", str(shared / "like-clip.yaml")).address == "/dd/ack"
        assert svc.status()["guides"] == [f"match=0.5:{shared / 'clip.flac'}"]
        # L3: Pure Data's 808.0 is the recipe 808, set and saved
        assert svc.ask("/dd/save_recipe", 909.0).args == ("save_recipe", "909", str(recipes / "909.yaml"))
        assert svc.ask("/dd/set", "recipe", 909.0).args == ("set", "recipe", "909")
        assert svc.status()["guides"] == [f"match=0.5:{shared / 'clip.flac'}"]
        # L1, L2: one line a producer reads, not "internal error"
        long = "鼓" * 90
        for request in (("/dd/set", "recipe", long), ("/dd/save_recipe", long)):
            assert "too long for a file name (270 bytes, at most 250" in refused(svc, *request)
        assert "name has no .yaml (the recipe bright2 is saved as bright2.yaml)" in \
            refused(svc, "/dd/save_recipe", "bright2.yaml")
    assert sorted(p.name for p in recipes.iterdir()) == ["909.yaml", "like-ref.yaml", "ref.flac", "tight.yaml"]
