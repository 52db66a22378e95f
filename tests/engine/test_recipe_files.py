"""Recipes as files and names on a real disk: a name is only ever a recipe's name, a recipe's relative files are
beside it, a mapping's target is read as written, and a name the file system or the lookup could not take is one
line (review s42: M1, M2, M3, L1, L2, L3)."""

from __future__ import annotations

import shutil

import pytest

from bridge.daemon.settings import as_name
from bridge.engine.guides import recipes, registry
from bridge.engine.guides.registry import GuideRequest, parse_request
from bridge.errors import ConfigError

LONG = "鼓" * 90  # 90 letters, well under the 100 a name may have, but 270 bytes: over a file name's 255


def test_a_name_is_looked_up_as_a_recipe_even_where_the_working_folder_has_one_of_that_name(tmp_path, monkeypatch):
    """An output folder named after its recipe (--out dark-kick), or a sample folder's sub-folder "tight", must not
    hide the recipe: a bare name is never a path; a path is a folder in the word or a .yaml/.yml ending."""
    recipes_folder = tmp_path / "recipes"
    recipes_folder.mkdir()
    (recipes_folder / "tight.yaml").write_text("guides: [decay=-1]\n")
    work = tmp_path / "work"
    (work / "dark-kick").mkdir(parents=True)
    (work / "tight").mkdir()
    (work / "ringing-tom").write_text("guides: [punch=1]\n")  # a file with no ending is not read as a recipe either
    monkeypatch.chdir(work)
    assert recipes.load_recipe("dark-kick", recipes_folder) == recipes.built_in("dark-kick")
    assert recipes.load_recipe("ringing-tom", recipes_folder) == recipes.built_in("ringing-tom")
    assert recipes.load_recipe("tight", recipes_folder).guides == (GuideRequest("decay", -1.0),)
    assert recipes.load_recipe("./ringing-tom", recipes_folder).guides == (GuideRequest("punch", 1.0),)  # a path
    for spec, is_file in (("tight", False), ("dark-kick", False), ("808.v2", False), ("tight.yaml", True),
                          ("x.YML", True), ("./tight", True), ("shared/tight", True), ("~/x", True)):
        assert recipes.names_a_file(spec) is is_file, spec


def test_a_recipe_file_s_relative_clip_and_classifier_are_the_ones_beside_it(tmp_path, monkeypatch, drum_samples):
    """Shared with its clip beside it, a recipe matches that clip from any folder: never another clip of the same
    name where it is used (the render then succeeded with the wrong sound, silently)."""
    shared, elsewhere = tmp_path / "shared", tmp_path / "elsewhere"
    shared.mkdir()
    elsewhere.mkdir()
    shutil.copy(drum_samples["flac"], shared / "ref.flac")
    shutil.copy(drum_samples["flac"], elsewhere / "ref.flac")  # the same name where it is run: not this one
    (shared / "like-ref.yaml").write_text(
        "guides:\n  - match=1:ref.flac@0.5-1\n  - class=1:clips/my.safetensors#kick\n  - class=1:kick\n"
        f"  - {{guide: match, weight: 0.5, target: {elsewhere / 'ref.flac'}}}\n  - tuning=1:A1\n")
    monkeypatch.chdir(elsewhere)
    expected = [f"match=1:{shared / 'ref.flac'}@0.5-1", f"class=1:{shared / 'clips' / 'my.safetensors'}#kick",
                "class=1:kick", f"match=0.5:{elsewhere / 'ref.flac'}", "tuning=1:A1"]  # a name, a full path: as is
    loaded = recipes.load_recipe("../shared/like-ref.yaml", tmp_path / "recipes").guides
    assert [request.text for request in loaded] == expected
    # made absolute again for the recreating command: still the clip beside the recipe
    assert [r.text for r in registry.with_file_targets_resolved(loaded)] == expected
    # by name from the recipes folder: beside the recipe there; through a link, beside the file it links to
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "linked.yaml").symlink_to(shared / "like-ref.yaml")
    (folder / "own.yaml").write_text("guides: [match=1:ref.flac]\n")
    assert recipes.load_recipe("linked", folder).guides == loaded
    assert recipes.load_recipe("own", folder).guides == (GuideRequest("match", 1.0, str(folder / "ref.flac")),)


