"""`--recipe` and `dd-bridge save-recipe` as a producer runs them, in folders as producers have them: a render whose
output folder is named after its recipe, a recipe shared with its clip beside it, names a file system or the
lookup cannot take (review s42: M1, M2, L1, L2; M3, a target written +2, in tests/engine/test_recipe_files.py).
Subprocesses, real one-shots, a model file."""

from __future__ import annotations

import shutil

from bridge.engine.audio import read_metadata
from tests.cli.test_guides_cli import dd_bridge
from tests.cli.test_render_cli import FAST, written


def test_a_recipe_by_name_renders_beside_a_folder_of_its_name_matching_the_clip_beside_it(tmp_path, tiny_model_path,
                                                                                          drumkits):
    """Run from a folder that already holds `like-ref/` (the last render's --out) and a `ref.flac` of its own, the
    recipe `like-ref` is still the recipes folder's and its `match=1:ref.flac` the clip beside it, recorded by its
    full path for the recreating command."""
    kick, snare = drumkits / "VariBreaks/VP Kick 1.flac", drumkits / "VariBreaks/VP Snare 1.flac"
    recipes = tmp_path / "config" / "dd-bridge" / "recipes"
    recipes.mkdir(parents=True)
    shutil.copy(snare, recipes / "ref.flac")
    (recipes / "like-ref.yaml").write_text(
        "guides:\n  - match=1:ref.flac\n  - {guide: brightness, weight: 1, target: 3000}\n")
    work = tmp_path / "work"
    (work / "like-ref").mkdir(parents=True)
    shutil.copy(kick, work / "ref.flac")  # the same name where it runs: a different clip
    result = dd_bridge("vary", kick, "--model", tiny_model_path, "--count", 1, "--recipe", "like-ref",
                       "--out", "like-ref", *FAST, config=tmp_path / "config", cwd=work)
    rendered = written(result, 1)[0]
    assert rendered.parent == work / "like-ref"
    assert read_metadata(rendered)["guide"] == [f"match=1:{recipes / 'ref.flac'}", "brightness=1:3000"]


def test_save_recipe_names_it_cannot_take_are_one_line_and_save_nothing(tmp_path):
    """`save-recipe bright2.yaml` wrote bright2.yaml.yaml, which `--recipe bright2.yaml` then read as a missing file;
    a name of 90 鼓 (270 bytes) ended in "unexpected error: OSError", saved or asked for."""
    config = tmp_path / "config"
    for args, words in ((["bright2.yaml"], "name has no .yaml (the recipe bright2 is saved as bright2.yaml)"),
                        (["鼓" * 90], "too long for a file name (270 bytes, at most 250")):
        result = dd_bridge("save-recipe", *args, "--guide", "brightness=1", config=config)
        lines = result.stderr.strip().splitlines()
        assert result.returncode != 0 and len(lines) == 1 and words in lines[0], result.stderr
        assert "unexpected" not in lines[0] and not (config / "dd-bridge" / "recipes").exists()
    asked = dd_bridge("generate", "--count", 1, "--recipe", "鼓" * 90, config=config, cwd=tmp_path)
    lines = asked.stderr.strip().splitlines()
    assert asked.returncode != 0 and "too long for a file name" in lines[-1] and "unexpected" not in asked.stderr
    saved = dd_bridge("save-recipe", "bright2", "--guide", "brightness=1", config=config)
    assert saved.returncode == 0 and (config / "dd-bridge" / "recipes" / "bright2.yaml").is_file(), saved.stderr
