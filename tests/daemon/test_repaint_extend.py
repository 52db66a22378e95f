"""/dd/repaint, /dd/extend and loop= through the service over real UDP on loopback, on a real drum loop made
from hydrogen-drumkits one-shots on a beat grid (tests/support/beat_loops.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile

from bridge.engine.audio import read_audio, read_metadata
from bridge.engine.tempo import Bars
from tests.support.beat_loops import beat_loop
from tests.support.service import running_service, service_config


@pytest.fixture
def loop(tmp_path):
    path = tmp_path / "in" / "beat.wav"
    path.parent.mkdir()
    soundfile.write(path, beat_loop(1, 120, 44100, offset=0.25).samples, 44100, subtype="PCM_24")
    return path


def test_repaint_and_extend_over_osc(tmp_path, renderer, loop):
    source = read_audio(loop)
    with running_service(service_config(tmp_path, render={"prefetch": 0, "steps": 2}), renderer) as svc:
        reply = svc.ask("/dd/repaint", str(loop), 2, "start=0.5", "end=1.25", "seed=3")
        assert reply.address == "/dd/done" and reply.args[0] == "repaint"
        paths = reply.args[1:]
        assert [os.path.basename(p) for p in paths] == ["beat repaint 0.500-1.250s 001.wav",
                                                        "beat repaint 0.500-1.250s 002.wav"]
        assert os.path.dirname(paths[0]) == str(tmp_path / "samples" / "beat")
        first, stop = 22050, 55125
        for path in paths:
            out = read_audio(path)
            assert out.frames == source.frames
            assert np.array_equal(out.samples[:first], source.samples[:first])
            assert np.array_equal(out.samples[stop:], source.samples[stop:])
        metadata = read_metadata(paths[1])
        assert (metadata["operation"], metadata["seed"], metadata["start"], metadata["end"]) == ("repaint", 4, 0.5,
                                                                                                   1.25)

        reply = svc.ask("/dd/extend", str(loop), 1, "bars=1", "bpm=120")
        (path,) = reply.args[1:]
        assert os.path.basename(path) == "beat ext 1 bar 120 bpm 001.wav"
        out = read_audio(path)
        assert out.frames == source.frames + Bars(1, 120).frames(44100)
        assert np.array_equal(out.samples[:source.frames], source.samples)
        reply = svc.ask("/dd/extend", str(loop), 1, 0.25)
        assert read_audio(reply.args[1]).frames == source.frames + round(0.25 * 44100)
        # A region of the file (the DAW's clip plays 0.5-1.5 s of it): continued from the region's end.
        (path,) = svc.ask("/dd/extend", str(loop), 1, 0.25, "start=0.5", "end=1.5").args[1:]
        assert os.path.basename(path) == "beat 0.500-1.500s ext 0.250s 001.wav"
        out = read_audio(path)
        assert out.frames == 44100 + round(0.25 * 44100)
        assert np.array_equal(out.samples[:44100], source.samples[22050:66150])
        assert "--start 0.5 --end 1.5" in read_metadata(path)["command"]
        # A repaint of a clip playing 0.5-1.5 s: that second written, 0.75-1.0 s of the file new in it.
        (path,) = svc.ask("/dd/repaint", str(loop), 1, "start=0.75", "end=1.0", "clip_start=0.5",
                          "clip_end=1.5").args[1:]
        assert os.path.basename(path) == "beat 0.500-1.500s repaint 0.750-1.000s 001.wav"
        out, clip = read_audio(path), source.samples[22050:66150]
        assert out.frames == 44100 and np.array_equal(out.samples[:11025], clip[:11025])
        assert np.array_equal(out.samples[22050:], clip[22050:])
        assert "--clip-start 0.5 --clip-end 1.5 " in read_metadata(path)["command"]

        # A time selection running past the file's or the clip's end (review s42 F3): that end, named as the CLI
        # names it (it was "0.500-5.000s" on a 2 s file, and refused past a clip's end)
        (path,) = svc.ask("/dd/repaint", str(loop), 1, "start=1.5", "end=5").args[1:]
        assert os.path.basename(path) == "beat repaint 1.500-2.000s 001.wav"
        assert read_metadata(path)["end"] == 2.0 and np.array_equal(read_audio(path).samples[:66150],
                                                                    source.samples[:66150])
        (path,) = svc.ask("/dd/repaint", str(loop), 1, "start=1.0", "end=1.6", "clip_start=0.5",
                          "clip_end=1.5").args[1:]
        assert os.path.basename(path) == "beat 0.500-1.500s repaint 1.000-1.500s 001.wav"
    assert read_metadata(paths[1])["command"].startswith("dd-bridge repaint ")  # recreated: tests/cli


def test_loops_over_osc_are_exactly_their_bars_long(tmp_path, renderer, loop):
    with running_service(service_config(tmp_path, render={"prefetch": 0, "steps": 2}), renderer) as svc:
        reply = svc.ask("/dd/vary", str(loop), 1, 0.4, "loop=on", "bars=1", "bpm=120", "seed=5")
        (path,) = reply.args[1:]
        assert read_audio(path).frames == Bars(1, 120).frames(44100)
        metadata = read_metadata(path)
        assert metadata["loop"] is True and (metadata["bars"], metadata["bpm"]) == (1.0, 120.0)
        assert "--loop --bars 1.0 --bpm 120.0" in metadata["command"]
        reply = svc.ask("/dd/vary", str(loop), 1, "loop=1")  # the clip's own length
        assert read_audio(reply.args[1]).frames == read_audio(loop).frames
        reply = svc.ask("/dd/generate", 1, "loop=on", "bars=0.5", "bpm=174")
        assert read_audio(reply.args[1]).frames == round(0.5 * 4 * 60 * 48000 / 174)
        assert read_metadata(reply.args[1])["loop"] is True


def test_bad_repaint_and_extend_requests_are_one_line(tmp_path, renderer, loop):
    with running_service(service_config(tmp_path, render={"prefetch": 0, "steps": 2}), renderer) as svc:
        cases = [
            (("/dd/repaint", str(loop)), "needs start= and end="),
            (("/dd/repaint", str(loop), "start=1", "end=0.5"), "must be before end"),
            (("/dd/repaint", str(loop), "start=5", "end=6"), "past the end"),
            (("/dd/repaint", str(loop), "start=0.2", "end=0.7", "clip_start=0.5"), "must lie inside the clip"),
            (("/dd/extend", str(loop)), "needs a length"),
            (("/dd/extend", str(loop), 1, "bars=1"), "give both bars and bpm"),
            (("/dd/extend", str(loop), 1, 2.0, "bars=1", "bpm=120"), "needs a length"),
            (("/dd/extend", str(loop), 1, "bars=1", "bpm=5"), "bpm must be in 20..999"),
            (("/dd/vary", str(loop), 1, "bars=1", "bpm=120"), "go with loop=on"),
            (("/dd/vary", str(loop), 1, "loop=maybe"), "loop must be on or off"),
            (("/dd/vary", str(loop), 1, "loop=on", "bars=4", "bpm=120"), "select the whole loop"),
            (("/dd/generate", 1, "loop=on"), "bars= and bpm="),
            (("/dd/vary", str(loop), 1, "loop=on", "tail=0.2"), "tail= goes with one-shots, not loops"),
            (("/dd/select", str(loop), "loop=on", "end=1", "tail=0.2"), "tail= goes with one-shots, not loops"),
            (("/dd/extend", str(loop), 1, "bars=64", "bpm=20"), "lasts 768 s: at most 600 s"),
            (("/dd/repaint", str(loop), "start=1.6", "end=1.7", "clip_start=0.5", "clip_end=1.5"),
             "the range 1.6-1.7 s starts at or past the end of the clip's part of the file (0.500-1.500s)"),
        ]
        for (address, *args), expected in cases:
            reply = svc.ask(address, *args)
            assert reply.address == "/dd/error", (address, args, reply)
            assert reply.args[0] == address and expected in reply.args[1], (address, args, reply.args)
        # A one-shot selected with a tail, pressed as a loop (review s42 diff M1): the region rendered is checked
        assert svc.ask("/dd/select", str(loop), "start=0.5", "end=1.0", "tail=0.2").address == "/dd/ack"
        reply = svc.ask("/dd/vary", "", 1, "loop=on")
        assert reply.address == "/dd/error" and "tail= goes with one-shots, not loops" in reply.args[1], reply
        assert svc.ask("/dd/ping").address == "/dd/pong"


def test_a_selected_loop_is_prefetched_as_loops_and_named_as_the_cli_names_them(tmp_path, renderer, loop):
    # The Live device and REAPER select a looping clip with its loop settings; prefetch then renders loops of it,
    # and a key press (the device's with loop=on bars= bpm=, or a MIDI note with none) is answered from it.
    bar = Bars(1, 120).frames(44100)
    with running_service(service_config(tmp_path, render={"prefetch": 2, "steps": 2}), renderer) as svc:
        svc.ask("/dd/select", str(loop), "loop=on", "bars=1", "bpm=120")
        svc.wait_for(lambda s: s["prefetched"].get(str(loop)) == 2, what="2 loops prefetched")
        assert svc.status()["selected_loop"] == "loop 1 bar 120 bpm"
        rendered = svc.status()["counters"]["rendered"]
        reply = svc.ask("/dd/vary", "", 1, "loop=on", "bars=1", "bpm=120")
        (path,) = reply.args[1:]
        assert path == str(tmp_path / "samples" / "beat" / "beat loop 1 bar 120 bpm var 001.wav")
        assert read_audio(path).frames == bar
        assert "--loop --bars 1.0 --bpm 120.0" in read_metadata(path)["command"]
        (path,) = svc.ask("/dd/vary").args[1:]  # a press without loop=: the selection's loop
        assert os.path.basename(path) == "beat loop 1 bar 120 bpm var 002.wav" and read_audio(path).frames == bar
        status = svc.status()
        assert status["counters"]["rendered"] == rendered and status["counters"]["prefetch_hits"] == 2

        # A plain press of the same clip is not a loop: not taken from the loops, named as a plain variation.
        (path,) = svc.ask("/dd/vary", "", 1, "loop=off").args[1:]
        assert os.path.basename(path) == "beat var 001.wav" and "--loop" not in read_metadata(path)["command"]
        # Selected again without its loop: the loops are dropped and plain variations prefetched.
        svc.ask("/dd/select", str(loop))
        svc.wait_for(lambda s: s["prefetched"].get(str(loop)) == 2 and s["selected_loop"] is None, what="plain")
        (path,) = svc.ask("/dd/vary").args[1:]
        assert os.path.basename(path) == "beat var 002.wav"
        (path,) = svc.ask("/dd/generate", 1, "loop=on", "bars=0.5", "bpm=174").args[1:]
        assert path == str(tmp_path / "samples" / "generated" / "micro loop 0.5 bars 174 bpm 001.wav")
        reply = svc.ask("/dd/select", str(loop), "bars=1", "bpm=120")
        assert reply.address == "/dd/error" and "go with loop=on" in reply.args[1]


def test_resample_over_osc_reaches_the_render_and_its_command(tmp_path, renderer, loop):
    """resample=U on /dd/repaint, /dd/extend and loop presses renders with RePaint's resampling, as --resample U."""
    with running_service(service_config(tmp_path, render={"prefetch": 0, "steps": 4}), renderer) as svc:
        plain = svc.ask("/dd/repaint", str(loop), 1, "start=0.5", "end=1.0", "seed=9").args[1]
        (path,) = svc.ask("/dd/repaint", str(loop), 1, "start=0.5", "end=1.0", "seed=9", "resample=2").args[1:]
        assert not np.array_equal(read_audio(path).samples, read_audio(plain).samples), "the same seed, resampled"
        assert read_metadata(path)["resample"] == 2 and "--resample 2" in read_metadata(path)["command"]
        assert "resample" not in read_metadata(plain)
        (path,) = svc.ask("/dd/extend", str(loop), 1, 0.25, "resample=3").args[1:]
        assert "--resample 3" in read_metadata(path)["command"]
        (path,) = svc.ask("/dd/vary", str(loop), 1, 0.4, "loop=on", "bars=1", "bpm=120", "resample=2").args[1:]
        assert read_metadata(path)["resample"] == 2 and read_audio(path).frames == Bars(1, 120).frames(44100)
        for args, expected in [
            (("/dd/repaint", str(loop), 1, "start=0.5", "end=1.0", "resample=0"), "resample must be"),
            (("/dd/extend", str(loop), 1, 0.25, "resample=11"), "resample must be"),
            (("/dd/vary", str(loop), 1, "resample=2"), "resample= goes with loops"),
            (("/dd/interpolate", str(loop), str(loop), "resample=2"), "resample"),
        ]:
            reply = svc.ask(*args)
            assert reply.address == "/dd/error" and expected in reply.args[1], (args, reply.args)
        assert svc.ask("/dd/ping").address == "/dd/pong"


