"""Regions: the part of a source file a clip plays, checked alone and against the file, and read from it alone."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from bridge.engine.audio import read_audio, resolve_region
from bridge.engine.regions import Region, named
from bridge.errors import AudioError, ConfigError


def test_a_region_is_checked_on_its_own():
    assert Region.of() is None and Region.of(tail=0.0) is None
    assert Region.of(end=1.2) == Region(0.0, 1.2, 0.0)
    with pytest.raises(ConfigError, match=r"start \(1.2 s\) must be before end \(1 s\)"):
        Region.of(1.2, 1.0)
    with pytest.raises(ConfigError, match="start must be a number of seconds, 0 or more"):
        Region.of(-0.5, 1.0)
    with pytest.raises(ConfigError, match="must be before end"):
        Region.of(1.0, 1.0)


def test_a_region_against_a_file_of_3_seconds():
    rate, total = 44100, 3 * 44100
    assert Region(1.0, 1.2).frames(total, rate, "loop.wav") == (44100, 52920)
    assert Region(1.0, 1.2, tail=0.3).frames(total, rate, "loop.wav") == (44100, 52920 + 13230)
    assert Region(2.9, 3.5, tail=1.0).frames(total, rate, "loop.wav") == (127890, total)  # end and tail: the file's
    with pytest.raises(ConfigError, match=r"start 3 s is past the end of loop.wav \(3.000 s\)"):
        Region(3.0).frames(total, rate, "loop.wav")
    with pytest.raises(ConfigError, match="holds no whole sample"):
        Region(1.0, 1.00001).frames(total, rate, "loop.wav")
    # A region that covers the whole file is no region: plain names, the whole file's prefetch.
    assert Region(0.0, 3.0).resolved(total, rate, "loop.wav") is None
    assert Region(0.0, 9.0, tail=1.0).resolved(total, rate, "loop.wav") is None
    assert Region(1.0).resolved(total, rate, "loop.wav") == Region(1.0, 3.0)
    assert Region(1.0, 4.0).resolved(total, rate, "loop.wav") == Region(1.0, 3.0)


def test_names_and_recipes_show_the_region():
    region = Region(1.0, 1.2, tail=0.25)
    assert named("kick", region) == "kick 1.000-1.200s" and named("kick", None) == "kick"
    assert region.options() == {"start": 1.0, "end": 1.2, "tail": 0.25}
    assert Region(0.5, 0.75).options("b_") == {"b_start": 0.5, "b_end": 0.75}


def test_reading_a_region_reads_exactly_those_frames(drum_loop):
    whole = read_audio(drum_loop)
    part = read_audio(drum_loop, Region(1.0, 1.2))
    assert (part.frames, part.sample_rate, part.channels) == (8820, 44100, 2)
    assert np.array_equal(part.samples, whole.samples[44100:52920])
    rung = read_audio(drum_loop, Region(1.0, 1.2, tail=0.1))
    assert np.array_equal(rung.samples, whole.samples[44100:52920 + 4410])
    last = read_audio(drum_loop, Region(2.5, tail=2.0))
    assert np.array_equal(last.samples, whole.samples[110250:])
    with pytest.raises(ConfigError, match="past the end of loop.wav"):
        read_audio(drum_loop, Region(3.5))
    assert resolve_region(drum_loop, Region(2.0)) == Region(2.0, 3.0)


def test_a_region_of_a_compressed_file(drum_loop, tmp_path):
    """FLAC seeks to the region's first frame too."""
    flac = tmp_path / "loop.flac"
    data, rate = soundfile.read(drum_loop, dtype="float32")
    soundfile.write(flac, data, rate, subtype="PCM_24")
    part = read_audio(flac, Region(2.0, 2.05))
    assert np.array_equal(part.samples, read_audio(flac).samples[88200:90405])


def test_a_truncated_file_is_refused_when_the_region_reaches_past_what_is_left(drum_loop, tmp_path):
    cut = tmp_path / "cut.wav"
    cut.write_bytes(drum_loop.read_bytes()[: drum_loop.stat().st_size // 2])
    for region in (Region(2.0, 2.5), Region(0.5, 0.7)):  # past what is left, and within it
        with pytest.raises(AudioError, match="truncated"):
            read_audio(cut, region)
