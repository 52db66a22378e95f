"""The render commands' files as the review of audio input found them: a long source name keeps its labels and
its numbering, a name with a newline is one line in an error, a silent source is said to give silent variations."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
import soundfile

from bridge import files
from tests.cli.test_render_cli import dd_bridge, written

FAST = ["--steps", "2"]


def test_a_251_byte_source_name_keeps_its_loop_label_and_its_numbering(tmp_path, tiny_model_path, drum_loop):
    source = tmp_path / ("y" * 251 + ".wav")
    shutil.copy(drum_loop, source)
    out = tmp_path / "out"

    def vary(count: int) -> list[str]:
        result = dd_bridge("vary", source, "--start", 0.05, "--end", 0.35, "--loop", "--bars", 0.25, "--bpm", 200,
                           "--count", count, "--model", tiny_model_path, "--out", out, *FAST)
        names = [path.name for path in written(result, count)]
        assert all(len(name.encode()) <= files.NAME_BYTES for name in names)
        return names

    first = vary(2)
    assert [name[-48:] for name in first] == [f" 0.050-0.350s loop 0.25 bars 200 bpm var 00{n}.wav" for n in "12"]
    assert first[0].startswith("yyyy")
    assert vary(1)[0].endswith(" loop 0.25 bars 200 bpm var 003.wav")  # a second run continues
    (out / first[0]).unlink()
    assert vary(1)[0].endswith(" loop 0.25 bars 200 bpm var 004.wav")  # after the highest, not the free 001


@pytest.mark.skipif(sys.platform == "win32", reason="Windows names cannot hold a newline")
def test_an_error_naming_a_file_with_a_newline_is_one_line(tmp_path, tiny_model_path, drum_samples):
    data = drum_samples["wav"].read_bytes()
    source = tmp_path / "bad\nname.wav"
    source.write_bytes(data[: len(data) // 2])  # cut short: refused, naming the file
    result = dd_bridge("vary", source, "--model", tiny_model_path, "--out", tmp_path / "out", *FAST)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"dd-bridge vary: error: {tmp_path}/bad\\nname.wav: truncated: "), result.stderr


def test_variations_of_digital_silence_say_so_once(tmp_path, tiny_model_path):
    source = tmp_path / "silence.wav"
    soundfile.write(source, np.zeros((9600, 2)), 48000, subtype="PCM_16")
    warning = "the source is digital silence: its variations are silent too; --shape 0 lets the model make its own"
    result = dd_bridge("vary", source, "--count", 1, "--model", tiny_model_path, "--out", tmp_path / "out", *FAST)
    [path] = written(result, 1)
    assert result.stderr.count(warning) == 1, result.stderr
    assert not soundfile.read(path)[0].any()  # what the line says
    result = dd_bridge("vary", source, "--count", 1, "--shape", 0, "--model", tiny_model_path, "--out",
                       tmp_path / "out", *FAST)
    written(result, 1)
    assert "digital silence" not in result.stderr
    # said by the clip operations themselves (clips.vary_clip, vary_loop), so the service's presses say it too
    result = dd_bridge("vary", source, "--loop", "--count", 1, "--model", tiny_model_path, "--out", tmp_path / "out",
                       *FAST)
    written(result, 1)
    assert result.stderr.count(warning) == 1, result.stderr


def test_a_repaint_of_a_32_bit_or_float_source_keeps_it_as_it_is(tmp_path, tiny_model_path, drum_loop):
    """repaint and extend keep INPUT outside what they render: without --format, a 32-bit or float INPUT is written
    as float (it was pcm24: its lowest bits lost, and a hot float bounce turned down as a whole), a 24-bit one as
    pcm24; --format is written as asked."""
    from bridge.engine.audio import AudioHeader, kept_format, read_audio

    data, rate = soundfile.read(drum_loop, dtype="float32")
    hot = tmp_path / "hot.wav"
    soundfile.write(hot, data * 1.8, rate, subtype="FLOAT")
    source = read_audio(hot)
    for command in (["repaint", hot, "--start", 0.1, "--end", 0.2], ["extend", hot, "--seconds", 0.1]):
        result = dd_bridge(*command, "--count", 1, "--model", tiny_model_path, "--out", tmp_path / "out", *FAST)
        [path] = written(result, 1)
        assert soundfile.info(path).subtype == "FLOAT", command[0]
        kept = read_audio(path).samples[: round(0.1 * rate)]
        assert np.array_equal(kept, source.samples[: len(kept)])  # to the bit, over full scale too
        assert "hot.wav holds FLOAT samples: written as float" in result.stderr
    result = dd_bridge("repaint", hot, "--start", 0.1, "--end", 0.2, "--format", "pcm24", "--count", 1, "--model",
                       tiny_model_path, "--out", tmp_path / "out", *FAST)
    assert soundfile.info(written(result, 1)[0]).subtype == "PCM_24"
    header = lambda subtype: AudioHeader(1, 48000, 2, subtype)  # noqa: E731
    assert [kept_format(header(s), "pcm24") for s in ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "VORBIS")] == \
        ["pcm24", "pcm24", "float", "float", "float", "pcm24"]
    assert [kept_format(header(s), "pcm16") for s in ("PCM_16", "PCM_24", "FLOAT", "MPEG_LAYER_III")] == \
        ["pcm16", "pcm24", "float", "pcm16"]  # a lossy source has no depth to keep
