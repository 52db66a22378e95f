"""`dd-bridge generate | vary | interpolate` as a user runs them: a subprocess, real drum one-shots, a model file."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from bridge.engine.audio import read_audio, read_metadata

REPO = Path(__file__).resolve().parents[2]
FAST = ["--steps", "6"]


def dd_bridge(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    # One thread: the tiny model's convolutions are too small to share, and on a busy 2-core machine two threads
    # waiting on each other took 6x the time of one.
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "bridge", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def written(result: subprocess.CompletedProcess, count: int) -> list[Path]:
    """The paths a successful run printed: stdout holds them and nothing else."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    paths = [Path(line) for line in result.stdout.splitlines()]
    assert len(paths) == count and all(p.is_absolute() and p.is_file() for p in paths), result.stdout
    return paths


def relative_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b ** 2)))


@pytest.fixture(scope="module")
def three_channel_96k(tmp_path_factory, drum_samples) -> Path:
    """A real drum laid out as L R C at 96 kHz: an odd rate and more channels than the model has."""
    drum = read_audio(drum_samples["wav"]).samples[:, 0]
    path = tmp_path_factory.mktemp("sources") / "tambourine LRC.wav"
    soundfile.write(path, np.stack([drum, 0.5 * drum, 0.25 * drum], axis=1), 96000, subtype="PCM_24")
    return path


@pytest.mark.parametrize("kind", ["wav", "flac", "aiff", "3ch-96k"])
def test_vary_keeps_length_rate_and_channels(tmp_path, tiny_model_path, drum_samples, three_channel_96k, kind):
    source_path = three_channel_96k if kind == "3ch-96k" else drum_samples[kind]
    source = read_audio(source_path)
    result = dd_bridge("vary", source_path, "--model", tiny_model_path, "--count", 2, "--seed", 3,
                       "--out", tmp_path / "out", *FAST)
    paths = written(result, 2)
    assert [p.name for p in paths] == [f"{source_path.stem} var 001.wav", f"{source_path.stem} var 002.wav"]
    outputs = [read_audio(p) for p in paths]
    for output in outputs:
        assert (output.frames, output.sample_rate, output.channels) == \
               (source.frames, source.sample_rate, source.channels)
        assert soundfile.info(str(paths[0])).subtype == "PCM_24"
        assert np.abs(output.samples).max() <= 1.0
    assert not np.array_equal(outputs[0].samples, outputs[1].samples)
    metadata = read_metadata(paths[1])
    assert metadata["sources"] == [str(source_path.resolve())]
    assert (metadata["seed"], metadata["count"], metadata["index"], metadata["noise"]) == (3, 2, 2, 0.5)
    assert metadata["model_hash"] and metadata["model"] == str(tiny_model_path)


def test_noise_level_is_monotone_in_distance_from_the_source(tmp_path, tiny_model_path, drum_samples):
    source_path = drum_samples["aiff"]
    source = read_audio(source_path)
    distances = {}
    for noise in (0.05, 0.5, 0.9):
        result = dd_bridge("vary", source_path, "--model", tiny_model_path, "--noise", noise, "--seed", 1,
                           "--out", tmp_path / str(noise), "--format", "float", *FAST)
        distances[noise] = relative_distance(read_audio(written(result, 1)[0]).samples, source.samples)
    assert distances[0.05] < distances[0.5] < distances[0.9], distances
    assert distances[0.05] < 0.25 * distances[0.9], distances


def test_a_seed_reproduces_a_render_bit_for_bit_and_never_overwrites(tmp_path, tiny_model_path, drum_samples):
    source = drum_samples["flac"]
    args = ("vary", source, "--model", tiny_model_path, "--count", 2, "--seed", 42, "--format", "float",
            "--out", tmp_path, *FAST)
    first = written(dd_bridge(*args), 2)
    before = [p.read_bytes() for p in first]
    second = written(dd_bridge(*args), 2)
    assert [p.name for p in second] == [f"{source.stem} var 003.wav", f"{source.stem} var 004.wav"]
    assert [p.read_bytes() for p in first] == before  # untouched
    for a, b in zip(first, second):
        assert np.array_equal(read_audio(a).samples, read_audio(b).samples)


def test_each_output_is_recreated_alone_from_its_stored_command(tmp_path, tiny_model_path, drum_samples):
    """Without --seed every output gets its own seed; the command in its metadata makes that one file again."""
    result = dd_bridge("vary", drum_samples["wav"], "--model", tiny_model_path, "--count", 2, "--format", "float",
                       "--out", tmp_path / "first", *FAST)
    second = written(result, 2)[1]
    command = shlex.split(read_metadata(second)["command"])
    assert command[0] == "dd-bridge" and "--seed" in command
    again = written(dd_bridge(*command[1:], "--out", tmp_path / "again"), 1)[0]
    assert np.array_equal(read_audio(again).samples, read_audio(second).samples)


