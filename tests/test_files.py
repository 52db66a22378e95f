"""Writing files safely (bridge.files and every writer using it): planted links, names too long for the file
system, a folder swapped for a link mid-write, a full disk, a read-only --out, a newline in a source's name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bridge import files
from bridge.daemon import writer as writer_module
from bridge.daemon.prefetch import Source
from bridge.daemon.writer import SampleFolder
from bridge.engine.audio import Clip, read_audio, write_numbered
from bridge.engine.checkpoints import save_model
from bridge.errors import AudioError, CheckpointError, ConfigError
from bridge.training.train import SETTINGS_FILE, STATE_FILE, open_run
from tests.cli.test_render_cli import FAST, REPO, dd_bridge, written
from tests.support.service import micro_model
from tests.training.test_train import settings_for

VICTIM_TEXT = b"a file of the user's that no temporary may overwrite"


def victim(tmp_path: Path) -> Path:
    path = tmp_path / "elsewhere" / "precious.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(VICTIM_TEXT)
    return path


def tone(seconds: float = 0.05) -> Clip:
    t = np.arange(int(48000 * seconds)) / 48000
    return Clip((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 48000)


def test_convert_never_writes_through_a_link_planted_at_its_temporary_name(tmp_path):
    target = victim(tmp_path)
    out = tmp_path / "models"
    out.mkdir()
    for name in ("micro.safetensors", "micro.yaml"):  # the names the old code used: ".<name>.<pid>.partial"
        (out / f".{name}.{os.getpid()}.partial").symlink_to(target)
    weights, card = save_model(micro_model(), out / "micro")
    assert target.read_bytes() == VICTIM_TEXT
    assert weights.is_file() and not weights.is_symlink() and card.is_file() and not card.is_symlink()


def test_a_training_run_never_writes_through_a_link_planted_at_its_temporary_names(tmp_path, tiny_config):
    target = victim(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in (STATE_FILE, SETTINGS_FILE):  # the names the old code used: ".<name>.tmp"
        (run_dir / f".{name}.tmp").symlink_to(target)
    run = open_run(run_dir, settings_for(tiny_config, 2))
    run.save()
    assert target.read_bytes() == VICTIM_TEXT
    for name in (STATE_FILE, SETTINGS_FILE):
        assert (run_dir / name).is_file() and not (run_dir / name).is_symlink()


def test_temporaries_are_created_exclusively_and_never_follow_links(tmp_path, monkeypatch):
    target = victim(tmp_path)
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: "fixed")
    (tmp_path / f"{files.TEMPORARY_PREFIX}fixed{files.TEMPORARY_MARK}.wav").symlink_to(target)
    with pytest.raises(FileExistsError):
        files.create_file(tmp_path / "new.wav", b"data")
    assert target.read_bytes() == VICTIM_TEXT and not (tmp_path / "new.wav").exists()


def test_replace_file_replaces_atomically_and_create_file_never_replaces(tmp_path):
    path = tmp_path / "notes.txt"
    files.replace_file(path, b"one")
    files.replace_file(path, lambda file: file.write(b"two"))
    assert path.read_bytes() == b"two"
    with pytest.raises(FileExistsError):
        files.create_file(path, b"three")
    assert path.read_bytes() == b"two" and sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_a_planted_name_with_a_huge_number_does_not_block_later_variations(tmp_path):
    planted = "kick var " + "9" * 242 + ".wav"
    assert len(planted.encode()) == 255
    (tmp_path / planted).write_bytes(b"x")
    (tmp_path / "kick var 004.wav").write_bytes(b"x")
    assert write_numbered(tmp_path, "kick var", tone()).name == "kick var 005.wav"


def test_names_are_capped_in_bytes_so_a_62_emoji_source_can_be_varied(tmp_path):
    source = tmp_path / ("🥁" * 62 + ".wav")
    assert len(source.name.encode()) == 252
    folders = SampleFolder(tmp_path / "samples", (tmp_path,))
    path = folders.write(folders.default, tone(), "pcm16", {}, operation="vary", sources=(str(source),))
    assert path.is_file() and path.name.endswith(" var 001.wav") and len(path.name.encode()) <= 255
    stem = path.name[: -len(" var 001.wav")]
    assert path.parent.name == stem and stem and ("🥁" * 62).startswith(stem)
    again = folders.write(folders.default, tone(), "pcm16", {}, operation="vary", sources=(str(source),))
    assert again.name == f"{stem} var 002.wav"


def test_a_subfolder_swapped_for_a_link_mid_write_is_not_followed(tmp_path, monkeypatch):
    """The race: the per-source folder is checked, then an attacker swaps it for a link to elsewhere before the
    file is written. Writes go to the folder that was checked, never through the link."""
    outside = tmp_path / "outside"
    outside.mkdir()
    folders = SampleFolder(tmp_path / "samples", (tmp_path / "samples",))
    real_write = writer_module.write_numbered

    def swap_then_write(*args, **kwargs):
        kick = folders.default / "kick"
        kick.rename(folders.default / "kick-moved")
        kick.symlink_to(outside)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(writer_module, "write_numbered", swap_then_write)
    folders.write(folders.default, tone(), "pcm16", {}, operation="vary", sources=("/music/kick.wav",))
    assert list(outside.iterdir()) == []
    assert [p.name for p in (folders.default / "kick-moved").iterdir()] == ["kick var 001.wav"]


def test_a_newline_in_a_source_name_never_breaks_one_path_a_line(tmp_path, tiny_model_path, drum_samples):
    source = tmp_path / "kick\nsnare.wav"
    shutil.copy(drum_samples["wav"], source)
    result = dd_bridge("vary", source, "--model", tiny_model_path, "--count", 2, "--out", tmp_path / "out", *FAST)
    paths = written(result, 2)
    assert [p.name for p in paths] == ["kick_snare var 001.wav", "kick_snare var 002.wav"]


def _unshare_works() -> bool:
    if not shutil.which("unshare") or sys.platform != "linux":
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0


needs_mounts = pytest.mark.skipif(not _unshare_works(), reason="needs Linux user and mount namespaces (unshare -rm) "
                                                                "to mount a small or read-only file system")


def dd_bridge_on_own_mount(mount_options: str, out: Path, *args) -> subprocess.CompletedProcess:
    """dd-bridge ARGS with a fresh tmpfs (mount_options) on out, in a mount namespace of its own; stdout ends with
    a line "left:" and what the tmpfs held after the run."""
    out.mkdir()
    script = ('mount -t tmpfs -o "$1" none "$2" && shift 2 && "$@"; status=$?; echo left:; ls -A "$OUT"; '
              'exit $status')
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", OUT=str(out))
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", mount_options, str(out), sys.executable,
                           "-m", "bridge", *map(str, args)], capture_output=True, text=True, env=env, timeout=600)


@needs_mounts
def test_a_full_disk_says_no_space_left_and_leaves_nothing(tmp_path, tiny_model_path, drum_samples):
    out = tmp_path / "full"
    result = dd_bridge_on_own_mount("size=16k", out, "--quiet", "vary", drum_samples["wav"], "--model",
                                    tiny_model_path, "--out", out, "--format", "float", *FAST)
    assert result.returncode == 1, result.stderr
    assert "No space left on device" in result.stderr and "System error" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == "left:\n"  # no path printed, no temporary left behind


@needs_mounts
def test_a_read_only_out_fails_before_rendering(tmp_path, tiny_model_path, drum_samples):
    out = tmp_path / "read-only"
    result = dd_bridge_on_own_mount("ro", out, "vary", drum_samples["wav"], "--model", tiny_model_path,
                                    "--out", out, "--steps", "50")
    assert result.returncode == 1 and "--out" in result.stderr and "Read-only file system" in result.stderr
    assert "%" not in result.stderr  # no progress: it stopped before rendering
    assert result.stdout == "left:\n"


def test_the_written_audio_reads_back(tmp_path):
    path = write_numbered(tmp_path, "hat", tone())
    assert read_audio(path).frames == tone().frames


def test_a_resumable_download_never_appends_through_a_planted_link(tmp_path):
    target = victim(tmp_path)
    part = tmp_path / "gwf-440k.ckpt.part"
    part.symlink_to(target)
    with pytest.raises(OSError):
        files.open_append(part)
    assert target.read_bytes() == VICTIM_TEXT
    part.unlink()
    with files.open_append(part) as out:
        out.write(b"first")
    with files.open_append(part) as out:
        assert out.tell() == 5
        out.write(b" second")
    assert part.read_bytes() == b"first second"


def test_without_dir_fd_the_same_rules_hold_by_path(tmp_path, monkeypatch):
    """Systems without dir_fd (Windows) join names to the folder's path: never replace, next free name, atomic
    replace, a link in place of a subfolder refused."""
    monkeypatch.setattr(files, "RELATIVE", False)
    files.create_file(tmp_path / "a.txt", b"one")
    with pytest.raises(FileExistsError):
        files.create_file(tmp_path / "a.txt", b"two")
    files.replace_file(tmp_path / "b.txt", b"one")
    files.replace_file(tmp_path / "b.txt", b"two")
    assert (tmp_path / "a.txt").read_bytes() == b"one" and (tmp_path / "b.txt").read_bytes() == b"two"
    assert [write_numbered(tmp_path, "hat", tone()).name for _ in range(2)] == ["hat 001.wav", "hat 002.wav"]
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt", "hat 001.wav", "hat 002.wav"]
    folders = SampleFolder(tmp_path / "samples", (tmp_path,))
    folders.default.mkdir()
    (folders.default / "kick").symlink_to(tmp_path)
    with pytest.raises(ConfigError, match="outside the sample folder"):
        folders.write(folders.default, tone(), "pcm16", {}, operation="vary", sources=("/music/kick.wav",))


@pytest.mark.parametrize("case, words", [("missing", "no such file"), ("nul", "no such file"),
                                         ("folder", "is a folder, not an audio file"),
                                         ("empty", "empty file (0 bytes)")])
def test_the_command_line_and_the_service_refuse_a_bad_input_in_the_same_words(tmp_path, case, words):
    (tmp_path / "a folder.wav").mkdir()
    (tmp_path / "empty.wav").write_bytes(b"")
    path = {"missing": tmp_path / "missing.wav", "nul": f"{tmp_path}/a\0b.wav", "folder": tmp_path / "a folder.wav",
            "empty": tmp_path / "empty.wav"}[case]
    with pytest.raises(AudioError) as by_the_command_line:
        read_audio(path)
    with pytest.raises(AudioError) as by_the_service:
        Source.of(str(path))
    # a control character (the NUL) is shown escaped: one line, whatever the name holds
    assert str(by_the_command_line.value) == str(by_the_service.value) == f"{files.printable(path)}: {words}"


def test_new_files_are_refused_in_the_callers_words_before_and_while_taking_the_name(tmp_path):
    taken = tmp_path / "taken.yaml"
    taken.write_bytes(b"mine")
    with pytest.raises(CheckpointError, match="taken.yaml: already exists; not overwriting it"):
        files.create_new(taken, b"theirs", CheckpointError)
    with pytest.raises(AudioError, match="no such folder"):
        files.check_new(tmp_path / "missing" / "kick.wav", AudioError)
    (tmp_path / "link.wav").symlink_to(tmp_path / "nowhere")  # a dangling link is a taken name too
    with pytest.raises(AudioError, match="already exists"):
        files.check_new(tmp_path / "link.wav", AudioError)
    assert taken.read_bytes() == b"mine" and not (tmp_path / "nowhere").exists()


@needs_mounts
def test_a_loss_curve_on_a_full_disk_is_one_line_not_a_crash(tmp_path):
    """Training redraws loss.png after every save: a full disk there is the one-line error, not an OSError."""
    out = tmp_path / "full"
    out.mkdir()
    code = ("import sys; from pathlib import Path; from bridge import pictures\n"
            "pictures.loss_curve(Path(sys.argv[1]) / 'loss.png', range(500), [1 / (1 + i) for i in range(500)])")
    script = 'mount -t tmpfs -o size=4k none "$1" && "$2" -c "$3" "$1"'
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", str(out), sys.executable, code],
                            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=300)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and last.startswith("bridge.errors.BridgeError: "), result.stderr
    assert "loss.png: could not write it (No space left on device)" in last


def test_a_look_at_a_disk_gives_its_result_or_its_own_error_or_a_bounded_wait(tmp_path, monkeypatch):
    """files.answered, which the service's network thread looks at files through: what the look returns or raises
    comes back as it was (a missing file in the caller's words), and a look that does not return is given up after
    the wait, in one line naming the file."""
    (tmp_path / "a.wav").write_bytes(b"x")
    assert files.answered(lambda: files.check_input(tmp_path / "a.wav", AudioError).st_size, "a.wav", AudioError) == 1
    with pytest.raises(AudioError, match="no such file"):
        files.answered(lambda: files.check_input(tmp_path / "b.wav", AudioError), "b.wav", AudioError)
    hung = threading.Event()
    share = "/mnt/dd-bridge-test-share"  # a disk of its own (disk_of, where no mount table lists it: MOUNT_ROOTS)
    monkeypatch.setattr(files, "_mount_points", lambda: ["/", share])
    try:
        with pytest.raises(ConfigError, match=rf"^{share}/b.wav: its disk has not answered in 0.2 s"):
            files.answered(hung.wait, f"{share}/b.wav", ConfigError, seconds=0.2)
        with pytest.raises(ConfigError, match=rf"^{share}/Kicks/c.wav: not looked at: an earlier look at {share} is"):
            files.answered(lambda: 1, f"{share}/Kicks/c.wav", ConfigError, seconds=0.2)  # the same share: at once
        assert files.answered(lambda: 2, tmp_path / "a.wav", ConfigError) == 2  # another disk: as usual
    finally:
        hung.set()
    deadline = time.monotonic() + 5  # the share answers: its disk is looked at again
    while time.monotonic() < deadline and share in files._hung:
        time.sleep(0.01)
    assert files.answered(lambda: 3, f"{share}/b.wav", ConfigError) == 3


def test_the_disk_of_a_path_is_found_without_looking_at_it(monkeypatch):
    """A hung share is one disk however many folders it has; a share mounted at a disk's root is not that disk."""
    monkeypatch.setattr(files, "_mount_points", lambda: ["/", "/home", "/mnt/nas", "/mnt/nas 2"])
    assert files.disk_of("/mnt/nas/Kicks/a.wav") == files.disk_of("/mnt/nas/Snares/b.wav") == "/mnt/nas"
    assert files.disk_of("/mnt/nas 2/a.wav") == "/mnt/nas 2" and files.disk_of("/mnt/nasty/a.wav") == "/"
    assert files.disk_of("/home/me/Samples/a.wav") == "/home" and files.disk_of("/mnt/nas") == "/mnt/nas"
    monkeypatch.setattr(files, "_mount_points", lambda: [])  # macOS: no mount table to read
    assert files.disk_of("/Volumes/NAS/Drums/a.wav") == "/Volumes/NAS" and files.disk_of("/Users/me/a.wav") == "/"
