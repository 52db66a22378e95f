"""The guide registry (entry points: built-ins and a user's plug-in found the same way), requests and recipes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import torch

from bridge.engine.guidance import LossGuide
from bridge.engine.guides import grammar, recipes, registry
from bridge.engine.guides.builtin import GuideContext
from bridge.engine.guides.registry import GuideRequest, parse_request
from bridge.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
PLUGIN = '''
"""A producer's own guide, shared as a package."""
import torch
from bridge.engine.guides.builtin import Measured


def loudness(audio, rate):
    return 10 * torch.log10(audio.pow(2).mean(dim=(1, 2)) + 1e-12)


def _decibels(text, context):
    return float(text)


LOUDNESS = Measured("loudness", "dBFS", "louder", "dBFS: -12", loudness, _decibels)
'''


def make_package(root: Path, name: str, source: str, entries: dict[str, str]) -> Path:
    """An installed package as pip leaves one: the module and a .dist-info with its entry points."""
    (root / f"{name}.py").write_text(textwrap.dedent(source))
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entries.items())
    (info / "entry_points.txt").write_text(f"[{registry.GROUP}]\n{lines}")
    return root


def test_the_built_ins_are_found_through_the_entry_points_pyproject_declares():
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"][registry.GROUP]
    found = registry.available()
    assert set(declared) == {"brightness", "decay", "punch", "tuning", "width", "match", "class"}
    assert set(declared) <= set(found), "reinstall (pip install -e .) so the package metadata has the entry points"
    for name, kind in found.items():
        assert kind.name == name and kind.unit and kind.summary and kind.target_help


def test_a_user_s_plug_in_is_found_the_same_way_and_a_broken_one_is_left_out(tmp_path, monkeypatch, caplog):
    make_package(tmp_path, "my_guides", PLUGIN, {"loudness": "my_guides:LOUDNESS", "brightness": "my_guides:LOUDNESS"})
    make_package(tmp_path, "broken_guides", "raise RuntimeError('not today')", {"broken": "broken_guides:NOTHING"})
    monkeypatch.syspath_prepend(str(tmp_path))
    found = registry.available()
    assert "loudness" in found and "broken" not in found
    assert found["brightness"].unit == "Hz"  # a plug-in cannot take a built-in's name
    assert "cannot be loaded: RuntimeError: not today" in caplog.text
    assert "guide 'brightness' is taken; my_guides:LOUDNESS is ignored" in caplog.text
    quiet = torch.full((1, 2, 4800), 0.01)
    guide = registry.build([parse_request("loudness=1")], GuideContext(48000))[0]
    assert isinstance(guide, LossGuide)
    assert float(guide(quiet, 0.5).abs().mean()) > 0.01  # louder


@pytest.mark.parametrize("text, request_", [
    ("brightness=1", GuideRequest("brightness", 1.0)),
    ("Decay=-0.5", GuideRequest("decay", -0.5)),
    ("tuning=1:C#2", GuideRequest("tuning", 1.0, "C#2")),
    ("tuning=1:-3", GuideRequest("tuning", 1.0, "-3")),
    ("match=2:/tmp/a b:c.wav@0.2-0.9", GuideRequest("match", 2.0, "/tmp/a b:c.wav", 0.2, 0.9)),
    ("width=+0.5@0-0.5", GuideRequest("width", 0.5, None, 0.0, 0.5)),
])
def test_requests_are_read_and_written_back(text, request_):
    assert parse_request(text) == request_
    assert parse_request(request_.text) == request_
    # the readers without torch (`dd-bridge send`'s file targets, a pack's weight-0 guides) read the same words
    assert grammar.weight_of(text) == request_.weight
    span = grammar.target_span(text)
    assert (text[span[0]:span[1]] if span else None) == request_.target


def test_the_words_are_read_without_torch():
    """`dd-bridge send` reads guides and recipes by this one rule and starts without torch (REAPER runs it at
    every key press)."""
    code = "import sys; import bridge.engine.guides.grammar; sys.exit(99 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    assert grammar.weight_of("brightness") is None and grammar.target_span("brightness=1") is None
    assert registry.parse_request is grammar.parse_request and recipes.names_a_file is grammar.names_a_file


@pytest.mark.parametrize("text, words", [("brightness", "NAME=WEIGHT"), ("=1", "NAME=WEIGHT"),
                                         ("brightness=loud", "NAME=WEIGHT"), ("brightness=11", "-10..10"),
                                         ("decay=1@0.8-0.2", "range"), ("decay=1@0-1.5", "range")])
def test_bad_requests_are_one_line_errors(text, words):
    with pytest.raises(ConfigError, match=words) as error:
        parse_request(text)
    assert "\n" not in str(error.value)


def test_an_unknown_guide_names_the_known_ones():
    with pytest.raises(ConfigError, match="no guide named 'sparkle': brightness, class, decay, match"):
        registry.build([parse_request("sparkle=1")], GuideContext(48000))


def test_modes():
    assert registry.resolve_mode("auto", "cuda", "torch") == "full"
    assert registry.resolve_mode("auto", "cuda", "onnx") == "cheap"
    assert registry.resolve_mode("auto", "cpu", "torch") == "cheap"
    assert registry.resolve_mode("full", "cpu", "torch") == "full"
    with pytest.raises(ConfigError, match="guide mode"):
        registry.resolve_mode("fast", "cpu", "torch")


def test_recipes_load_by_name_or_file(tmp_path):
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "tight-and-bright.yaml").write_text(textwrap.dedent("""
        name: tight-and-bright
        description: shorter and brighter
        guides:
          - brightness=1
          - {guide: decay, weight: 1, target: 0.3s, range: [0.2, 1.0]}
    """))
    (folder / "dark.yml").write_text("guides: [brightness=-1]\n")
    expected = (GuideRequest("brightness", 1.0), GuideRequest("decay", 1.0, "0.3s", 0.2, 1.0))
    assert recipes.load_recipe("tight-and-bright", folder).guides == expected
    assert recipes.load_recipe(str(folder / "tight-and-bright.yaml"), tmp_path / "elsewhere").guides == expected
    assert recipes.load_recipe("dark", folder) == recipes.Recipe("dark", (GuideRequest("brightness", -1.0),))
    assert recipes.recipe_names(folder) == ["dark", "tight-and-bright"]


def test_the_recipes_that_ship_load_by_name_and_a_file_of_the_same_name_is_used_instead(tmp_path):
    """A built-in recipe is found by name wherever the recipes folder is; a producer's own file of that name (an
    edit of it) wins; each built-in parses and names only guides that exist."""
    assert recipes.load_recipe("dark-kick", tmp_path / "none") == recipes.Recipe(
        "dark-kick", (GuideRequest("class", 1.0, "kick"), GuideRequest("brightness", -0.5, None)),
        recipes.BUILT_IN["dark-kick"]["description"])
    (tmp_path / "dark-kick.yaml").write_text("guides: [class=1:kick, brightness=-1]\n")
    assert recipes.load_recipe("dark-kick", tmp_path).guides[1] == GuideRequest("brightness", -1.0, None)
    for name in recipes.BUILT_IN:
        recipe = recipes.built_in(name)
        registry.check(list(recipe.guides))
        assert recipe.name == name and recipe.description


@pytest.mark.parametrize("content, words", [
    ("a: &x 1\nb: *x\n", "not valid YAML"),
    ("guides: []\n", "non-empty list 'guides'"),
    ("guides: [brightness=1]\ncolour: red\n", "unknown keys colour"),
    ("guides: [brightness=1]\ndescription: [dark]\n", "description must be text"),
    ("guides: [{guide: decay, weight: loud}]\n", "weight must be a number"),
    ("guides: [{guide: decay, weight: 1, range: [0.5]}]\n", "range must be"),
    ("guides: [{guide: decay, weight: 1, extra: 2}]\n", "each guide is"),
    ("guides: [brightness=99]\n", "-10..10"),
])
def test_a_bad_recipe_is_one_line_naming_the_file(tmp_path, content, words):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=words) as error:
        recipes.load_recipe(str(path), tmp_path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_missing_recipe_names_the_folder_and_what_is_there(tmp_path):
    (tmp_path / "dark.yaml").write_text("guides: [brightness=-1]\n")
    with pytest.raises(ConfigError, match=r"no recipe named 'bright' in .* \(there: dark; built in: dark-kick, ringing-tom\)"):
        recipes.load_recipe("bright", tmp_path)
    with pytest.raises(ConfigError, match="no such file"):
        recipes.load_recipe(str(tmp_path / "gone.yaml"), tmp_path)
    with pytest.raises(ConfigError, match="a recipe is a name"):
        recipes.load_recipe("../dark", tmp_path)


def test_the_entry_points_are_read_once_per_path(tmp_path, monkeypatch):
    """Reading every installed package's metadata costs tens of ms; the service checks the guides at every turn of a
    guide knob (review s39-3 #2). Read once, again when sys.path changes (a plug-in's folder added) or on reload()."""
    calls = []
    real = registry.entry_points
    monkeypatch.setattr(registry, "entry_points", lambda **kw: calls.append(kw) or real(**kw))
    registry.reload()
    first = registry.available()
    read = len(calls)
    assert read and registry.available() == first and len(calls) == read
    make_package(tmp_path, "my_guides", PLUGIN, {"loudness": "my_guides:LOUDNESS"})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "loudness" in registry.available() and len(calls) > read
    registry.reload()
    registry.available()
    assert len(calls) > read + 1
