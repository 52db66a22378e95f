"""Audio in and out: every format, rate, channel count and bit depth; atomic writes; every kind of bad file."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import soundfile
import torch

from bridge import files
from bridge.engine import audio
from bridge.engine.audio import PCM_PEAK, Clip, from_model, next_free_path, read_audio, read_metadata, to_model, write_audio, \
    write_numbered
from bridge.engine.regions import Region
from bridge.errors import AudioError


def tone(seconds=0.25, rate=48000, channels=2, peak=0.5):
    """A band-limited test signal, different per channel."""
    t = np.arange(int(seconds * rate)) / rate
    columns = [peak * np.sin(2 * np.pi * (220 * (c + 1)) * t + c) for c in range(channels)]
    return Clip(np.stack(columns, axis=1).astype(np.float32), rate)


# --- reading -----------------------------------------------------------------------------------------------------

def test_reads_real_drums_in_every_format(drum_samples):
    for suffix, path in drum_samples.items():
        clip = read_audio(path)
        info = soundfile.info(str(path))
        assert (clip.frames, clip.channels, clip.sample_rate) == (info.frames, info.channels, info.samplerate), suffix
        assert clip.samples.dtype == np.float32
        assert 0 < np.abs(clip.samples).max() <= 1.0


@pytest.mark.parametrize("container, subtype, tolerance", [
    ("WAV", "PCM_U8", 1 / 100), ("WAV", "PCM_16", 1e-4), ("WAV", "PCM_24", 1e-6), ("WAV", "PCM_32", 1e-6),
    ("WAV", "FLOAT", 0), ("WAV", "DOUBLE", 1e-7), ("AIFF", "PCM_16", 1e-4), ("AIFF", "PCM_24", 1e-6),
    ("FLAC", "PCM_16", 1e-4), ("FLAC", "PCM_24", 1e-6),
])
def test_bit_depths_read_back(tmp_path, container, subtype, tolerance):
    clip = tone()
    path = tmp_path / f"x.{container.lower()}"
    soundfile.write(path, clip.samples, clip.sample_rate, subtype=subtype, format=container)
    back = read_audio(path)
    assert back.frames == clip.frames and back.sample_rate == 48000
    assert np.abs(back.samples - clip.samples).max() <= tolerance + 1e-9


@pytest.mark.parametrize("suffix", ["ogg", "mp3"])
def test_lossy_formats_read(tmp_path, suffix):
    clip = tone(seconds=0.5, rate=44100)
    path = tmp_path / f"x.{suffix}"
    soundfile.write(path, clip.samples, clip.sample_rate)
    back = read_audio(path)
    assert back.sample_rate == 44100 and back.channels == 2
    assert abs(back.frames - clip.frames) <= 2048  # encoder delay and padding
    assert np.isclose(np.sqrt(np.mean(back.samples ** 2)), np.sqrt(np.mean(clip.samples ** 2)), rtol=0.1)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 96000])
@pytest.mark.parametrize("channels", [1, 2, 3, 6])
def test_rates_and_channel_counts_read(tmp_path, rate, channels):
    clip = tone(seconds=0.05, rate=rate, channels=channels)
    path = tmp_path / "x.wav"
    soundfile.write(path, clip.samples, rate, subtype="FLOAT")
    back = read_audio(path)
    assert (back.frames, back.channels, back.sample_rate) == (clip.frames, channels, rate)
    np.testing.assert_array_equal(back.samples, clip.samples)


# --- bad input -----------------------------------------------------------------------------------------------------

def one_line_error(path) -> str:
    with pytest.raises(AudioError) as caught:
        read_audio(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


def test_missing_file(tmp_path):
    assert "no such file" in one_line_error(tmp_path / "nothing here.wav")


def test_directory(tmp_path):
    assert "folder" in one_line_error(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.touch()
    assert "empty" in one_line_error(path)


def test_text_named_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("kick on one, snare on three\n" * 20)
    assert "not an audio file" in one_line_error(path)


def test_zero_length_audio(tmp_path):
    path = tmp_path / "silence.wav"
    soundfile.write(path, np.zeros((0, 2), np.float32), 48000)
    assert "no audio" in one_line_error(path)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, value):
    samples = tone().samples.copy()
    samples[100, 1] = value
    path = tmp_path / "broken.wav"
    soundfile.write(path, samples, 48000, subtype="FLOAT")
    assert "NaN or infinite" in one_line_error(path)


@pytest.mark.parametrize("suffix, container", [("wav", "WAV"), ("aiff", "AIFF"), ("flac", "FLAC"), ("mp3", "MP3")])
def test_truncated_audio(tmp_path, suffix, container):
    whole = tmp_path / f"whole.{suffix}"
    soundfile.write(whole, tone(seconds=1.0).samples, 48000, format=container)
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    message = one_line_error(cut)
    assert "truncated" in message


def test_truncated_real_drum(tmp_path, drum_samples):
    data = drum_samples["wav"].read_bytes()
    cut = tmp_path / "cut kick.wav"
    cut.write_bytes(data[: len(data) * 2 // 3])
    assert "truncated" in one_line_error(cut)


def test_garbage_after_a_valid_header(tmp_path):
    path = tmp_path / "noise.flac"
    path.write_bytes(b"fLaC" + os.urandom(4000))
    one_line_error(path)


# --- writing -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, subtype, tolerance", [("pcm16", "PCM_16", 1 / 2 ** 15), ("pcm24", "PCM_24", 1 / 2 ** 23),
                                                     ("float", "FLOAT", 0)])
def test_write_formats(tmp_path, fmt, subtype, tolerance):
    clip = tone(channels=1, rate=44100, peak=0.25)
    path = write_audio(tmp_path / "out.wav", clip, fmt)
    info = soundfile.info(str(path))
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", subtype, 44100, 1)
    back = read_audio(path)
    assert np.abs(back.samples - clip.samples).max() <= tolerance
    assert np.isclose(np.abs(back.samples).max(), 0.25, atol=1e-3)  # no normalising


def test_default_format_is_pcm24(tmp_path):
    path = write_audio(tmp_path / "out.wav", tone())
    assert soundfile.info(str(path)).subtype == "PCM_24"


@pytest.mark.parametrize("fmt", ["pcm16", "pcm24"])
def test_pcm_over_full_scale_is_turned_down_as_a_whole_never_clipped_nor_wrapped(tmp_path, fmt):
    samples = np.array([[1.5, -3.0], [1.0, -1.0], [0.5, -0.5]], np.float32)
    back = read_audio(write_audio(tmp_path / "loud.wav", Clip(samples, 48000), fmt)).samples
    np.testing.assert_allclose(back, samples * (PCM_PEAK / 3.0), atol=1 / 2 ** 15)


def test_float_keeps_what_is_over_full_scale(tmp_path):
    samples = np.array([[1.5, -3.0], [1.0, -1.0], [0.5, -0.5]], np.float32)
    back = read_audio(write_audio(tmp_path / "loud.wav", Clip(samples, 48000), "float")).samples
    assert np.array_equal(back, samples)


def test_never_overwrites(tmp_path):
    path = tmp_path / "kick.wav"
    path.write_bytes(b"the producer's own file")
    with pytest.raises(AudioError, match="already exists"):
        write_audio(path, tone())
    assert path.read_bytes() == b"the producer's own file"
    assert os.listdir(tmp_path) == ["kick.wav"]  # no temporary left behind


def test_never_overwrites_without_hard_links(tmp_path, monkeypatch):
    """Filesystems without hard links take the other road, which must refuse a taken name just the same."""
    def no_links(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(audio.os, "link", no_links)
    first = write_audio(tmp_path / "a.wav", tone())
    assert read_audio(first).frames == tone().frames
    taken = tmp_path / "b.wav"
    taken.write_bytes(b"mine")
    with files.Folder(tmp_path) as folder, pytest.raises(FileExistsError):
        folder.link(folder.write_temporary(audio.encode_wav(tone())), taken.name)
    assert taken.read_bytes() == b"mine"


def test_refuses_non_wav_names_and_unknown_formats(tmp_path):
    with pytest.raises(AudioError, match=r"\.wav"):
        write_audio(tmp_path / "out.flac", tone())
    with pytest.raises(AudioError, match="pcm16, pcm24, float"):
        write_audio(tmp_path / "out.wav", tone(), "mp3")
    with pytest.raises(AudioError, match="no such folder"):
        write_audio(tmp_path / "missing" / "out.wav", tone())
    assert os.listdir(tmp_path) == []


def test_refuses_to_write_nan(tmp_path):
    samples = tone().samples.copy()
    samples[3, 0] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        write_audio(tmp_path / "out.wav", Clip(samples, 48000))
    assert os.listdir(tmp_path) == []


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(audio.soundfile.SoundFile, "write", full_disk)
    with pytest.raises(AudioError, match="No space left"):
        write_audio(tmp_path / "out.wav", tone())
    assert os.listdir(tmp_path) == []


def test_metadata_round_trip(tmp_path):
    metadata = {"model": "dd-drums-small", "model_hash": "ab" * 32, "sampler": "v-iplms", "steps": 50,
                "noise": 0.4, "seed": 1234567, "source": "/music/Drüms/kick 01.wav",
                "command": "dd-bridge vary '/music/Drüms/kick 01.wav' --seed 1234567 " + "--x " * 600}
    assert len(str(metadata)) > 2100  # past libsndfile's own limit for reading comments
    path = write_audio(tmp_path / "out.wav", tone(), metadata=metadata)
    assert read_metadata(path) == metadata
    assert read_audio(path).frames == tone().frames


def test_metadata_absent(tmp_path, drum_samples):
    assert read_metadata(write_audio(tmp_path / "plain.wav", tone())) is None
    assert read_metadata(drum_samples["flac"]) is None


def test_numbered_names(tmp_path):
    assert next_free_path(tmp_path, "kick var") == tmp_path / "kick var 001.wav"
    paths = [write_numbered(tmp_path, "kick var", tone()) for _ in range(3)]
    assert [p.name for p in paths] == ["kick var 001.wav", "kick var 002.wav", "kick var 003.wav"]
    paths[1].unlink()  # a producer deleted one: new files still sort after the old ones
    assert write_numbered(tmp_path, "kick var", tone()).name == "kick var 004.wav"
    (tmp_path / "kick var 010.wav").write_bytes(b"x")
    (tmp_path / "kick var 2.wav").write_bytes(b"x")
    (tmp_path / "snare var 050.wav").write_bytes(b"x")
    assert next_free_path(tmp_path, "kick var").name == "kick var 011.wav"
    assert next_free_path(tmp_path / "new folder", "x").name == "x 001.wav"


def test_racing_writers_never_share_a_name(tmp_path):
    written, errors = [], []

    def writer(index):
        try:
            for copy in range(4):
                written.append((write_numbered(tmp_path, "hat var", tone(0.02), metadata={"w": index, "c": copy})))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(written)) == 24
    assert sorted(os.listdir(tmp_path)) == [f"hat var {n:03d}.wav" for n in range(1, 25)]
    assert len({(m["w"], m["c"]) for m in map(read_metadata, written)}) == 24


# --- to and from the model ---------------------------------------------------------------------------------------

def test_stereo_at_model_rate_passes_through_exactly():
    clip = tone(rate=48000)
    x = to_model(clip, 48000)
    assert x.dtype == torch.float32 and x.shape == (2, clip.frames)
    np.testing.assert_array_equal(x.numpy().T, clip.samples)
    np.testing.assert_array_equal(from_model(x, clip, sample_rate=48000).samples, clip.samples)


def test_mono_is_duplicated_and_averaged_back():
    clip = tone(channels=1)
    x = to_model(clip, 48000)
    np.testing.assert_array_equal(x[0], x[1])
    out = from_model(torch.stack([x[0] * 0.5, x[1] * 1.5]), clip, sample_rate=48000)
    assert out.channels == 1
    np.testing.assert_allclose(out.samples, clip.samples, atol=1e-6)


@pytest.mark.parametrize("rate", [22050, 44100, 96000])
def test_resampling_round_trip_keeps_frames_and_sound(rate):
    clip = tone(seconds=0.3, rate=rate)
    x = to_model(clip, 48000)
    assert abs(x.shape[1] - round(clip.seconds * 48000)) <= 1
    back = from_model(x, clip, sample_rate=48000)
    assert (back.frames, back.channels, back.sample_rate) == (clip.frames, 2, rate)
    inner = slice(rate // 100, -rate // 100)  # the ends see the resampler's edge
    assert np.abs(back.samples[inner] - clip.samples[inner]).max() < 1e-3


def test_from_model_fits_any_length_to_the_source():
    clip = tone(seconds=0.1, rate=44100)
    for length in (4000, 4800, 5000):
        assert from_model(torch.zeros(2, length), clip, sample_rate=48000).frames == clip.frames


def test_multichannel_pairs():
    quad = Clip(np.array([[1.0, 2.0, 3.0, 4.0]], np.float32), 48000)
    np.testing.assert_allclose(to_model(quad, 48000)[:, 0], [2.0, 3.0])  # (FL + BL) / 2, (FR + BR) / 2
    surround = Clip(np.array([[0.0, 0.0, 0.9, 0.0, 0.0, 0.0]], np.float32), 48000)  # only the centre (5.1 order)
    assert to_model(surround, 48000)[:, 0].tolist() == pytest.approx([0.3, 0.0])  # centre and LFE pair kept, not dropped
    three = Clip(np.array([[0.2, 0.4, 0.6]], np.float32), 48000)  # L R C
    np.testing.assert_allclose(to_model(three, 48000)[:, 0], [0.4, 0.5])
    out = from_model(torch.tensor([[0.2], [0.6]]), three, sample_rate=48000)
    np.testing.assert_allclose(out.samples, [[0.2, 0.6, 0.4]])
    np.testing.assert_allclose(from_model(torch.tensor([[0.2], [0.6]]), quad, sample_rate=48000).samples,
                               [[0.2, 0.6, 0.2, 0.6]])


def test_clip_properties():
    clip = Clip(np.zeros(44100), 44100)
    assert (clip.frames, clip.channels, clip.seconds) == (44100, 1, 1.0)
    with pytest.raises(ValueError):
        Clip(np.zeros((2, 2, 2)), 48000)


def test_written_files_get_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    path = write_audio(tmp_path / "out.wav", tone())
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("signal", ["tone", "noise"])
def test_cut_ogg_is_the_rest_or_one_line(tmp_path, signal):
    """Ogg has no total length to compare with: a cut file is the shorter sound or, where libsndfile finds it
    malformed, a one-line error; never a crash."""
    samples = tone(seconds=1.0).samples if signal == "tone" else \
        np.random.default_rng(0).uniform(-0.5, 0.5, (48000, 2)).astype(np.float32)
    whole = tmp_path / "whole.ogg"
    soundfile.write(whole, samples, 48000)
    data = whole.read_bytes()
    cut = tmp_path / "cut.ogg"
    cut.write_bytes(data[: len(data) // 2])
    try:
        clip = read_audio(cut)
    except AudioError as error:
        assert "\n" not in str(error) and str(cut) in str(error)
    else:
        assert 0 < clip.frames < 48000 and np.isfinite(clip.samples).all()


@pytest.mark.parametrize("region", [None, Region(0.05, 0.1, tail=0.02)])
def test_what_the_header_says_before_decoding_is_what_is_decoded(drum_samples, region):
    """The service decides from the header (prefetch or not, too long to render) what it used to decide from the
    decoded clip: the two must agree, and the check changes nothing that is read."""
    for path in drum_samples.values():
        seen = []
        clip = read_audio(path, region, fits=seen.append)
        [header] = seen
        assert (header.frames, header.sample_rate, header.channels, header.seconds, header.nbytes) == \
            (clip.frames, clip.sample_rate, clip.channels, clip.seconds, clip.nbytes), path
        assert np.array_equal(clip.samples, read_audio(path, region).samples)


def test_a_check_of_the_header_that_refuses_stops_the_read_before_decoding(drum_samples):
    def refuse(header):
        raise AudioError(f"{header.frames} frames: no")
    with pytest.raises(AudioError, match="frames: no"):
        read_audio(drum_samples["wav"], fits=refuse)
