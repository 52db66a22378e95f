"""A producer's plug-in guides that misbehave (review s42 H1, L4, L5, M7) and a weight of 0 (M6): real packages as pip
leaves them (a module and its .dist-info, found through the entry points), real one-shots."""

from __future__ import annotations

import logging
import sys

import pytest
import torch

from bridge.daemon import steering
from bridge.engine.audio import read_audio, to_model
from bridge.engine.guidance import Guided, LossGuide
from bridge.engine.guides import registry
from bridge.engine.guides.builtin import GuideContext
from bridge.engine.guides.registry import parse_request
from bridge.engine.samplers import sample_v_iplms
from bridge.errors import ConfigError
from tests.engine.test_guide_registry import PLUGIN, make_package

RATE = 48000

# A plug-in that reads its own options at import, as a script would: argparse exits on dd-bridge's command line.
EXITS = '''
import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--strength", type=float, default=1.0)
OPTIONS = parser.parse_args()
G = None
'''

# Every way a working plug-in's guide can go wrong once loaded.
MISBEHAVING = '''
import dataclasses
import torch
from bridge.engine.guides.builtin import Measured


def _loud(audio, rate):
    return 10 * torch.log10(audio.pow(2).mean(dim=(1, 2)) + 1e-12)


def _raise(audio, rate):
    raise RuntimeError("plug-in bug: boom")


def _nan(audio, rate):
    return audio.pow(2).mean(dim=(1, 2)) * float("nan")


def _silent(audio, rate):
    return torch.log10(audio.pow(2).mean(dim=(1, 2)) * 0)  # log of 0: -inf


def _number(text, context):
    return float(text)


LOUD = Measured("Loud", "dBFS", "louder", "dBFS", _loud, _number)
RAISER = Measured("raiser", "x", "raises", "x", _raise, _number)
NANNY = Measured("nanny", "x", "NaN", "x", _nan, _number)
INFY = Measured("infy", "x", "inf", "x", _silent, _number)
STAGED = dataclasses.replace(Measured("staged", "dBFS", "louder", "dBFS", _loud, _number), stage=None)


class OldMake:
    name, unit, summary, target_help = "oldmake", "x", "an old signature", "x"

    def make(self, weight, target, context):  # no t_min, t_max, full
        return None


class NoGuide:
    name, unit, summary, target_help = "noguide", "x", "makes nothing", "x"

    def make(self, weight, target, context, **options):
        return None


OLDMAKE, NOGUIDE = OldMake(), NoGuide()
'''
ENTRIES = {"Loud": "misbehaving:LOUD", "raiser": "misbehaving:RAISER", "nanny": "misbehaving:NANNY",
           "infy": "misbehaving:INFY", "staged": "misbehaving:STAGED", "oldmake": "misbehaving:OLDMAKE",
           "noguide": "misbehaving:NOGUIDE", "Brightness": "misbehaving:LOUD"}


