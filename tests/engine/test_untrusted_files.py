"""Model files, YAML and audio that try to hurt: alias bombs, a FIFO or /dev/zero named .ckpt, a file larger than
any model, a pickle that would run a command, a FIFO put in an audio file's place, audio longer than the memory
holds. Each is one clear line, at once, with nothing run and nothing blocked."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from bridge.daemon.config import load_config
from bridge.engine.checkpoints import MAX_MODEL_FILE_BYTES, load_model
from bridge.engine import catalogue
from bridge.engine.modelcard import read_card
from bridge.errors import AudioError, BridgeError, CheckpointError, ConfigError
from bridge.training.train import read_settings

REPO = Path(__file__).resolve().parents[2]


def alias_bomb(levels: int = 7, width: int = 9) -> str:
    """A few hundred bytes that safe_load expands to width**levels strings (4.8 million here)."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_a_model_card_with_an_alias_bomb_is_refused_at_once_in_one_short_line(tmp_path):
    card = tmp_path / "bomb.yaml"
    card.write_text(alias_bomb() + f"name: *a6\nsample_rate: 48000\nwindow: 65536\narchitecture: {{}}\n")
    assert card.stat().st_size < 700
    started = time.monotonic()
    with pytest.raises(CheckpointError) as caught:
        read_card(card)
    message = str(caught.value)
    assert time.monotonic() - started < 2
    assert len(message) < 300 and "\n" not in message and "aliases" in message and "bomb.yaml" in message


