"""`--guide`, `--recipe` and `dd-bridge guides` as a user runs them: subprocesses, real one-shots, a model file."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bridge.constants import NEW_SOUND_SAMPLER
from bridge.engine.audio import read_audio, read_metadata
from tests.cli.test_render_cli import FAST, REPO, written


def dd_bridge(*args, config: Path, cwd: Path | None = None, threads: int = 1) -> subprocess.CompletedProcess:
    """The command with its user config folder (and so its recipes folder) under ``config``; ``threads``: torch's
    default count in it."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS=str(threads), XDG_CONFIG_HOME=str(config))
    return subprocess.run([sys.executable, "-m", "bridge", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def one_line_error(result: subprocess.CompletedProcess, words: str) -> None:
    """Refused with one line saying why (after argparse's usage, for a value it cannot read)."""
    assert result.returncode != 0 and result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert words in lines[-1] and lines[-1].startswith("dd-bridge vary: error:"), result.stderr
    assert len(lines) == 1 or lines[0].startswith("usage:"), result.stderr


def test_guides_lists_every_guide_with_its_unit_and_the_recipes(tmp_path):
    (tmp_path / "dd-bridge" / "recipes").mkdir(parents=True)
    (tmp_path / "dd-bridge" / "recipes" / "dark.yaml").write_text("guides: [brightness=-1]\n")
    result = dd_bridge("guides", config=tmp_path)
    assert result.returncode == 0, result.stderr
    for line in ("brightness (Hz)", "decay (s)", "punch (dB)", "tuning (MIDI note)", "width (dB side/mid)",
                 "match (dB)", "recipes in", ": dark", "class (% of the asked class)",
                 "classes: kick, snare, hat, tom, cymbal, clap, perc",
                 "without a target it stops at -1 (negative weight) or 18 dB (positive)",
                 "built-in recipes", "  dark-kick: --guide class=1:kick --guide brightness=-0.5\n",
                 "  ringing-tom: --guide class=1:tom --guide decay=1:1.5s\n"):
        assert line in result.stdout, result.stdout


def test_save_recipe_saves_guides_by_name_that_a_render_then_takes(tmp_path, tiny_model_path, drumkits):
    """`dd-bridge save-recipe NAME` writes NAME.yaml in the recipes folder from a recipe and --guide options (in the
    order they act), `dd-bridge guides` lists it, and `--recipe NAME` renders those guides. A taken name, a bad guide
    or name, or nothing to save: one line, and the folder as it was."""
    config = tmp_path / "config"
    made = dd_bridge("save-recipe", "short dark", "--guide", "decay=-1@0.2-1", "--recipe", "dark-kick",
                     "--description", "a short dark kick", config=config)
    assert made.returncode == 0, made.stderr
    path = config / "dd-bridge" / "recipes" / "short dark.yaml"
    assert made.stdout.splitlines() == ["saved recipe short dark: --guide class=1:kick --guide brightness=-0.5 "
                                        "--guide decay=-1@0.2-1", f"  {path}"]
    saved = path.read_bytes()
    assert "recipes in" in dd_bridge("guides", config=config).stdout and ": short dark" in \
        dd_bridge("guides", config=config).stdout
    for args, words in ((["short dark", "--guide", "punch=1"], "already saved"),
                        (["other", "--guide", "sparkle=1"], "no guide named 'sparkle'"),
                        (["a/b", "--guide", "punch=1"], "short text"),
                        (["empty"], "no guides to save")):
        result = dd_bridge("save-recipe", *args, config=config)
        assert result.returncode != 0 and words in result.stderr.strip().splitlines()[-1], result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert path.read_bytes() == saved and [p.name for p in path.parent.iterdir()] == [path.name]
    kick = drumkits / "VariBreaks/VP Kick 1.flac"
    rendered = written(dd_bridge("vary", kick, "--model", tiny_model_path, "--count", 1, "--recipe", "short dark",
                                 "--out", tmp_path / "out", *FAST, config=config), 1)[0]
    assert read_metadata(rendered)["guide"] == ["class=1:kick", "brightness=-0.5", "decay=-1@0.2-1"]


def test_a_guided_variation_records_its_guides_and_is_made_again_to_the_bit(tmp_path, tiny_model_path, drumkits):
    kick = drumkits / "VariBreaks/VP Kick 1.flac"
    other = drumkits / "VariBreaks/VP Hat 1 Cl.flac"
    (tmp_path / "dd-bridge" / "recipes").mkdir(parents=True)
    (tmp_path / "dd-bridge" / "recipes" / "tight.yaml").write_text(
        "name: tight\nguides:\n  - {guide: decay, weight: 1, target: 0.2s, range: [0.1, 1.0]}\n")
    out = tmp_path / "out"
    common = [kick, "--model", tiny_model_path, "--count", 1, "--seed", 4, "--out", out, *FAST]
    plain = written(dd_bridge("vary", *common, config=tmp_path), 1)[0]
    result = dd_bridge("vary", *common, "--recipe", "tight", "--guide", "brightness=2",
                       "--guide", f"match=1:{other.relative_to(drumkits)}", config=tmp_path, cwd=drumkits)
    guided = written(result, 1)[0]
    metadata = read_metadata(guided)
    # In the order they act (what the sound is, then its shape), the file made absolute.
    assert metadata["guide"] == [f"match=1:{other}", "brightness=2", "decay=1:0.2s@0.1-1"]
    assert metadata["guide_mode"] == "cheap"
    assert not np.array_equal(read_audio(plain).samples, read_audio(guided).samples)
    (tmp_path / "again").mkdir()
    command = shlex.split(metadata["command"])
    assert command[0] == "dd-bridge" and metadata["device"] == "cpu" and metadata["threads"] == 1
    assert "--device cpu --threads 1" in metadata["command"]  # rendered with torch on one thread
    # made again where torch would take two threads: the command names the one it ran on
    again = written(dd_bridge(*command[1:], config=tmp_path / "no-recipes", cwd=tmp_path / "again", threads=2), 1)[0]
    assert np.array_equal(read_audio(again).samples, read_audio(guided).samples)
    (tmp_path / "two").mkdir()  # ... which matters: on two threads the same command renders other bits
    two = written(dd_bridge(*command[1:], "--threads", 2, config=tmp_path / "no-recipes", cwd=tmp_path / "two"), 1)[0]
    assert not np.array_equal(read_audio(two).samples, read_audio(guided).samples)
    assert "--recipe" not in metadata["command"]  # stored as its guides: editing the recipe changes nothing
    assert "guide" not in read_metadata(plain)


def test_generate_and_interpolate_take_guides(tmp_path, tiny_model_path, drumkits):
    out = tmp_path / "out"
    generated = written(dd_bridge("generate", "--model", tiny_model_path, "--count", 1, "--seconds", 0.1,
                                  "--seed", 2, "--guide", "width=-1", "--guide-mode", "full", "--out", out, *FAST,
                                  config=tmp_path), 1)[0]
    assert read_metadata(generated)["guide_mode"] == "full"
    a, b = drumkits / "VariBreaks/VP Kick 1.flac", drumkits / "VariBreaks/VP Hat 1 Cl.flac"
    paths = written(dd_bridge("interpolate", a, b, "--model", tiny_model_path, "--count", 2, "--guide",
                              "punch=1", "--out", out, *FAST, config=tmp_path), 2)
    assert json.loads(json.dumps(read_metadata(paths[0])))["guide"] == ["punch=1"]


@pytest.mark.parametrize("args, words", [
    (["--guide", "sparkle=1"], "no guide named 'sparkle'"),
    (["--guide", "brightness"], "argument --guide: cannot read the guide"),
    (["--guide", "brightness=-1:3k"], "a weight toward a target must be positive"),
    (["--guide", "match=1:/no/such.wav"], "/no/such.wav"),
    (["--recipe", "nothing"], "no recipe named 'nothing'"),
    (["--guide-mode", "full", "--backend", "onnx", "--guide", "width=1"], "full guidance needs the network in torch"),
])
def test_bad_guides_are_one_line_errors_and_write_nothing(tmp_path, tiny_model_path, drumkits, args, words):
    out = tmp_path / "out"
    result = dd_bridge("--quiet", "vary", drumkits / "VariBreaks/VP Kick 1.flac", "--model", tiny_model_path,
                       "--out", out, *FAST, *args, config=tmp_path)
    one_line_error(result, words)
    assert not out.exists() or not any(out.iterdir())


def test_eval_guides_prints_where_each_guide_moved_its_measure(tmp_path, tiny_model_path):
    result = dd_bridge("eval-guides", "--model", tiny_model_path, "--pairs", 2, "--steps", 3, "--seconds", 0.1,
                       "--guide", "brightness=2", "--guide", "tuning=1:A1", "--best-of", 3, config=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # new sounds, rendered as generate renders them: its sampler when none is given
    assert lines[0].startswith(f"tiny-test on cpu (cheap mode): 2 pairs of 0.1 s, 3 {NEW_SOUND_SAMPLER} steps, "
                               "seeds 0..1")
    assert lines[1].startswith("unguided: 2 renders,")
    assert lines[2].startswith("brightness=2     Hz          median") and "% of 2 pairs" in lines[2]
    assert "median distance to 33.00" in lines[3]
    assert all("; best of 3 unguided: median " in line and "the guided one further in" in line
               for line in lines[2:4])
    # pumping, which MMD misses; second hits, which a median misses (half the renders)
    assert all(re.search(r"; rises \d+\.\d -> \d+\.\d dB, over 20 dB \(a second hit\) in (0|50|100) % -> "
                         r"(0|50|100) %, two hits or more in (0|50|100) % -> (0|50|100) %", line)
               for line in lines[2:4])


def test_eval_guides_measures_a_recipe_s_guides_together_on_the_same_renders(tmp_path, tiny_model_path):
    """A recipe is one arm: its renders made with all its guides at once, each guide's measure read on them (a kick at
    a note is two or three dials together: docs/guidance.md, "A kick at a note"); with only recipes asked for, the
    default lone guides are not rendered."""
    recipe = tmp_path / "low-and-dark.yaml"
    recipe.write_text("name: low-and-dark\nguides: [tuning=1:A1, brightness=-2]\n")
    result = dd_bridge("eval-guides", "--model", tiny_model_path, "--pairs", 2, "--steps", 3, "--seconds", 0.1,
                       "--guide", "tuning=1:A1", "--recipe", recipe, config=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()[2:]
    assert [line.split()[0] for line in lines] == ["tuning=1:A1", "tuning=1:A1", "brightness=-2"], lines
    alone, tuned, dark = lines
    assert " in " not in alone.split("MIDI")[0] and tuned.startswith("tuning=1:A1 in low-and-dark")
    assert dark.startswith("brightness=-2 in low-and-dark")
    # one set of renders for the recipe: the same cost per step on both of its lines, and not the lone guide's renders
    assert tuned.rsplit("; ", 1)[1] == dark.rsplit("; ", 1)[1]
    assert tuned.split("moved")[0].split("->")[1] != alone.split("moved")[0].split("->")[1]
    only = dd_bridge("eval-guides", "--model", tiny_model_path, "--pairs", 2, "--steps", 2, "--seconds", 0.1,
                     "--recipe", recipe, config=tmp_path)
    assert only.returncode == 0, only.stderr
    assert [line.split()[0] for line in only.stdout.splitlines()[2:]] == ["tuning=1:A1", "brightness=-2"]
    missing = dd_bridge("eval-guides", "--model", tiny_model_path, "--recipe", "nothing-here", config=tmp_path)
    assert missing.returncode == 1 and "no recipe named 'nothing-here'" in missing.stderr, missing.stderr


def test_eval_guides_measures_match_by_the_distance_to_its_clip(tmp_path, tiny_model_path, drumkits):
    """The distance in dB to the clip; with labelled --data, a clip whose name says a class is also judged against
    real sounds of that class (all its renders are asked to be like one kick), one whose name says none is not."""
    kick = drumkits / "VariBreaks/VP Kick 1.flac"
    unnamed = tmp_path / "thing.flac"
    shutil.copyfile(kick, unnamed)
    result = dd_bridge("eval-guides", "--model", tiny_model_path, "--pairs", 3, "--steps", 2, "--seconds", 0.1,
                       "--guide", f"match=1:{kick}", "--guide", f"match=1:{unnamed}",
                       "--data", drumkits / "ElectricEmpireKit", config=tmp_path)
    assert result.returncode == 0, result.stderr
    named, other = result.stdout.splitlines()[2:4]
    assert named.startswith(f"match=1:{kick}") and " dB " in named and "moved the asked way in" in named, named
    assert "; MMD^2 to the real sounds " in named and "asked class's real sounds" in named, named
    assert other.startswith(f"match=1:{unnamed}") and "asked class's real sounds" not in other, other
    assert "real sounds of " not in named + other  # a distance to one clip has no range of real sounds


def test_eval_guides_with_real_sounds_says_how_much_less_drum_like_each_guide_makes_them(tmp_path, tiny_model_path,
                                                                                         drumkits):
    result = dd_bridge("eval-guides", "--model", tiny_model_path, "--pairs", 3, "--steps", 2, "--guide",
                       "width=1", "--data", drumkits / "Millo-Drums_v.1", config=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "3 pairs of 0.170667 s" in lines[0]  # the model's window: the real sounds' length
    assert "; MMD^2 to the real sounds " in lines[2] and "+-" in lines[2]
    # and against the real sounds whose width lies where the guided renders' does, or too few of them to say
    assert re.search(r"; MMD\^2 to the real sounds of -?\d+\.\d\d--?\d+\.\d\d dB side/mid \(\d+\)"
                     r"( \(unguided: to all\) [+-]\d\.\d{4} \+- \d\.\d{4}|: too few to judge by)", lines[2]), lines[2]
    refused = dd_bridge("eval-guides", "--model", tiny_model_path, "--pairs", 2, "--data",
                        drumkits / "Millo-Drums_v.1", config=tmp_path)
    assert refused.returncode == 1 and "--pairs must be at least 3 with --data" in refused.stderr


def test_eval_guides_counts_renders_in_the_asked_class_by_its_classifier_and_an_independent_judge(
        tmp_path, tiny_model_path, drumkits):
    result = dd_bridge("eval-guides", "--model", tiny_model_path, "--pairs", 3, "--steps", 2, "--seconds", 0.1,
                       "--guide", "class=1:kick", "--class-judge", drumkits / "Millo-Drums_v.1",
                       drumkits / "Audiophob", config=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("class judge: 28 sounds of 2 kits; on each kit when trained on the others: ")
    line = next(line for line in lines if line.startswith("class=1:kick"))
    assert re.search(r"in the asked class: \d+ % -> \d+ % by its classifier, \d+ % -> \d+ % by the judge", line), line


def test_eval_guides_judges_a_class_guide_against_real_sounds_of_its_class(tmp_path, tiny_model_path, drumkits):
    """With labelled kits as --data, a guide toward a class (or a mix) is also judged against the real sounds of
    it; away from a class, or toward one the data has too few of, only against them all."""
    result = dd_bridge("eval-guides", "--model", tiny_model_path, "--pairs", 3, "--steps", 2, "--guide",
                       "class=1:kick", "--guide", "class=1:kick*0.5+hat*0.5", "--guide", "class=-1:kick",
                       "--guide", "class=1:tom", "--data", drumkits / "ElectricEmpireKit", config=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert set(lines) == {"class=1:kick", "class=1:kick*0.5+hat*0.5", "class=-1:kick", "class=1:tom"}
    for guide in ("class=1:kick", "class=1:kick*0.5+hat*0.5"):
        assert re.search(r"; MMD\^2 to the real sounds [+-]\d\.\d{4} \+- \d\.\d{4}; MMD\^2 to the asked class's real "
                         r"sounds \(unguided: to all\) [+-]\d\.\d{4} \+- \d\.\d{4}", lines[guide]), lines[guide]
    for guide in ("class=-1:kick", "class=1:tom"):  # away from it; the kit has no toms
        assert "; MMD^2 to the real sounds " in lines[guide] and "asked class's real sounds" not in lines[guide]
    for line in lines.values():  # a class guide is judged by its class, not by a measure's range
        assert "; MMD^2 to the real sounds of " not in line


def _rendered(args, out: Path) -> list[Path]:
    """The files one in-process run of the command wrote into the new folder ``out``, in order."""
    from bridge.cli import main

    assert main([*map(str, args), "--out", str(out)]) == 0
    return sorted(out.glob("*.wav"))


@pytest.mark.parametrize("command", [
    ["generate", "--sampler", "v-iplms", "--seconds", 0.1, "--count", 1, "--seed", 5],
    ["generate", "--seconds", 0.1, "--count", 1, "--seed", 5],  # generate's own sampler, an SDE
    ["interpolate", "VariBreaks/VP Kick 1.flac", "VariBreaks/VP Hat 1 Cl.flac", "--count", 3],  # v-iplms, its default
    ["vary", "VariBreaks/VP Kick 1.flac", "--count", 1, "--seed", 5],
], ids=["generate-v-iplms", "generate", "interpolate", "vary"])
def test_a_guide_of_weight_0_is_off_to_the_bit_and_its_file_says_unguided(tmp_path, tiny_model_path, drumkits,
                                                                         monkeypatch, command):
    """"0 is off" (review s42 M6): with --guide and a recipe of weight-0 guides the render is the unguided one to
    the bit on every sampler (a guide that never acted made v-iplms end on its last estimate: -8.8 dB of
    difference), its file and recreating command name no guide, and that command makes it again to the bit."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    (tmp_path / "config" / "dd-bridge" / "recipes").mkdir(parents=True)
    (tmp_path / "config" / "dd-bridge" / "recipes" / "zero.yaml").write_text("guides: [decay=0:0.3s, class=0:kick]\n")
    monkeypatch.chdir(drumkits)
    common = [*command, "--model", tiny_model_path, "--threads", 1, *FAST]
    plain = _rendered(common, tmp_path / "plain")
    off = _rendered([*common, "--guide", "brightness=0", "--guide", "punch=0@0.2-1", "--recipe", "zero"],
                    tmp_path / "off")
    assert len(plain) == len(off) == int(command[command.index("--count") + 1])
    for a, b in zip(plain, off):
        assert np.array_equal(read_audio(a).samples, read_audio(b).samples), b.name
        assert "guide" not in read_metadata(b) and "--guide" not in read_metadata(b)["command"]
    again = _rendered(shlex.split(read_metadata(off[-1])["command"])[1:], tmp_path / "again")
    assert np.array_equal(read_audio(again[-1]).samples, read_audio(off[-1]).samples)


def test_a_broken_plug_in_never_stops_an_unguided_render_and_a_failing_one_is_named_before_the_model_loads(
        tmp_path, tiny_model_path, drumkits):
    """A plug-in that exits at import (argparse at module level) stopped every command with "unrecognized
    arguments" (review s42 H1): an unguided render does not load plug-ins, a guided one reports it in one line and
    goes on. A plug-in whose make() fails is one line naming the guide and its package, before the model loads
    (L5)."""
    from tests.engine.test_guide_registry import make_package
    from tests.engine.test_guides_plugins import ENTRIES, EXITS, MISBEHAVING

    make_package(tmp_path, "exits_at_import", EXITS, {"exiter": "exits_at_import:G"})
    make_package(tmp_path, "misbehaving", MISBEHAVING, ENTRIES)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]), OMP_NUM_THREADS="1",
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    kick = drumkits / "VariBreaks/VP Kick 1.flac"

    def vary(*args):
        return subprocess.run([sys.executable, "-m", "bridge", "vary", str(kick), "--model", str(tiny_model_path),
                               "--count", "1", "--out", str(tmp_path / "out"), *FAST, *args], capture_output=True,
                              text=True, env=env, timeout=600)

    plain = vary()
    written(plain, 1)
    assert "exiter" not in plain.stderr and "unrecognized" not in plain.stderr and "misbehaving" not in plain.stderr
    refused = vary("--guide", "brightness=1", "--guide", "oldmake=1")
    assert refused.returncode == 1 and refused.stdout == "" and "Traceback" not in refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert lines[-1] == ("dd-bridge vary: error: guide oldmake (plug-in misbehaving): TypeError: OldMake.make() got "
                         "an unexpected keyword argument 't_min'"), refused.stderr
    assert sum("'exiter'" in line and "plug-in exits_at_import" in line for line in lines) == 1, refused.stderr
    assert not any("tiny-test" in line for line in lines), refused.stderr  # before the model loads


def test_guides_read_through_a_pipe_that_closes_early_end_quietly(tmp_path):
    """`dd-bridge guides | head -1` (review s42): the reader closes the pipe after one line, and the command ended
    with "unexpected error: BrokenPipeError"."""
    # `true` reads nothing and is gone before Python has started: every line written meets a closed pipe
    command = f"{shlex.quote(sys.executable)} -m bridge guides | true"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO), XDG_CONFIG_HOME=str(tmp_path)), timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_a_broken_pipe_that_is_not_stdout_is_a_failure(monkeypatch, capsys):
    """Review s42 diff L8: only stdout's reader going away is a quiet end; a pipe to a worker that died is not."""
    from bridge.cli import guides, main

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(guides, "run_guides", broken)
    assert main(["guides"]) == 1
    assert "unexpected error: BrokenPipeError" in capsys.readouterr().err