def test_generate_in_the_current_folder(tmp_path, tiny_model_path):
    result = dd_bridge("generate", "--model", tiny_model_path, "--seconds", 0.25, "--count", 2, "--seed", 5, *FAST,
                       cwd=tmp_path)
    paths = written(result, 2)
    assert [p.name for p in paths] == ["tiny-test 001.wav", "tiny-test 002.wav"]
    assert all(p.parent == tmp_path for p in paths)
    for path in paths:
        clip = read_audio(path)
        assert (clip.frames, clip.sample_rate, clip.channels) == (12000, 48000, 2)
        assert np.abs(clip.samples).max() > 0
    assert "--seconds 0.25" in read_metadata(paths[0])["command"]


def test_interpolate_gives_count_outputs_shaped_like_a(tmp_path, tiny_model_path, drum_samples):
    a, b = drum_samples["aiff"], drum_samples["flac"]
    result = dd_bridge("interpolate", a, b, "--model", tiny_model_path, "--count", 3, "--out", tmp_path, "--steps", 4)
    paths = written(result, 3)
    assert [p.name for p in paths] == [f"{a.stem} to {b.stem} {n:03d}.wav" for n in (1, 2, 3)]
    source = read_audio(a)
    outputs = [read_audio(p) for p in paths]
    for output in outputs:
        assert (output.frames, output.sample_rate, output.channels) == \
               (source.frames, source.sample_rate, source.channels)
    assert read_metadata(paths[2])["sources"] == [str(a.resolve()), str(b.resolve())]