def test_a_config_with_an_alias_bomb_is_refused_at_once_in_one_short_line(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(alias_bomb() + "device: *a6\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert len(str(caught.value)) < 300 and "aliases" in str(caught.value)


@pytest.mark.parametrize("content, words", [(alias_bomb(), "not valid YAML at line 2: aliases (*name) are not "
                                                          "accepted"),
                                            (b"\xff\xfe not text", "not UTF-8 text"),
                                            (None, "cannot read (is a folder)")])
def test_every_yaml_file_is_refused_in_the_same_words(tmp_path, monkeypatch, content, words):
    """Model cards, a run's settings and a downloads catalogue go through one reader (bridge.files.read_yaml)."""
    path = tmp_path / "run.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    monkeypatch.setenv(catalogue.CATALOGUE_ENV, str(path))
    messages = []
    for read, error in ((read_card, CheckpointError), (lambda p: read_settings(p.parent), BridgeError),
                        (lambda p: catalogue.releases(), ConfigError)):
        with pytest.raises(error) as caught:
            read(path)
        messages.append(str(caught.value))
    assert all(f"{path}: " in message and message.endswith(words) for message in messages), messages


def test_a_long_bad_value_is_not_repeated_whole_in_the_message(tmp_path):
    card = tmp_path / "long.yaml"
    card.write_text("name: " + "x" * 500_000 + "!\nsample_rate: 48000\nwindow: 65536\narchitecture: {}\n")
    with pytest.raises(CheckpointError) as caught:
        read_card(card)
    assert len(str(caught.value)) < 300 and "name must be" in str(caught.value)


def convert(source: Path, tmp_path: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """`dd-bridge convert` in a child limited to 4 GiB of address space: a file read without bound fails there
    instead of taking the machine's memory; a blocked read runs into the timeout."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "bridge", "convert", str(source), str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=timeout, preexec_fn=limit)


def test_a_fifo_named_ckpt_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "gwf-440k.ckpt"
    os.mkfifo(fifo)
    result = convert(fifo, tmp_path)  # before: blocked for ever reading the pipe (TimeoutExpired)
    assert result.returncode == 1 and "not a regular file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_ckpt_that_leads_to_dev_zero_is_refused_without_reading(tmp_path):
    zero = tmp_path / "jmann-small-190k.ckpt"
    zero.symlink_to("/dev/zero")
    started = time.monotonic()
    result = convert(zero, tmp_path)
    assert result.returncode == 1 and "not a regular file" in result.stderr, result.stderr
    assert time.monotonic() - started < 60


def test_a_file_larger_than_any_model_is_refused_by_its_size(tmp_path):
    huge = tmp_path / "huge.safetensors"
    with open(huge, "wb") as file:  # sparse: no disk space taken
        file.truncate(MAX_MODEL_FILE_BYTES + 1)
    (tmp_path / "huge.yaml").write_text("name: huge\nsample_rate: 48000\nwindow: 65536\narchitecture: {}\n")
    with pytest.raises(CheckpointError, match="over the limit of 16.0 GiB"):
        load_model(huge)


class RunsACommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_would_run_a_command_gets_the_projects_own_message(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "fine-tune.ckpt"
    torch.save({"state_dict": {"diffusion_ema.x": RunsACommand(marker)}}, path)
    with pytest.raises(CheckpointError) as caught:
        load_model(path)
    message = str(caught.value)
    assert "refused" in message and "system, which could run code" in message, message
    assert "weights_only" not in message and "\n" not in message
    assert not marker.exists()



# -- audio: a FIFO in a source's place, a file longer than the memory holds (the service review, /work/s39) --------
def long_wav(path: Path, frames: int, rate: int = 8000) -> Path:
    """A valid 8-bit mono WAV of ``frames`` frames, sparse on disk: 4 bytes of memory per frame once decoded."""
    import struct
    header = (b"RIFF" + struct.pack("<I", 36 + frames) + b"WAVE" + b"fmt " +
              struct.pack("<IHHIIHH", 16, 1, 1, rate, rate, 1, 8) + b"data" + struct.pack("<I", frames))
    with open(path, "wb") as file:
        file.write(header)
        file.truncate(len(header) + frames)
    return path


def test_a_decode_larger_than_the_memory_free_is_refused_in_one_line(tmp_path):
    """1 h 44 min of 8-bit mono (200 MB decoded) read where 150 MB of address space is left: one line naming the
    file, before decoding, not a MemoryError halfway (or, without a limit, the OOM killer)."""
    path = long_wav(tmp_path / "field recording.wav", 50_000_000)
    code = ("import re, resource\n"
            "import bridge.engine.memory  # loaded before the limit\n"
            "from bridge.engine.audio import read_audio\n"
            "from bridge.errors import AudioError\n"
            "size = int(re.search(r'^VmSize:\\s+(\\d+) kB', open('/proc/self/status').read(), re.M).group(1)) << 10\n"
            "resource.setrlimit(resource.RLIMIT_AS, (size + (150 << 20), size + (150 << 20)))\n"
            "try:\n"
            f"    read_audio({str(path)!r})\n"
            "except AudioError as error:\n"
            "    print(error)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    line = result.stdout.strip()
    assert "\n" not in line and line.startswith(f"{path}: 6250.0 s of 1 channel(s) at 8000 Hz decode to 0.2 GiB")
    assert "more than the memory free now" in line


def test_weighing_a_long_decode_loads_no_torch(tmp_path):
    """`dd-bridge play song.wav` and audition read whole songs: weighing their decode against the memory free must
    not load torch (a second of start-up, and a crash on Windows, which has no `resource`)."""
    path = long_wav(tmp_path / "song.wav", 70_000_000)  # 8-bit: 280 MB as float32, over UNCHECKED_DECODE_BYTES
    code = ("import sys\n"
            "from bridge.engine import audio\n"
            f"_, header = audio.read_header({str(path)!r})\n"
            "assert header.nbytes > audio.UNCHECKED_DECODE_BYTES\n"
            f"audio._check_memory({str(path)!r}, header)  # weighed, and it fits\n"
            "print('torch' in sys.modules)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr[-2000:]


def _in_a_thread(call, seconds: float = 10.0):
    """call() in a thread; (finished, what it raised)."""
    raised = []

    def run():
        try:
            call()
        except BaseException as error:  # noqa: BLE001 (handed to the test)
            raised.append(error)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), raised


def _release(fifo: Path) -> None:
    """Let an open of the FIFO that waits for a writer return (before the fix: the test's own thread)."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def test_a_region_of_a_fifo_is_refused_without_waiting(tmp_path):
    """resolve_region runs on the service's network thread (/dd/repaint's range): a FIFO named .wav there must
    not block it."""
    from bridge.engine.audio import resolve_region
    from bridge.engine.regions import Region

    fifo = tmp_path / "take.wav"
    os.mkfifo(fifo)
    try:
        finished, raised = _in_a_thread(lambda: resolve_region(fifo, Region(0.0, 1.0)))
        assert finished, "waited for a writer"
        assert [type(error) for error in raised] == [AudioError] and str(fifo) in str(raised[0])
    finally:
        _release(fifo)


@pytest.mark.parametrize("reader", ["read_header", "resolve_region", "read_audio"])
def test_a_fifo_put_in_place_after_the_check_is_refused_without_waiting(tmp_path, monkeypatch, drum_samples, reader):
    """The race a client can win: a regular file when check_input looks, a FIFO when it is opened. The header is
    read through the opener that refuses what is not a regular file, and the stat is that file's own."""
    from bridge import files
    from bridge.engine import audio
    from bridge.engine.regions import Region

    clip, fifo = tmp_path / "x.wav", tmp_path / "f.wav"
    clip.symlink_to(drum_samples["wav"])
    os.mkfifo(fifo)
    real_check = files.check_input

    def check_then_swap(path, refuse, what="an audio file"):
        info = real_check(path, refuse, what)
        (tmp_path / "next").symlink_to(fifo)
        os.replace(tmp_path / "next", clip)
        return info

    monkeypatch.setattr(files, "check_input", check_then_swap)
    read = {"read_header": lambda: audio.read_header(clip),
            "resolve_region": lambda: audio.resolve_region(clip, Region(0.0, 0.1)),
            "read_audio": lambda: audio.read_audio(clip)}[reader]
    try:
        finished, raised = _in_a_thread(read)
        assert finished, "waited for a writer"
        assert [type(error) for error in raised] == [AudioError], raised
        assert str(raised[0]) == f"{clip}: cannot read (not a regular file but a device, pipe or socket)"
    finally:
        _release(fifo)
