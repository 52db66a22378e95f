"""A loop's WAV says it is one: a smpl chunk looping the whole file and, for a loop in bars, an acid chunk with its
beats and tempo (audio.encode_wav), so a sampler or a DAW that the file is dragged into loops it at its tempo."""

from __future__ import annotations

import io
import struct

import numpy as np
import soundfile

from bridge.engine.audio import Clip, _chunks, encode_wav, read_metadata


def _chunk_map(data: bytes) -> dict[bytes, bytes]:
    assert data[:4] == b"RIFF" and struct.unpack_from("<I", data, 4)[0] == len(data) - 8  # the RIFF size holds all
    return dict(_chunks(data, 12))


def test_a_loop_in_bars_carries_its_loop_points_and_tempo_and_reads_as_before(tmp_path):
    samples = np.random.default_rng(0).uniform(-0.5, 0.5, (96000, 2)).astype(np.float32)
    metadata = {"operation": "vary", "loop": True, "bars": 1, "bpm": 120.0}
    data = encode_wav(Clip(samples, 48000), "pcm24", metadata)
    chunks = _chunk_map(data)
    smpl = struct.unpack("<9I6I", chunks[b"smpl"])
    assert smpl[2] == 20833 and smpl[3] == 60 and smpl[7] == 1  # ns a sample at 48 kHz, unity note, one loop
    assert smpl[9:13] == (0, 0, 0, 95999)  # forward, over every sample
    flags, root, _, _, beats, denominator, numerator, tempo = struct.unpack("<IHHfIHHf", chunks[b"acid"])
    assert (flags & 1, beats, numerator, denominator, tempo) == (0, 4, 4, 4, 120.0)  # a loop, not a one-shot
    path = tmp_path / "loop.wav"
    path.write_bytes(data)
    read, rate = soundfile.read(path, dtype="float32")
    assert rate == 48000 and read.shape == samples.shape  # libsndfile reads it as before
    assert np.abs(read - samples).max() < 2 ** -22
    assert read_metadata(path) == metadata


def test_a_loop_of_its_own_length_loops_without_a_tempo_and_a_one_shot_carries_neither():
    clip = Clip(np.zeros((1001, 1), np.float32), 44100)
    chunks = _chunk_map(encode_wav(clip, "float", {"loop": True}))
    assert struct.unpack("<9I6I", chunks[b"smpl"])[12] == 1000 and b"acid" not in chunks
    for metadata in ({"operation": "vary"}, {"operation": "extend", "bars": 1, "bpm": 120}, None):
        chunks = dict(_chunks(encode_wav(clip, "pcm16", metadata), 12))
        assert b"smpl" not in chunks and b"acid" not in chunks
    assert soundfile.info(io.BytesIO(encode_wav(clip, "pcm16", {"loop": True}))).frames == 1001
