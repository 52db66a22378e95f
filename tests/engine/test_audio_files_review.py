"""Audio files as the review of audio input found them (docs: bridge/engine/audio.py): a region of a recording
over 4 GiB, RF64 and W64 files cut short, a cut Ogg, a WAV whose data chunk says 0 bytes, a name with a newline,
and long source names keeping their labels and their numbering."""

from __future__ import annotations

import io
import os
import struct
import sys

import numpy as np
import pytest
import soundfile

from bridge import files
from bridge.daemon.writer import SampleFolder
from bridge.engine import audio
from bridge.engine.audio import Clip, read_audio, read_header, write_numbered
from bridge.engine.regions import Region
from bridge.engine.tempo import Bars, loop_label
from bridge.errors import AudioError

RATE = 48000


def noise(frames: int = 14400, channels: int = 2) -> np.ndarray:
    return (np.random.default_rng(0).standard_normal((frames, channels)) * 0.1).astype(np.float32)


def encoded(fmt: str, subtype: str = "PCM_24", frames: int = 14400) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, noise(frames), RATE, subtype=subtype, format=fmt)
    return buffer.getvalue()


# -- 3: a region of a file over 4 GiB ----------------------------------------------------------------------------

def sparse_rf64(path, data_bytes: int) -> None:
    """An RF64 file whose ds64 chunk announces data_bytes of 24-bit stereo, the first second real noise and the rest
    a hole (sparse: no disk taken), as a long take that REAPER switched to RF64 is laid out."""
    head = bytearray(encoded("RF64", frames=RATE))
    at = head.find(b"ds64")
    start = head.find(b"data") + 8
    written = len(head) - start
    struct.pack_into("<QQQ", head, at + 8, start - 8 + data_bytes, data_bytes, data_bytes // 6)
    with open(path, "wb") as file:
        file.write(head[:start + written])
    os.truncate(path, start + data_bytes)


def test_a_region_of_a_sparse_rf64_over_4_gib_is_read_and_the_whole_file_is_refused_in_one_line(tmp_path):
    path = tmp_path / "live set.wav"
    data_bytes = (5 << 30) // 6 * 6
    sparse_rf64(path, data_bytes)
    if os.stat(path).st_blocks * 512 > 64 << 20:  # this file system wrote the hole out (not sparse): 5 GiB taken
        path.unlink()
        pytest.skip("sparse files are not sparse on this file system (the capped test below still runs)")
    assert os.path.getsize(path) > 4 << 30
    _, header = read_header(path)
    assert header.frames == data_bytes // 6
    clip = read_audio(path, Region(0.1, 0.4))
    assert clip.frames == round(0.3 * RATE) and clip.channels == 2 and np.abs(clip.samples).max() > 0.01
    far = read_audio(path, Region(3000.0, 3000.25))  # in the hole: silence, read without decoding the rest
    assert far.frames == RATE // 4 and not far.samples.any()
    with pytest.raises(AudioError) as refused:
        read_audio(path)
    message = str(refused.value)
    assert "\n" not in message and "over the limit of 4.0 GiB" in message and "a region" in message


@pytest.mark.parametrize("fmt, suffix", [("RF64", "wav"), ("W64", "w64"), ("CAF", "caf"), ("FLAC", "flac")])
def test_a_region_of_a_file_over_the_whole_file_limit_is_read(tmp_path, monkeypatch, fmt, suffix):
    """The cap on a file's size holds a whole file only: a region is decoded alone (and weighed as such)."""
    path = tmp_path / f"take.{suffix}"
    path.write_bytes(encoded(fmt, frames=RATE))
    monkeypatch.setattr(audio, "MAX_AUDIO_FILE_BYTES", os.path.getsize(path) // 2)
    clip = read_audio(path, Region(0.25, 0.5))
    assert clip.frames == RATE // 4
    np.testing.assert_allclose(clip.samples, noise(RATE)[RATE // 4: RATE // 2], atol=1e-3 if fmt == "FLAC" else 1e-6)
    assert read_header(path)[1].frames == RATE
    with pytest.raises(AudioError, match="cannot read the whole file .*over the limit"):
        read_audio(path)


# -- 4: RF64 and W64 cut short -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["RF64", "W64"])
@pytest.mark.parametrize("kept", [2 / 3, 0.99])
def test_a_cut_rf64_or_w64_is_refused_as_truncated_whole_or_a_region_of_it(tmp_path, fmt, kept):
    data = encoded(fmt)
    path = tmp_path / f"half copied.{'wav' if fmt == 'RF64' else 'w64'}"
    path.write_bytes(data[: int(len(data) * kept)])
    for region in (None, Region(0.0, 0.05)):  # a region well inside what is left: still the file is cut
        with pytest.raises(AudioError, match=r"truncated: the header announces 86400 bytes of audio, the file "
                                             r"holds \d+$"):
            read_audio(path, region)


@pytest.mark.parametrize("fmt", ["RF64", "W64"])
def test_a_whole_rf64_or_w64_is_read_with_a_chunk_after_its_data(tmp_path, fmt):
    data = encoded(fmt)
    path = tmp_path / "whole.wav"
    path.write_bytes(data)
    assert read_audio(path).frames == 14400
    if fmt == "RF64":  # a chunk after the data (a marker list): the data is whole all the same
        path.write_bytes(data + b"junk" + struct.pack("<I", 4) + b"abcd")
        assert read_audio(path).frames == 14400


def test_an_rf64_left_by_a_streaming_writer_is_not_taken_for_a_cut_one(tmp_path):
    data = bytearray(encoded("RF64"))
    at = data.find(b"ds64")
    struct.pack_into("<QQ", data, at + 8, 0, 0)  # sizes not known yet
    path = tmp_path / "streaming.wav"
    path.write_bytes(data)
    try:
        clip = read_audio(path)
    except AudioError as error:
        assert "truncated" not in str(error)
    else:
        assert clip.frames > 0


# -- 10: a cut Ogg, an empty data chunk before audio --------------------------------------------------------------

def test_a_cut_ogg_is_refused_as_truncated_not_as_empty(tmp_path):
    t = np.arange(3 * RATE) / RATE
    tone = (0.5 * np.sin(2 * np.pi * 110 * t) * np.exp(-t))[:, None].repeat(2, axis=1)
    buffer = io.BytesIO()
    soundfile.write(buffer, tone, RATE, format="OGG", subtype="VORBIS")
    data = buffer.getvalue()
    path = tmp_path / "cut.ogg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="cut.ogg: truncated: the Ogg stream stops before its end"):
        read_audio(path)
    path.write_bytes(data)
    assert read_audio(path).frames == 3 * RATE


def test_a_wav_whose_data_chunk_says_0_bytes_before_its_audio_says_so(tmp_path):
    data = bytearray(encoded("WAV", "PCM_16"))
    at = data.find(b"data")
    struct.pack_into("<I", data, at + 4, 0)  # a recorder that crashed before it wrote the size
    path = tmp_path / "crashed.wav"
    path.write_bytes(data)
    with pytest.raises(AudioError, match=r"crashed.wav: holds no audio by its header: the data chunk's size is 0, "
                                         r"yet 57600 bytes follow it \(a recording cut off\?\)"):
        read_audio(path)


def test_a_wav_of_0_frames_is_still_said_to_hold_no_audio(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros((0, 2)), RATE, subtype="PCM_16")
    with pytest.raises(AudioError, match="empty.wav: holds no audio \\(0 frames\\)$"):
        read_audio(path)
    with soundfile.SoundFile(path, "w", RATE, 2, "PCM_16") as file:  # with a chunk after the empty data chunk
        file.title = "nothing yet"
    with pytest.raises(AudioError, match="empty.wav: holds no audio \\(0 frames\\)$"):
        read_audio(path)


def test_digital_silence_is_known_as_such():
    assert Clip(np.zeros((100, 2)), RATE).silent
    assert not Clip(np.full((100, 2), 1e-9), RATE).silent


# -- 9: a name with a newline ------------------------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="Windows names cannot hold a newline")
def test_a_file_named_with_a_newline_is_named_on_one_line(tmp_path):
    data = encoded("WAV", "PCM_16")
    path = tmp_path / "bad\nname\t\x1b[2J.wav"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError) as refused:
        read_audio(path)
    message = str(refused.value)
    assert message.startswith(f"{tmp_path}/bad\\nname\\t\\x1b[2J.wav: truncated: "), message
    assert "\n" not in message and "\t" not in message and "\x1b" not in message and "bad\\nname" in message
    for missing in (tmp_path / "gone\n.wav", tmp_path / "folder\r" / "x.wav"):
        with pytest.raises(AudioError) as refused:
            read_audio(missing)
        assert "\n" not in str(refused.value) and "\r" not in str(refused.value)
    assert files.printable("a\nb\x7f\u0085c") == "a\\nb\\x7f\\x85c" and files.printable("é\\x") == "é\\x"


# -- 6: long source names keep their labels and their numbering ----------------------------------------------------

def tone() -> Clip:
    return Clip(noise(480), RATE)


def test_a_251_byte_source_name_keeps_its_loop_label_and_numbering_continues_after_the_highest(tmp_path):
    source = tmp_path / ("y" * 251 + ".wav")
    folders = SampleFolder(tmp_path / "samples", (tmp_path,))
    label = loop_label(True, Bars(1, 120))
    region = Region(0.05, 2.05)

    def vary() -> str:
        path = folders.write(folders.default, tone(), "pcm16", {}, operation="vary", sources=(str(source),),
                             regions=(region,), label=label)
        assert len(path.name.encode()) <= files.NAME_BYTES
        return path.name

    first = [vary(), vary()]
    assert all(name.endswith(" 0.050-2.050s loop 1 bar 120 bpm var 00" + n + ".wav")
               for name, n in zip(first, "12")), first
    assert vary().endswith(" loop 1 bar 120 bpm var 003.wav")  # a second run continues
    folder = folders.default / files.source_stems(source.name)[0]
    (folder / first[0]).unlink()
    assert vary().endswith(" loop 1 bar 120 bpm var 004.wav")  # after the highest, not the free 001


@pytest.mark.parametrize("operation, label, sources", [
    ("repaint", "repaint 0.100-0.200s", 1), ("extend", "ext 2 bars 120 bpm", 1), ("interpolate", "", 2),
    ("generate", "loop 2 bars 90 bpm", 0)])
def test_every_result_of_a_long_name_keeps_its_label(tmp_path, operation, label, sources):
    names = tuple(str(tmp_path / (c * 250 + ".wav")) for c in "ab"[:sources])
    folders = SampleFolder(tmp_path / "samples", (tmp_path,))
    made = [folders.write(folders.default, tone(), "pcm16", {}, operation=operation, sources=names,
                          model="m" * 300, regions=(Region(1.0, 2.0),) * sources, label=label).name
            for _ in range(2)]
    tail = {"interpolate": "-2.000s to b"}.get(operation, f" {label}")
    for number, name in enumerate(made, 1):
        assert len(name.encode()) <= files.NAME_BYTES and name.endswith(f" {number:03d}.wav"), name
        assert tail in name, name
    if operation == "interpolate":
        assert made[0].startswith("a") and " 1.000-2.000s to b" in made[0] and made[0].endswith("s 001.wav")


def test_numbering_continues_after_names_cut_to_fit(tmp_path):
    """A stem too long for any label (a caller's own) is cut by numbered_name: the names as written are still
    counted, 1000 and up included."""
    stem = "z" * 300
    assert [write_numbered(tmp_path, stem, tone()).name[-8:] for _ in range(2)] == [" 001.wav", " 002.wav"]
    (tmp_path / files.numbered_name(stem, 1000, ".wav")).write_bytes(b"x")
    assert write_numbered(tmp_path, stem, tone()).name.endswith(" 1001.wav")
    assert len(files.numbered_name(stem, 1001, ".wav").encode()) == files.NAME_BYTES


def test_fitted_stem_cuts_the_sources_never_the_labels():
    stems = ["é" * 200, "b" * 10]
    stem = files.fitted_stem(lambda a, b: f"{a} 1.000-2.000s to {b} 0.000-1.000s", *stems)
    assert " 1.000-2.000s to " in stem and stem.endswith(" 0.000-1.000s")
    assert len(stem.encode()) + len(" 999999.wav") <= files.NAME_BYTES
    assert files.fitted_stem(lambda a: f"{a} var", "kick") == "kick var"
