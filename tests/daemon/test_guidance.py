"""Guidance through the service over real UDP on loopback: guide= and recipe= on a request, /dd/set guide and
recipe, the config's render.guide; checked at the door, part of the render key, carried by every file's recipe
and recreate command (docs/osc.md, docs/guidance.md)."""

from __future__ import annotations

import shlex
import sys

import numpy as np
import pytest
import soundfile
import torch

from bridge.cli import main as cli_main
from bridge.daemon.app import App
from bridge.daemon.renderer import Renderer
from bridge.engine.audio import read_metadata
from bridge.engine.checkpoints import save_model
from bridge.errors import ConfigError
from tests.support.service import micro_model, running_service, service_config


@pytest.fixture
def config_home(tmp_path, monkeypatch):
    """The user's config folder (and so the recipes folder beside config.yaml) inside the test's own folder."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "dd-bridge"


def counters(svc) -> dict:
    return svc.status()["counters"]


def test_a_guided_vary_is_answered_with_files_that_carry_the_guides(tmp_path, renderer, drum, drum_samples):
    target = tmp_path / "in" / "other.flac"
    target.write_bytes(drum_samples["flac"].read_bytes())
    with running_service(service_config(tmp_path, render={"prefetch": 0}), renderer) as svc:
        plain = svc.ask("/dd/vary", str(drum), 1, 0.6, "seed=7").args[1]
        reply = svc.ask("/dd/vary", str(drum), 1, 0.6, "seed=7", f"guide=brightness=2; decay=-1@0.2-1;match=1:{target}")
        assert reply.address == "/dd/done" and reply.args[0] == "vary"
        guided = reply.args[1]
        generated = svc.ask("/dd/generate", 1, 0.2, "guide=tuning=1:A1", "seed=2").args[1]
    meta = read_metadata(guided)
    assert meta["guide"] == [f"match=1:{target}", "brightness=2", "decay=-1@0.2-1"]  # in the order they act
    assert meta["guide_mode"] == "cheap"  # the CPU's mode, named so the command recreates it anywhere
    command = shlex.split(meta["command"])
    assert command[command.index("--guide") + 1] == f"match=1:{target}"
    assert command.count("--guide") == 3 and f"match=1:{target}" in command
    assert command[command.index("--guide-mode") + 1] == "cheap"
    # and where it ran: on the CPU a guided sound is the same sound again only on as many threads
    assert meta["device"] == "cpu" and meta["threads"] == torch.get_num_threads()
    assert command[command.index("--threads") + 1] == str(torch.get_num_threads())
    assert command[command.index("--device") + 1] == "cpu"
    assert "guide" not in read_metadata(plain) and "--guide" not in read_metadata(plain)["command"]
    # The same seed with and without guides: the guides reached the render.
    assert not np.array_equal(soundfile.read(plain)[0], soundfile.read(guided)[0])
    assert read_metadata(generated)["guide"] == ["tuning=1:A1"]


def test_a_recipe_by_name_or_file_and_guide_off(tmp_path, renderer, drum, config_home):
    (config_home / "recipes").mkdir(parents=True)
    (config_home / "recipes" / "tight.yaml").write_text("name: tight\nguides:\n  - decay=-1\n"
                                                        "  - {guide: punch, weight: 0.5, range: [0.3, 1.0]}\n")
    with running_service(service_config(tmp_path, render={"prefetch": 0, "guide": ("width=-1",)}), renderer) as svc:
        by_name = svc.ask("/dd/vary", str(drum), 1, "recipe=tight", "guide=brightness=1").args[1]
        by_file = svc.ask("/dd/vary", str(drum), 1, f"recipe={config_home / 'recipes' / 'tight.yaml'}").args[1]
        sticky = svc.ask("/dd/vary", str(drum), 1).args[1]
        off = svc.ask("/dd/vary", str(drum), 1, "guide=off").args[1]
    # A request's guidance replaces the settings': the recipe's guides and its own, in the order they act.
    assert read_metadata(by_name)["guide"] == ["brightness=1", "decay=-1", "punch=0.5@0.3-1"]
    assert read_metadata(by_file)["guide"] == ["decay=-1", "punch=0.5@0.3-1"]
    assert read_metadata(sticky)["guide"] == ["width=-1"]
    assert "guide" not in read_metadata(off)


def test_a_bad_guide_is_refused_in_one_line_and_nothing_is_queued(tmp_path, renderer, drum, config_home):
    text = tmp_path / "in" / "notes.wav"
    text.write_text("not audio")
    with running_service(service_config(tmp_path, render={"prefetch": 0}), renderer) as svc:
        cases = [
            (("/dd/vary", str(drum), 1, "guide=sparkle=1"), "no guide named 'sparkle'"),
            (("/dd/vary", str(drum), 1, "guide=brightness"), "cannot read the guide"),
            (("/dd/vary", str(drum), 1, "guide=brightness=99"), "the weight must be in -10..10"),
            (("/dd/vary", str(drum), 1, "guide=tuning=1:Z9"), "tuning: cannot read the target"),
            (("/dd/vary", str(drum), 1, "guide=decay=-1:0.3s"), "a weight toward a target must be positive"),
            (("/dd/vary", str(drum), 1, "guide=match=1:other.wav"), "give the full path"),
            (("/dd/vary", str(drum), 1, f"guide=match=1:{tmp_path / 'missing.wav'}"), "missing.wav"),
            (("/dd/vary", str(drum), 1, f"guide=match=1:{text}"), "not an audio file"),
            (("/dd/generate", 1, "guide=tuning=1:+2"), "relative to a source"),
            (("/dd/interpolate", str(drum), str(drum), 2, "guide=sparkle=1"), "no guide named"),
            (("/dd/repaint", str(drum), "start=0", "end=0.1", "guide=sparkle=1"), "no guide named"),
            (("/dd/extend", str(drum), 1, 0.1, "guide=sparkle=1"), "no guide named"),
            (("/dd/vary", str(drum), 1, "recipe=nothing-here"), "no recipe named 'nothing-here'"),
            (("/dd/vary", str(drum), 1, "recipe=tight.yaml"), "give a name in"),
            (("/dd/set", "guide", "sparkle=1"), "no guide named"),
            (("/dd/set", "recipe", "nothing-here"), "no recipe named"),
        ]
        for request, expected in cases:
            reply = svc.ask(*request)
            assert reply.address == "/dd/error" and reply.args[0] == request[0], (request, reply.args)
            assert expected in reply.args[1] and "\n" not in reply.args[1], (request, reply.args)
        status = svc.status()
        assert status["counters"].get("rendered", 0) == 0 and status["queue"] == 0
        assert status["settings"]["guide"] == [] and status["settings"]["recipe"] is None and status["guides"] == []


def test_set_guide_is_sticky_shown_in_status_and_cleared(tmp_path, renderer, drum, config_home):
    (config_home / "recipes").mkdir(parents=True)
    (config_home / "recipes" / "dark.yaml").write_text("guides: [brightness=-1]\n")
    with running_service(service_config(tmp_path, render={"prefetch": 0}), renderer) as svc:
        assert svc.ask("/dd/set", "guide", "decay=-1;tuning=1:+2").args == ("set", "guide", "decay=-1;tuning=1:+2")
        assert svc.ask("/dd/set", "recipe", "dark").args == ("set", "recipe", "dark")
        status = svc.status()
        assert status["settings"]["guide"] == ["decay=-1", "tuning=1:+2"] and status["settings"]["recipe"] == "dark"
        assert status["guides"] == ["brightness=-1", "decay=-1", "tuning=1:+2"]
        first = svc.ask("/dd/vary", str(drum), 1).args[1]
        second = svc.ask("/dd/vary", str(drum), 1).args[1]
        # A new sound has no source for tuning=1:+2 to be relative to: refused at the door, as on the CLI.
        refused = svc.ask("/dd/generate", 1)
        assert refused.address == "/dd/error" and "relative to a source" in refused.args[1]
        assert svc.ask("/dd/set", "guide", "off").args == ("set", "guide", "off")
        assert svc.status()["guides"] == ["brightness=-1"]
        assert svc.ask("/dd/set", "recipe", "").args == ("set", "recipe", "off")
        status = svc.status()
        assert status["settings"]["guide"] == [] and status["settings"]["recipe"] is None and status["guides"] == []
        cleared = svc.ask("/dd/vary", str(drum), 1).args[1]
        assert svc.ask("/dd/generate", 1).address == "/dd/done"
    for path in (first, second):
        assert read_metadata(path)["guide"] == ["brightness=-1", "decay=-1", "tuning=1:+2"]
    assert "guide" not in read_metadata(cleared)


def test_prefetch_is_never_reused_across_guide_changes(tmp_path, renderer, drum):
    with running_service(service_config(tmp_path), renderer) as svc:
        svc.ask("/dd/select", str(drum))
        svc.wait_for(lambda s: s["prefetched"].get(str(drum)) == 2, what="plain prefetch")
        hits = counters(svc).get("prefetch_hits", 0)
        guided = svc.ask("/dd/vary", "guide=brightness=1").args[1]  # rendered for this press, not taken
        assert counters(svc).get("prefetch_hits", 0) == hits and read_metadata(guided)["guide"] == ["brightness=1"]
        assert svc.status()["prefetched"][str(drum)] == 2  # the plain ones wait for a plain press

        assert svc.ask("/dd/set", "guide", "brightness=1").address == "/dd/ack"
        svc.wait_for(lambda s: s["prefetched"].get(str(drum)) == 2 and s["running"] is None, what="guided prefetch")
        hits = counters(svc)["prefetch_hits"] if "prefetch_hits" in counters(svc) else 0
        plain = svc.ask("/dd/vary", "guide=off").args[1]
        assert counters(svc).get("prefetch_hits", 0) == hits and "guide" not in read_metadata(plain)
        sticky = svc.ask("/dd/vary").args[1]  # the guided prefetch answers a press at the guided settings
        assert counters(svc)["prefetch_hits"] == hits + 1
        assert read_metadata(sticky)["guide"] == ["brightness=1"]


def test_the_same_guides_listed_in_another_order_take_the_prefetched_set(tmp_path, renderer, drum, config_home):
    """The Live device sends its recipe apart from its dials, REAPER its guides after its recipe, a script in any
    order: one set of guides is one render key, and the files name them in the order they act."""
    (config_home / "recipes").mkdir(parents=True)
    (config_home / "recipes" / "low.yaml").write_text("guides: [tuning=1:-2, brightness=-1]\n")
    with running_service(service_config(tmp_path), renderer) as svc:
        svc.ask("/dd/select", str(drum))
        assert svc.ask("/dd/set", "guide", "decay=-1;brightness=-1;tuning=1:-2").address == "/dd/ack"
        svc.wait_for(lambda s: s["prefetched"].get(str(drum)) == 2 and s["running"] is None, what="guided prefetch")
        assert svc.status()["guides"] == ["brightness=-1", "decay=-1", "tuning=1:-2"]
        hits = counters(svc).get("prefetch_hits", 0)
        taken = svc.ask("/dd/vary", "recipe=low", "guide=decay=-1").args[1]
        assert counters(svc)["prefetch_hits"] == hits + 1
        other = svc.ask("/dd/vary", "guide=decay=-1;brightness=-1").args[1]  # not the same guides: rendered
        assert counters(svc)["prefetch_hits"] == hits + 1
    assert read_metadata(taken)["guide"] == ["brightness=-1", "decay=-1", "tuning=1:-2"]
    assert read_metadata(other)["guide"] == ["brightness=-1", "decay=-1"]


def test_the_config_guides_every_render_and_a_bad_one_stops_the_start(tmp_path, renderer, drum):
    with running_service(service_config(tmp_path, render={"prefetch": 0, "guide": ("punch=1",)}), renderer) as svc:
        assert svc.status()["guides"] == ["punch=1"]
        assert read_metadata(svc.ask("/dd/vary", str(drum), 1).args[1])["guide"] == ["punch=1"]
    with pytest.raises(ConfigError, match="no guide named 'sparkle'"):
        App(service_config(tmp_path, render={"guide": ("sparkle=1",)}), renderer)


def test_a_guided_prefetched_variation_is_recreated_by_its_command(tmp_path, drum, drum_samples):
    """The command in a guided file's comment, run as it is, makes the same audio (guides, mode, match's file)."""
    target = tmp_path / "in" / "other.flac"
    target.write_bytes(drum_samples["flac"].read_bytes())
    (tmp_path / "models").mkdir()
    weights, _card = save_model(micro_model(seed=3), tmp_path / "models" / "micro")
    served = Renderer.load(str(weights), device="cpu")
    guides = ("brightness=1", f"match=0.5:{target}")
    with running_service(service_config(tmp_path, render={"guide": guides}), served) as svc:
        svc.ask("/dd/select", str(drum))
        svc.wait_for(lambda s: s["prefetched"].get(str(drum)) == 2, what="guided prefetch")
        path = svc.ask("/dd/vary").args[1]
        assert svc.status()["counters"]["prefetch_hits"] == 1
    command = shlex.split(read_metadata(path)["command"])
    assert command.count("--guide") == 2 and "--guide-mode" in command
    again = tmp_path / "again"
    again.mkdir()
    assert cli_main(command[1:] + ["--out", str(again)]) == 0
    [made] = sorted(again.glob("*.wav"))
    assert np.array_equal(soundfile.read(made)[0], soundfile.read(path)[0])


def test_what_is_dialled_in_is_saved_as_a_recipe_listed_and_rendered_by_name(tmp_path, renderer, drum, config_home):
    """/dd/save_recipe keeps the settings' guides (their recipe's and their own, in the order they act) as a new file
    in the recipes folder; /dd/recipes then lists it beside the built-ins, and recipe=NAME renders those guides.
    A name taken, a bad name, no guides: one /dd/error line each, and the file there is left as it was."""
    with running_service(service_config(tmp_path, render={"prefetch": 0}), renderer) as svc:
        listed = svc.ask("/dd/recipes")
        assert listed.address == "/dd/recipes" and list(listed.args) == ["dark-kick", "ringing-tom"]
        refused = svc.ask("/dd/save_recipe", "nothing yet")
        assert refused.address == "/dd/error" and "no guides are set" in refused.args[1]
        assert not (config_home / "recipes").exists()

        assert svc.ask("/dd/set", "recipe", "dark-kick").address == "/dd/ack"
        assert svc.ask("/dd/set", "guide", "decay=-1@0.2-1").address == "/dd/ack"
        saved = svc.ask("/dd/save_recipe", "My short kick")
        path = config_home / "recipes" / "My short kick.yaml"
        assert saved.address == "/dd/ack" and saved.args == ("save_recipe", "My short kick", str(path))
        written = path.read_bytes()
        (path.parent / "not a name!.yaml").write_text("guides: [punch=1]\n")  # reached as a file, not by name
        assert list(svc.ask("/dd/recipes").args) == ["dark-kick", "My short kick", "ringing-tom"]
        (path.parent / "not a name!.yaml").unlink()

        for name, expected in (("My short kick", "already saved"), ("../up", "short text"), ("", "non-empty")):
            answer = svc.ask("/dd/save_recipe", name)
            assert answer.address == "/dd/error" and expected in answer.args[1] and "\n" not in answer.args[1], answer
        assert path.read_bytes() == written and sorted(p.name for p in path.parent.iterdir()) == [path.name]
        assert svc.ask("/dd/save_recipe", 808).args[:2] == ("save_recipe", "808")  # digits: a number from Max
        assert svc.ask("/dd/set", "recipe", 808).args == ("set", "recipe", "808")

        assert svc.ask("/dd/set", "recipe", "off").address == "/dd/ack"
        assert svc.ask("/dd/set", "guide", "off").address == "/dd/ack"
        by_name = svc.ask("/dd/vary", str(drum), 1, "seed=3", "recipe=My short kick").args[1]
        assert svc.ask("/dd/recipes", "token=x").address == "/dd/recipes"  # a token is not an argument
    assert read_metadata(by_name)["guide"] == ["class=1:kick", "brightness=-0.5", "decay=-1@0.2-1"]


def test_a_guide_of_weight_0_is_off_and_a_failing_plug_in_is_one_error_line(tmp_path, renderer, drum, monkeypatch):
    """Review s42: the service starts with a plug-in that exits at import on the path and renders unguided without
    loading it (H1); a weight-0 guide, sticky or on a request, is the unguided render to the bit on v-iplms and its
    file names no guide (M6); a plug-in whose measure raises or is NaN is one /dd/error line naming the guide, not
    "internal error" (L5, M7), and the service goes on."""
    from tests.engine.test_guide_registry import make_package
    from tests.engine.test_guides_plugins import ENTRIES, EXITS, MISBEHAVING

    plug_ins = tmp_path / "plug-ins"
    plug_ins.mkdir()
    make_package(plug_ins, "exits_at_import", EXITS, {"exiter": "exits_at_import:G"})
    make_package(plug_ins, "misbehaving", MISBEHAVING, ENTRIES)
    monkeypatch.syspath_prepend(str(plug_ins))
    monkeypatch.setattr(sys, "argv", ["dd-bridge", "serve"])  # what the plug-in's argparse reads, and refuses
    monkeypatch.delitem(sys.modules, "exits_at_import", raising=False)
    asked = ("/dd/vary", str(drum), 1, 0.6, "seed=7", "sampler=v-iplms")
    with running_service(service_config(tmp_path, render={"prefetch": 0}), renderer) as svc:
        plain = svc.ask(*asked).args[1]
        assert "exits_at_import" not in sys.modules
        assert svc.ask("/dd/set", "guide", "brightness=0").address == "/dd/ack"
        assert svc.status()["guides"] == []
        sticky = svc.ask(*asked).args[1]
        assert svc.ask("/dd/set", "guide", "off").address == "/dd/ack"
        own = svc.ask(*asked, "guide=punch=0@0.2-1;decay=0:0.3s").args[1]
        for request, words in (
                ("guide=raiser=1", "guide raiser (plug-in misbehaving): RuntimeError: plug-in bug: boom"),
                ("guide=nanny=1", "guide nanny: its measure is not finite on this sound (NaN)")):
            reply = svc.ask(*asked, request)
            assert reply.address == "/dd/error" and reply.args[1] == words, reply.args
        assert svc.ask(*asked, "guide=loud=1").address == "/dd/done"
    for path in (sticky, own):
        assert np.array_equal(soundfile.read(path)[0], soundfile.read(plain)[0])
        assert "guide" not in read_metadata(path) and "--guide" not in read_metadata(path)["command"]