def _bad_inputs(tmp: Path, drum: Path) -> dict[str, Path]:
    (tmp / "empty.wav").touch()
    (tmp / "notes.wav").write_text("kick on one\n" * 50)
    data = drum.read_bytes()
    (tmp / "cut.wav").write_bytes(data[: len(data) // 2])
    samples = read_audio(drum).samples.copy()
    samples[10] = np.nan
    soundfile.write(tmp / "nan.wav", samples, 44100, subtype="FLOAT")
    (tmp / "a folder.wav").mkdir()
    return {"missing": tmp / "missing.wav", "directory": tmp / "a folder.wav", "empty": tmp / "empty.wav",
            "text": tmp / "notes.wav", "truncated": tmp / "cut.wav", "nan": tmp / "nan.wav"}


@pytest.mark.parametrize("case, words", [("missing", "no such file"), ("directory", "folder"), ("empty", "empty"),
                                         ("text", "not an audio file"), ("truncated", "truncated"),
                                         ("nan", "NaN")])
def test_bad_input_is_one_line_and_a_failure(tmp_path, tiny_model_path, drum_samples, case, words):
    path = _bad_inputs(tmp_path, drum_samples["wav"])[case]
    result = dd_bridge("vary", path, "--model", tiny_model_path, "--out", tmp_path / "out")
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(path) in result.stderr and words in result.stderr
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


@pytest.mark.parametrize("args, words", [
    (["--model", "{tmp}/no such model.safetensors"], "no such model.safetensors"),
    (["--sampler", "v-imaginary"], "v-imaginary"),
    (["--out", "{source}"], "is a file"),
])
def test_bad_options_are_one_line(tmp_path, tiny_model_path, drum_samples, args, words):
    source = drum_samples["wav"]
    args = [arg.format(tmp=tmp_path, source=source) for arg in args]
    if "--model" not in args:
        args += ["--model", tiny_model_path]
    result = dd_bridge("--quiet", "vary", source, *args, "--steps", 2)
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert words in result.stderr


def test_debug_and_quiet_also_after_the_command(tmp_path, tiny_model_path):
    """A one-line error ends "(run with --debug ...)": added at the end of the same line, it works there too."""
    missing = tmp_path / "missing.wav"
    plain = dd_bridge("vary", missing, "--model", tiny_model_path)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr and "no such file" in plain.stderr
    for flags in (["--debug"], ["--model", tiny_model_path, "--debug"]):
        late = dd_bridge("vary", missing, *flags)
        assert late.returncode == 1 and "Traceback" in late.stderr, late.stderr
    quiet = dd_bridge("models", "--quiet")
    assert quiet.returncode == 0 and "dd-drums-small" in quiet.stdout


def test_interpolate_needs_two_outputs(tmp_path, tiny_model_path, drum_samples):
    result = dd_bridge("--quiet", "interpolate", drum_samples["wav"], drum_samples["flac"], "--model",
                       tiny_model_path, "--count", 1, "--out", tmp_path)
    assert result.returncode != 0 and result.stderr.count("\n") == 1 and "count" in result.stderr, result.stderr
    assert os.listdir(tmp_path) == []


def test_vary_and_interpolate_a_region_of_a_file(tmp_path, tiny_model_path, drum_loop):
    """--start/--end: outputs exactly that long, named after the region, which their recipe carries."""
    result = dd_bridge("vary", drum_loop, "--start", 1.0, "--end", 1.2, "--tail", 0.05, "--count", 2,
                       "--model", tiny_model_path, "--out", tmp_path, *FAST)
    paths = written(result, 2)
    assert [p.name for p in paths] == ["loop 1.000-1.200s var 001.wav", "loop 1.000-1.200s var 002.wav"]
    clip = read_audio(paths[0])
    assert (clip.frames, clip.sample_rate, clip.channels) == (round(0.25 * 44100), 44100, 2)
    meta = read_metadata(paths[1])
    assert meta["region"] == [1.0, 1.2] and meta["tail"] == 0.05
    assert "--start 1.0 --end 1.2 --tail 0.05" in meta["command"]
    again = written(dd_bridge(*shlex.split(meta["command"])[1:], "--out", tmp_path / "again"), 1)[0]
    assert np.array_equal(read_audio(again).samples, read_audio(paths[1]).samples)

    result = dd_bridge("interpolate", drum_loop, drum_loop, "--start", 2.0, "--b-start", 0.5, "--b-end", 0.6,
                       "--count", 2, "--model", tiny_model_path, "--out", tmp_path, "--steps", 2)
    paths = written(result, 2)
    assert [p.name for p in paths] == [f"loop 2.000-3.000s to loop 0.500-0.600s 00{i}.wav" for i in (1, 2)]
    assert read_audio(paths[0]).frames == 44100
    assert "--start 2.0 --end 3.0 --b-start 0.5 --b-end 0.6" in read_metadata(paths[0])["command"]


@pytest.mark.parametrize("args, words", [
    (["--start", 3.5], "start 3.5 s is past the end of loop.wav (3.000 s)"),
    (["--start", 1.2, "--end", 1.0], "start (1.2 s) must be before end (1 s)"),
])
def test_a_region_outside_the_file_is_one_line(tmp_path, tiny_model_path, drum_loop, args, words):
    result = dd_bridge("vary", drum_loop, *args, "--model", tiny_model_path, "--out", tmp_path / "out")
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert words in result.stderr and not (tmp_path / "out").exists()


def test_finish_off_is_the_network_alone_and_is_recreated(tmp_path, tiny_model_path):
    finished = written(dd_bridge("generate", "--model", tiny_model_path, "--seed", "5", "--seconds", "0.1",
                                 *FAST, "--out", tmp_path / "on"), 1)[0]
    raw = written(dd_bridge("generate", "--model", tiny_model_path, "--seed", "5", "--seconds", "0.1", *FAST,
                            "--finish", "off", "--out", tmp_path / "off"), 1)[0]
    command = shlex.split(read_metadata(raw)["command"])
    assert command[command.index("--finish") + 1] == "off"
    assert "--finish" not in read_metadata(finished)["command"]  # the default is not named
    on, off = read_audio(finished).samples, read_audio(raw).samples
    assert abs(float(np.abs(on.mean(axis=0)).max())) < 1e-3  # finished: no offset left
    assert not np.array_equal(on, off)
    again = written(dd_bridge(*command[1:], "--out", tmp_path / "again"), 1)[0]
    assert np.array_equal(read_audio(again).samples, off)


def test_generate_shape_is_named_in_the_command_and_refused_with_a_loop(tmp_path, tiny_model_path):
    """--shape 0: the model alone (no heard class's ceiling), named in the recreating command and made again to the
    bit; the default is not named; with --loop it is one line."""
    shaped = written(dd_bridge("generate", "--model", tiny_model_path, "--seed", "5", "--seconds", "0.1", *FAST,
                               "--out", tmp_path / "on"), 1)[0]
    alone = written(dd_bridge("generate", "--model", tiny_model_path, "--seed", "5", "--seconds", "0.1", *FAST,
                              "--shape", "0", "--out", tmp_path / "off"), 1)[0]
    assert "--shape" not in read_metadata(shaped)["command"]
    command = shlex.split(read_metadata(alone)["command"])
    assert command[command.index("--shape") + 1] == "0.0"
    assert not np.array_equal(read_audio(shaped).samples, read_audio(alone).samples)
    again = written(dd_bridge(*command[1:], "--out", tmp_path / "again"), 1)[0]
    assert np.array_equal(read_audio(again).samples, read_audio(alone).samples)
    refused = dd_bridge("generate", "--model", tiny_model_path, "--loop", "--bars", "1", "--bpm", "120", "--shape",
                        "0.5", "--out", tmp_path / "loop")
    assert refused.returncode == 1 and "generate --shape is for one-shots" in refused.stderr