def test_a_float_source_is_repainted_and_extended_as_float_unless_asked(tmp_path, renderer):
    """A repaint keeps its source outside what it renders: a 32-bit float bounce over full scale came back as
    pcm24, its lowest bits gone and the whole file turned down (review s43 r2). The settings' format is widened
    where the source holds more; a request's format= is written as asked."""
    path = tmp_path / "in" / "hot.wav"
    path.parent.mkdir()
    beat = beat_loop(1, 120, 48000, offset=0.25).samples * 2.5  # peaks over full scale: only float holds it
    soundfile.write(path, beat, 48000, subtype="FLOAT")
    source = read_audio(path)
    with running_service(service_config(tmp_path, render={"prefetch": 0, "steps": 2}), renderer) as svc:
        (repainted,) = svc.ask("/dd/repaint", str(path), 1, "start=0.5", "end=0.75", "seed=3").args[1:]
        (extended,) = svc.ask("/dd/extend", str(path), 1, 0.25).args[1:]
        (asked,) = svc.ask("/dd/repaint", str(path), 1, "start=0.5", "end=0.75", "format=pcm24").args[1:]
    for written in (repainted, extended):
        assert soundfile.info(written).subtype == "FLOAT"
        assert np.array_equal(read_audio(written).samples[:24000], source.samples[:24000])  # to the bit, over 1.0
        assert read_metadata(written)["format"] == "float"
    assert soundfile.info(asked).subtype == "PCM_24"