@pytest.fixture(autouse=True)
def reported_afresh(monkeypatch):
    """Each test hears the registry's once-a-process lines itself and imports its plug-ins itself: another suite in
    the same run (the service's guidance tests) may have loaded the same names first, and a module imported once is
    never imported again (under a bare `python -m pytest`, with no arguments for it to refuse, the exiting plug-in's
    argparse even succeeds)."""
    monkeypatch.setattr(registry, "_reported", set())
    for name in ("exits_at_import", "misbehaving", "fine_guides", "marks_import"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    registry.reload()
    yield
    registry.reload()


@pytest.fixture
def misbehaving(tmp_path, monkeypatch):
    make_package(tmp_path, "misbehaving", MISBEHAVING, ENTRIES)
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.fixture(scope="module")
def kick(drumkits) -> torch.Tensor:
    """[1, 2, L]: a real kick's first 0.2 s at 48 kHz."""
    return to_model(read_audio(drumkits / "ElectricEmpireKit/EE_Kick_Hard_1.flac"), RATE)[None, :, :RATE // 5]


def test_a_plug_in_that_exits_at_import_is_reported_in_one_line_and_left_out(tmp_path, monkeypatch, caplog):
    """argparse's exit is a SystemExit, not an Exception: it stopped every command, `serve` included (H1)."""
    make_package(tmp_path, "exits_at_import", EXITS, {"exiter": "exits_at_import:G"})
    make_package(tmp_path, "fine_guides", PLUGIN, {"loudness": "fine_guides:LOUDNESS"})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["dd-bridge", "vary", "kick.wav", "--guide", "loudness=1"])
    with caplog.at_level(logging.WARNING):
        found = registry.available()
        registry.reload()
        registry.available()  # read again: still reported once
    assert "loudness" in found and "exiter" not in found and "brightness" in found
    lines = [record.getMessage() for record in caplog.records if "exiter" in record.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert lines[0].startswith("guide 'exiter' (exits_at_import:G, plug-in exits_at_import) cannot be loaded: it "
                               "exited at import (SystemExit: 2)"), lines[0]
    assert "unrecognized arguments" in lines[0]  # what it said, in the line that names it, not as dd-bridge's own


def test_no_guide_asked_for_loads_no_plug_in(tmp_path, monkeypatch):
    """An unguided render (the CLI's guide_requests, the service's start and requests) never imports a plug-in, so
    a broken one cannot stop it; asking for any guide loads them."""
    marker = tmp_path / "imported"
    make_package(tmp_path, "marks_import", f"open({str(marker)!r}, 'w').close()\nG = None\n",
                 {"marker": "marks_import:G"})
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reload()
    assert registry.in_order([]) == [] and registry.check([]) == {} and registry.build([], GuideContext(RATE)) == []
    assert registry.with_file_targets_resolved([]) == []
    assert steering.guidance((), None, RATE, relative=True) == ()  # the service's start with no guidance set
    assert steering.checked((), RATE, False) == ()
    assert not marker.exists()
    registry.build([parse_request("brightness=1")], GuideContext(RATE))
    assert marker.exists()


def test_a_plug_in_named_in_capitals_is_reached_in_any_case_and_cannot_take_a_built_in_s_name(misbehaving, caplog,
                                                                                               kick):
    """Requests are read in lower case: "Loud" was listed and never reachable (L4); "Brightness" clashes with the
    built-in only once lowered."""
    with caplog.at_level(logging.WARNING):
        found = registry.available()
    assert "loud" in found and "Loud" not in found
    assert found["brightness"].unit == "Hz"
    assert "guide 'brightness' is taken; misbehaving:LOUD is ignored (plug-in misbehaving)" in caplog.text
    for text in ("Loud=1", "loud=1", "LOUD=1"):
        [guide] = registry.build([parse_request(text)], GuideContext(RATE))
        louder = guide(kick * 0.1, 0.5)
        assert float(louder.pow(2).mean()) > float((kick * 0.1).pow(2).mean())


@pytest.mark.parametrize("text, words", [
    ("oldmake=1", "guide oldmake (plug-in misbehaving): TypeError: OldMake.make() got an unexpected keyword "
                  "argument 't_min'"),
    ("noguide=1", 'guide noguide (plug-in misbehaving): make() gave NoneType, not a LossGuide (docs/guidance.md, '
                  '"Your own guide")'),
])
def test_a_plug_in_that_cannot_make_its_guide_is_one_line_naming_it_at_the_door(misbehaving, text, words):
    """The service's check at its door (and the CLI's, before the model loads): a ConfigError, not "unexpected
    error" or "internal error" with no guide named (L5)."""
    with pytest.raises(ConfigError) as error:
        steering.checked((parse_request(text),), RATE, True)
    assert str(error.value) == words


def test_a_plug_in_whose_measure_fails_while_rendering_is_one_line_naming_it(misbehaving, kick):
    [guide] = registry.build([parse_request("raiser=1")], GuideContext(RATE))
    with pytest.raises(ConfigError, match=r"^guide raiser \(plug-in misbehaving\): RuntimeError: plug-in bug: "
                                          r"boom$"):
        guide(kick, 0.5)
    [full] = registry.build([parse_request("raiser=1:3")], GuideContext(RATE), full=True)  # through the network
    state = kick.clone().requires_grad_(True)
    with pytest.raises(ConfigError, match="guide raiser"):
        full.step(state * 1.0, 0.5, wrt=state)


def test_a_plug_in_without_a_stage_acts_among_the_shape_guides(misbehaving):
    """stage = None (docs: a stage is optional) sorted against an int: a TypeError (L5)."""
    requests = [parse_request(text) for text in ("tuning=1:A1", "staged=1", "class=1:kick", "brightness=1")]
    assert [request.name for request in registry.in_order(requests)] == ["class", "brightness", "staged", "tuning"]
    assert len(registry.build(requests, GuideContext(RATE))) == 4


@pytest.mark.parametrize("text, what", [("nanny=1", "NaN"), ("infy=1:3", "inf"), ("infy=-1", "inf")])
def test_a_measure_that_is_not_finite_is_one_line_naming_the_guide(misbehaving, kick, text, what):
    """Its gradient was zeroed: the guide did nothing while the file said it guided (M7)."""
    [guide] = registry.build([parse_request(text)], GuideContext(RATE))
    name = text.split("=")[0]
    with pytest.raises(ConfigError) as error:
        guide(kick, 0.5)
    assert str(error.value) == f"guide {name}: its measure is not finite on this sound ({what})"


@pytest.mark.parametrize("text", ["brightness=1", "brightness=-1", "decay=1", "decay=-1", "decay=1:0.1s",
                                  "punch=1", "punch=-1", "tuning=1:A1", "width=1", "width=-1", "class=1:kick",
                                  "class=-1:hat"])
def test_the_built_in_guides_measure_real_drums_and_their_noisy_estimates_finitely(kick, text):
    """The check of M7 never stops a built-in guide on a real drum, a quiet one, or the noisy estimate of an early
    step."""
    context = GuideContext(RATE, kick[0])
    [guide] = registry.build([parse_request(text)], context)
    noisy = kick + 0.5 * torch.randn_like(kick)
    for audio, t in ((kick, 0.2), (noisy, 0.9), (kick * 1e-4, 0.5)):  # and 80 dB down
        assert torch.isfinite(guide(audio, t)).all()


def test_a_guide_of_weight_0_is_none(kick):
    """"0 is off": left out of the requests a render takes, and a loss of weight 0 does not make v-iplms end on its
    last estimate: the unguided render to the bit (M6)."""
    requests = [parse_request(text) for text in ("brightness=0", "decay=1:0.2s", "class=0:kick")]
    assert registry.in_order(requests) == [parse_request("decay=1:0.2s")]
    assert len(registry.build(requests, GuideContext(RATE))) == 1
    with pytest.raises(ConfigError, match="no guide named 'sparkle'"):  # off, but still a typo
        registry.in_order([parse_request("sparkle=0")])
    assert steering.guidance(("brightness=0", "width=0@0.2-1"), None, RATE, relative=True) == ()

    torch.manual_seed(0)
    weights = torch.randn(2, 2, 1)

    def network(x, t):  # a stand-in network: v as a smooth function of x and t
        return torch.tanh(weights * x) * (1 + t.reshape(-1, 1, 1))

    x = torch.randn(2, 2, 512)
    ts = torch.linspace(1, 0, 9)
    off = Guided(network, [LossGuide(lambda audio: audio.pow(2).mean(dim=(1, 2)), 0.0)])
    assert not off.edits_estimates
    assert torch.equal(sample_v_iplms(off, x, ts), sample_v_iplms(network, x, ts))