def test_a_mapping_s_target_means_what_the_guide_form_s_does(tmp_path):
    """YAML reads `target: +2` as the number 2 (MIDI note 2, 9 Hz) where tuning=1:+2 is two semitones up."""
    path = tmp_path / "up.yaml"
    path.write_text("guides:\n"
                    "  - {guide: tuning, weight: 1, target: +2}\n"
                    "  - {guide: tuning, weight: 1, target: -3}\n"
                    "  - guide: tuning\n    weight: 1\n    target: 2\n"
                    "  - {guide: tuning, weight: 1, target: '+2'}\n"
                    "  - {guide: brightness, weight: 1, target: 3000}\n"
                    "  - {guide: decay, weight: 1, target: 0.30, range: [0.2, 1]}\n"
                    "  - {guide: brightness, weight: 1, target: null}\n"
                    "  - {guide: decay, weight: 1, target: .5}\n"  # YAML's numbers as before (review s42 diff L2)
                    "  - {guide: brightness, weight: 1, target: 1_000}\n")
    got = recipes.load_recipe(str(path), tmp_path).guides
    assert got == tuple(map(parse_request, ("tuning=1:+2", "tuning=1:-3", "tuning=1:2", "tuning=1:+2",
                                            "brightness=1:3000", "decay=1:0.3@0.2-1", "brightness=1",
                                            "decay=1:0.5", "brightness=1:1000")))
    path.write_text("guides:\n  - {guide: tuning, weight: 1, target: [1, 2]}\n")
    with pytest.raises(ConfigError, match="target must be one value") as error:
        recipes.load_recipe(str(path), tmp_path)
    assert str(path) in str(error.value)


def test_a_name_too_long_for_a_file_name_is_one_line_when_saved_or_asked_for(tmp_path):
    guides = [parse_request("brightness=1")]
    for attempt in (lambda: recipes.save_recipe(LONG, guides, tmp_path), lambda: recipes.load_recipe(LONG, tmp_path)):
        with pytest.raises(ConfigError, match=r"too long for a file name \(270 bytes, at most 250") as error:
            attempt()
        assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []
    fits = "鼓" * 83  # 249 bytes: saved, listed and read back
    path = recipes.save_recipe(fits, guides, tmp_path)
    assert recipes.load_recipe(fits, tmp_path).guides == tuple(guides) and fits in recipes.names(tmp_path)
    assert path.name == f"{fits}.yaml"


def test_a_name_ending_in_yaml_is_refused_when_saved_and_not_listed_if_one_is_there(tmp_path):
    """`save-recipe bright2.yaml` wrote bright2.yaml.yaml, listed as bright2.yaml, which --recipe reads as a file."""
    guides = [parse_request("brightness=1")]
    for name in ("bright2.yaml", "bright2.YML"):
        with pytest.raises(ConfigError, match=r"name has no \.(yaml|YML) \(the recipe bright2 is saved as "
                                              r"bright2\.yaml\)"):
            recipes.save_recipe(name, guides, tmp_path)
    assert list(tmp_path.iterdir()) == []
    recipes.save_recipe("bright2", guides, tmp_path)
    (tmp_path / "old.yaml.yaml").write_text("guides: [punch=1]\n")  # what the old save wrote: reached as a file
    assert recipes.recipe_names(tmp_path) == ["bright2"] and "old.yaml" not in recipes.names(tmp_path)
    with pytest.raises(ConfigError, match=r"bright2\.yaml: no such file \(the recipe named 'bright2' is asked for "
                                          r"by its name, without \.yaml\)"):
        recipes.load_recipe("bright2.yaml", tmp_path)


def test_a_name_of_digits_sent_as_a_float_is_its_digits():
    """Pure Data (and Max's float boxes) send every number as a float: the recipe 808 arrives as 808.0."""
    assert [as_name("recipe", value) for value in (808, 808.0, 909.0, 1.5, "808.0")] == \
        ["808", "808", "909", "1.5", "808.0"]
