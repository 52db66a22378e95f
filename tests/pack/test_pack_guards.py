"""What a pack guards against: long source names, two runs into one folder, Ctrl-C with worker processes, a pack
inside its own source folder, a bad model with workers, a resume on other threads or weights, onnx files'
commands, macOS's AppleDouble files, a full disk, a damaged manifest (review s41 r2: F1-F11, F14)."""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile

from bridge import files
from bridge.engine.audio import read_metadata
from bridge.errors import ConfigError
from bridge.pack import driver, manifest, plan
from bridge.pack.plan import make_plan
from tests.pack.packs import FAST, REFERENCE, REPO, contents, pack_args, run_pack, sources, start, temporaries

pytestmark = pytest.mark.usefixtures("one_thread")

KITS = Path("/usr/share/hydrogen/data/drumkits")


def _copy(source: Path, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(source, folder / name))


def _command(model: Path, out: Path, *more) -> list[str]:
    """`dd-bridge pack ... --out OUT` with the tiny model and a fixed seed, without --threads."""
    return ["pack", *map(str, more), "--out", str(out), "--model", str(model), "--seed", "21", *FAST]


def _entries(out: Path) -> dict[str, dict]:
    return {entry["file"]: entry for entry in json.loads((out / manifest.JSON_NAME).read_text())["files"]}


# -- F1: long names ------------------------------------------------------------------------------------------------

def test_a_long_source_name_keeps_every_variation_its_number_and_wav(tmp_path, tiny_model_path, drumkits):
    stem = ("Very Long Kick Name From A Vendor Sample Library " * 5)[:240].rstrip()
    source = _copy(sources(drumkits)[0], tmp_path / "src", f"{stem}.aiff")
    out = tmp_path / "pack"
    assert run_pack(*_command(tiny_model_path, out, source, "--threads", 1, "--per-source", 3, "--noise",
                              "0.12345", "--end", 0.1)) == 0
    made = sorted(path for path in out.rglob("*") if path.is_file() and path.parent != out)
    audio = [path.name for path in made if path.suffix == ".wav"]
    assert len(audio) == 3 and len(_entries(out)) == 3, [path.name for path in made]
    for number, name in enumerate(audio, 1):
        assert name.endswith(f" 0.000-0.100s noise 0.12345 var {number:03d}.wav") and name.startswith("Very Long")
        assert len(name.encode()) <= files.NAME_BYTES
        soundfile.read(out / made[0].parent.name / name)
    assert manifest.validate(out) == []


def test_noise_levels_that_name_alike_and_any_two_planned_names_alike_are_refused(monkeypatch):
    with pytest.raises(ConfigError, match="--noise lists a level twice"):
        make_plan([(Path("/a/kick.wav"), None)], per_source=1, noises=[0.1234501, 0.1234502], seed=0, settings={})
    monkeypatch.setattr(plan, "_fitted", lambda stem, tail: "same.wav")  # a naming rule gone wrong
    with pytest.raises(ConfigError, match="a bug in DD Bridge"):
        make_plan([(Path("/a/kick.wav"), None)], per_source=2, noises=[0.5], seed=0, settings={})


# -- F2: one run at a time ------------------------------------------------------------------------------------------

def test_a_second_run_into_a_folder_being_written_is_refused_in_one_line(tmp_path, tiny_model_path, drumkits):
    out = tmp_path / "pack"
    command = [*_command(tiny_model_path, out, *sources(drumkits), "--threads", 1, "--per-source", 100,
                         "--noise", "0.5")]
    command.remove("--seed"), command.remove("21")  # as in the review: no --seed, each run would draw its own
    first = start(*command)
    try:
        deadline = time.monotonic() + 180
        while not _listed(out) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, first.communicate()[1]
        second = start(*command)
        try:
            _, stderr = second.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            second.kill()
            second.communicate()
            pytest.fail("the second run was not refused: it wrote into the folder the first run is writing")
        assert second.returncode == 1 and stderr == (f"dd-bridge pack: error: {out}: another dd-bridge pack is "
                                                     "writing this folder; wait for it to finish\n")
        assert first.poll() is None, "the first run was still writing when the second was refused"
    finally:
        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=60)
    assert first.returncode == 130, stderr
    seed = json.loads((out / manifest.JSON_NAME).read_text())["plan"]["settings"]["seed"]
    for name, entry in _entries(out).items():  # every file is the first run's: drawn from the manifest's seed
        assert read_metadata(out / name)["seed"] == entry["seed"] and seed <= entry["seed"] < seed + 200
    assert manifest.validate(out) == [] and temporaries(out) == []
    assert not (out / driver.LOCK_NAME).exists()  # the lock is gone with the run that held it


def _listed(out: Path) -> list:
    try:
        return json.loads((out / manifest.JSON_NAME).read_text())["files"]
    except (OSError, ValueError):
        return []


# -- F3: Ctrl-C with --workers -------------------------------------------------------------------------------------

def test_ctrl_c_with_workers_ends_them_at_once_and_keeps_the_files_that_came_back(tmp_path, tiny_model_path):
    """A real Ctrl-C (SIGINT to the process group, as a terminal sends it) while two worker processes render slow
    files: the run ends in seconds, not after the renders in flight, and the files already back are in the pack."""
    folder = tmp_path / "src"
    _copy(KITS / "ElectricEmpireKit/EE_Click.flac", folder, "a click.flac")  # 0.04 s: rendered in a few seconds
    _copy(KITS / "BJA_Pacific/SN3_03.aiff", folder, "b snare.aiff")  # 0.7 s: about 20 s a file at 100 steps
    out = tmp_path / "pack"
    code = "import sys; from bridge.cli import main; sys.exit(main())"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "pack", str(folder), "--out", str(out), "--model", str(tiny_model_path),
         "--seed", "3", "--steps", "100", "--per-source", "2", "--noise", "0.5", "--threads", "1", "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env=dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1"),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    clicks = ["a click/a click noise 0.5 var 001.wav", "a click/a click noise 0.5 var 002.wav"]
    try:
        deadline = time.monotonic() + 240
        while not all((out / name).exists() for name in clicks) and process.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None and all((out / name).exists() for name in clicks), process.communicate()[1]
        time.sleep(0.5)  # the snares are in flight now, each some 20 s of work
        pressed = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        took = time.monotonic() - pressed
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130 and stderr.strip().splitlines()[-1] == "dd-bridge pack: interrupted", stderr
    assert took < 8, f"{took:.0f} s from Ctrl-C to the end: the renders in flight were waited for"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the worker processes (and multiprocessing's tracker) end with the run
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("processes of the run lived on after it")
    assert sorted(_entries(out)) == clicks  # what came back before Ctrl-C is in the pack, and only that
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.wav") if not p.name.startswith(".")) == clicks
    assert manifest.validate(out) == [] and temporaries(out) == []


def test_stopped_workers_hand_back_the_renders_that_came_back_and_end(tmp_path, tiny_model_path, drumkits):
    """What the driver writes on Ctrl-C: renders done in the worker processes but not yet taken are handed back by
    stop(), and the processes end."""
    from bridge.cli import build_parser
    from bridge.cli.pack import _settings
    from bridge.pack import local

    args = build_parser().parse_args(["pack", *map(str, sources(drumkits)), "--out", str(tmp_path), "--model",
                                      str(tiny_model_path), "--per-source", "2", "--noise", "0.5", *FAST])
    settings = _settings(args)
    planned = make_plan([(path, None) for path in sources(drumkits)], per_source=2, noises=[0.5], seed=5,
                        settings=settings)
    workers = local.open_workers(settings, local.plan_workers("cpu", 2, 1))
    try:
        results = workers.results(driver._jobs(planned, list(planned.tasks)))
        first = next(results)  # all four are in flight (two per worker); the driver takes one
        deadline = time.monotonic() + 120
        while not all(future.done() for future in workers.waiting) and time.monotonic() < deadline:
            time.sleep(0.05)
        processes = list(workers.pool._processes.values())
        arrived = workers.stop()
    finally:
        workers.close()
    assert sorted(done.task.file for done in [first, *arrived]) == sorted(task.file for task in planned.tasks)
    assert all(_ended(process.pid) for process in processes)


def _ended(pid: int, seconds: float = 5.0) -> bool:
    """The process is gone (asked of the system: the pool's own bookkeeping of a terminated worker may lag)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


# -- F4: a pack inside its source folder -----------------------------------------------------------------------------

def test_a_pack_inside_its_source_folder_resumes_and_a_refusal_says_what_differs(tmp_path, tiny_model_path, drumkits,
                                                                                capsys):
    folder = tmp_path / "kicks"
    for source in sources(drumkits):
        _copy(source, folder, source.name)
    out = folder / "Kick Pack"
    arguments = [*_command(tiny_model_path, out, folder, "--threads", 1, "--per-source", 1, "--noise", "0.5")]
    assert run_pack(*arguments) == 0
    times = {path: path.stat().st_mtime_ns for path in out.rglob("*.wav")}
    assert len(times) == 2
    capsys.readouterr()
    assert run_pack(*arguments) == 0, capsys.readouterr().err  # its own files are no sources of it
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*.wav")} == times

    _copy(KITS / "ElectricEmpireKit/EE_Click.flac", folder, "click.flac")
    assert run_pack(*arguments, "--steps", 4) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "holds another pack" in error
    assert f"1 source added: {folder / 'click.flac'}" in error and "--steps 4, the pack's 3" in error, error
    (folder / "BD_01.aiff").unlink()
    assert run_pack(*arguments) == 1
    error = capsys.readouterr().err
    assert f"1 source added: {folder / 'click.flac'}; 1 source missing: {folder / 'BD_01.aiff'}" in error, error


# -- F5: a bad model with --workers ----------------------------------------------------------------------------------

def test_a_model_or_device_that_workers_cannot_open_is_one_line(tmp_path, tiny_model_path, drumkits):
    import torch

    cases = [(["--model", "nosuch"], "no model named 'nosuch'")]
    if not torch.backends.mps.is_available():
        cases.append((["--model", tiny_model_path, "--device", "mps"], "device mps asked for"))
    for options, said in cases:
        process = start("pack", *sources(drumkits), "--out", tmp_path / options[-1], "--per-source", 1, "--noise",
                        0.5, "--steps", 2, "--threads", 1, "--workers", 2, *options)
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 1 and stdout == "", stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("dd-bridge pack: error:") and said in lines[0], stderr


# -- F7: a resume renders as the pack was rendered -----------------------------------------------------------------

def test_a_resume_records_each_files_threads_and_redraws_the_sheet_showing_it(reference, tmp_path, tiny_model_path,
                                                                             drumkits, caplog):
    caplog.set_level("INFO")
    out = tmp_path / "pack"
    shutil.copytree(reference, out)
    assert {(entry["device"], entry["threads"]) for entry in _entries(out).values()} == {("cpu", 1)}
    gone = out / "BD_01/BD_01 noise 0.3 var 001.wav"
    gone.unlink()
    sheet = out / "BD_01" / driver.SHEET_NAME
    drawn = sheet.stat().st_ino, sheet.stat().st_mtime_ns
    # without --threads (whose default shares out the cores: 2 here and on most machines): the pack's own 1
    assert run_pack(*_command(tiny_model_path, out, *sources(drumkits), *REFERENCE)) == 0
    assert contents(out) == contents(reference)
    assert "resuming with the pack's --threads 1" in caplog.text  # said: it may be another machine's count

    gone.unlink()
    caplog.clear()
    assert run_pack(*_command(tiny_model_path, out, *sources(drumkits), *REFERENCE, "--threads", 2)) == 0
    warned = [record.getMessage() for record in caplog.records if "mixes" in record.getMessage()]
    assert len(warned) == 1 and "--threads 2" in warned[0] and "--threads 1" in warned[0], warned
    entries = _entries(out)
    assert entries[str(gone.relative_to(out))]["threads"] == 2
    assert "--threads 2" in read_metadata(gone)["command"]
    assert [entry["threads"] for name, entry in entries.items() if out / name != gone] == [1] * 7
    assert (sheet.stat().st_ino, sheet.stat().st_mtime_ns) != drawn, "the sheet showing the file was not redrawn"
    other = out / "HH_01" / driver.SHEET_NAME
    assert manifest.validate(out) == [] and manifest.checksum(other) == manifest.checksum(reference / "HH_01" /
                                                                                           driver.SHEET_NAME)


def test_a_resume_with_other_weights_under_the_same_model_path_is_refused(tmp_path, drumkits, capsys):
    import torch

    from bridge.engine.checkpoints import LoadedModel, save_model
    from bridge.engine.unet import DanceDiffusionUNet
    from tests.conftest import TINY_RENDER

    def model(seed: int) -> Path:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            network = DanceDiffusionUNet(TINY_RENDER)
        loaded = LoadedModel.from_network(network, name="tiny-test", sample_rate=48000, window=8192,
                                          provenance="random weights made by the tests")
        for made in tmp_path.glob("models/tiny-test.*"):
            made.unlink()
        return save_model(loaded, tmp_path / "models" / "tiny-test")[0]

    (tmp_path / "models").mkdir()
    out = tmp_path / "pack"
    arguments = _command(model(1), out, sources(drumkits)[0], "--threads", 1, "--per-source", 2, "--noise", "0.5")
    assert run_pack(*arguments) == 0
    kept = contents(out, timings=True)
    (out / "BD_01/BD_01 noise 0.5 var 002.wav").unlink()
    assert model(2) == Path(arguments[arguments.index("--model") + 1])
    capsys.readouterr()
    assert run_pack(*arguments) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "made with other weights of tiny-test" in error, error
    del kept["BD_01/BD_01 noise 0.5 var 002.wav"]
    assert contents(out, timings=True) == kept


# -- F8: onnx files' commands ----------------------------------------------------------------------------------------

def test_an_onnx_files_command_names_the_backend_and_makes_the_same_bytes(reference, tmp_path, tiny_model_path,
                                                                          drumkits):
    for name in _entries(reference):  # torch, the default, is left out as before
        assert "--backend" not in read_metadata(reference / name)["command"]
    pytest.importorskip("onnxruntime")
    out = tmp_path / "pack"
    assert run_pack(*_command(tiny_model_path, out, sources(drumkits)[1], "--threads", 1, "--per-source", 1,
                              "--noise", "0.5", "--backend", "onnx", "--end", 0.05)) == 0
    (name,) = _entries(out)
    command = shlex.split(read_metadata(out / name)["command"])
    assert command[command.index("--backend") + 1] == "onnx"
    again = tmp_path / "again"
    again.mkdir()
    assert run_pack(*command[1:], "--out", again) == 0
    (made,) = again.glob("*.wav")
    assert made.read_bytes() == (out / name).read_bytes()
    vary = shlex.split(read_metadata(made)["command"])  # vary's own files name it too
    assert vary[vary.index("--backend") + 1] == "onnx"



# -- F9: hidden files ------------------------------------------------------------------------------------------------

def test_macos_appledouble_files_in_a_source_folder_are_passed_over(tmp_path, tiny_model_path, drumkits):
    from bridge.training import data

    folder = tmp_path / "kicks"
    _copy(sources(drumkits)[0], folder, "BD_01.aiff")
    (folder / "._BD_01.aiff").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(4000))
    _copy(sources(drumkits)[1], folder, ".dd-bridge-0123456789ab.partial.aiff")  # another writer's temporary
    assert data.scan([folder]) == [folder / "BD_01.aiff"]
    out = tmp_path / "pack"
    assert run_pack(*_command(tiny_model_path, out, folder, "--threads", 1, "--per-source", 1, "--noise",
                              "0.5")) == 0
    assert sorted(_entries(out)) == ["BD_01/BD_01 noise 0.5 var 001.wav"]


# -- F10, F11: a full disk, a damaged manifest ---------------------------------------------------------------------

def test_a_full_disk_is_said_as_such_and_the_rerun_finishes_the_pack(reference, tmp_path, tiny_model_path, drumkits,
                                                                     monkeypatch, capsys):
    out = tmp_path / "pack"
    replace = files.Folder.replace
    written = []

    def filling(self, name, content, **options):
        if str(name).endswith(".wav") and written:  # the disk fills after the first file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(name)
        return replace(self, name, content, **options)

    monkeypatch.setattr(files.Folder, "replace", filling)
    capsys.readouterr()
    assert run_pack(*pack_args(tiny_model_path, out, drumkits, *REFERENCE)) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"dd-bridge pack: error: {out}: no space left on device; free some and run the same command again "
        "(finished files are kept)")
    monkeypatch.undo()
    assert len(_entries(out)) == 1 and manifest.validate(out) == []
    assert run_pack(*pack_args(tiny_model_path, out, drumkits, *REFERENCE)) == 0
    assert contents(out) == contents(reference)


def test_check_pack_says_a_damaged_manifest_entry_is_damaged(reference, tmp_path, capsys):
    out = tmp_path / "pack"
    shutil.copytree(reference, out)
    data = json.loads((out / manifest.JSON_NAME).read_text())
    del data["files"][1]["sha256"]
    data["files"][2] = "not an entry"
    (out / manifest.JSON_NAME).write_text(json.dumps(data))
    capsys.readouterr()
    assert run_pack("check-pack", out) == 1
    said = capsys.readouterr()
    assert "unexpected error" not in said.err
    lines = said.out.splitlines()
    assert f"{manifest.JSON_NAME}: entry 2 is damaged (no file name or no sha256)" in lines
    assert f"{manifest.JSON_NAME}: entry 3 is damaged (no file name or no sha256)" in lines


# -- F14: help -------------------------------------------------------------------------------------------------------

def test_pack_help_gives_the_threads_default_with_ray_too(capsys):
    with pytest.raises(SystemExit):
        run_pack("pack", "--help")
    text = " ".join(capsys.readouterr().out.split())
    listed = text.index("options:")
    threads = text[text.index("--threads T", listed):text.index("--sample-rate", listed)]
    assert "1 per actor with --ray" in threads and "the pack's own when resuming" in threads, threads


# -- review s41 (diff): older packs, --out as the source, a lock file that cannot be opened ------------------------

def test_an_older_pack_gets_its_model_described_once_and_keeps_how_its_files_were_made(reference, tmp_path,
                                                                                       tiny_model_path, drumkits):
    """A pack from before the card's notices and each file's device/threads were recorded: a rerun (complete, no
    worker needed otherwise) describes the model once, so ATTRIBUTION.txt gets the notices; the files made before
    keep the device and threads their pack said, not the resuming run's."""
    out = tmp_path / "pack"
    shutil.copytree(reference, out)
    data = json.loads((out / manifest.JSON_NAME).read_text())
    data["model"].pop("notices")
    for entry in data["files"]:
        del entry["device"], entry["threads"]
    (out / manifest.JSON_NAME).write_text(json.dumps(data, indent=1))
    assert run_pack(*_command(tiny_model_path, out, *sources(drumkits), *REFERENCE)) == 0
    assert contents(out) == contents(reference)  # notices back in the model; each entry's device and threads too

    for entry in data["files"]:  # again, with one file to render on 2 threads
        entry.pop("device", None), entry.pop("threads", None)
    data["model"].pop("notices", None)
    (out / manifest.JSON_NAME).write_text(json.dumps(data, indent=1))
    gone = out / "BD_01/BD_01 noise 0.3 var 001.wav"
    gone.unlink()
    assert run_pack(*_command(tiny_model_path, out, *sources(drumkits), *REFERENCE, "--threads", 2)) == 0
    made = {name: (entry["device"], entry["threads"]) for name, entry in _entries(out).items()}
    assert made.pop(str(gone.relative_to(out))) == ("cpu", 2)
    assert set(made.values()) == {("cpu", 1)}  # before: the resuming run's ("cpu", 2) for all


def test_the_source_folder_as_out_and_a_lock_file_that_cannot_be_opened_are_one_line(tmp_path, tiny_model_path,
                                                                                       drumkits, capsys):
    folder = tmp_path / "Kicks"
    _copy(sources(drumkits)[0], folder, "kick.aiff")
    one = ("--threads", 1, "--per-source", 1, "--noise", "0.5")
    assert run_pack(*_command(tiny_model_path, folder, folder, *one)) == 1
    assert capsys.readouterr().err == (f"dd-bridge pack: error: --out {folder} is the source folder {folder} itself: "
                                       "give the pack a folder of its own\n")  # before: "no audio files in Kicks"

    out = tmp_path / "pack"
    out.mkdir()
    (out / driver.LOCK_NAME).symlink_to(tmp_path / "elsewhere")  # never followed: a lock is not written through it
    assert run_pack(*_command(tiny_model_path, out, folder, *one)) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"dd-bridge pack: error: {out / driver.LOCK_NAME}: cannot open the pack's lock file (")
    assert error.endswith("the pack folder must be writable\n") and error.count("\n") == 1, error
    assert not (tmp_path / "elsewhere").exists()


def test_on_a_file_system_without_locks_the_lock_file_is_not_left_in_the_pack(tmp_path, tiny_model_path, drumkits,
                                                                             monkeypatch):
    """macOS smbfs refuses flock (ENOTSUP): the pack is made unlocked, and the file opened for the lock is removed."""
    def refused(fd, operation):
        raise OSError(errno.ENOTSUP, os.strerror(errno.ENOTSUP))

    monkeypatch.setattr(driver.fcntl, "flock", refused)
    out = tmp_path / "pack"
    assert run_pack(*_command(tiny_model_path, out, sources(drumkits)[0], "--threads", 1, "--per-source", 1,
                              "--noise", "0.5")) == 0
    assert not (out / driver.LOCK_NAME).exists() and manifest.validate(out) == []


def test_an_older_plan_is_read_without_its_weight_0_guides():
    """Weight-0 guides are left out of a plan since 2026-12-06 ("0 is off"): an older manifest that lists them
    compares as this version plans the same command, by the guide grammar's own reading of a weight."""
    planned = {"settings": {"guide": ["brightness=0", "decay=1:0.3s", "width=-0.0@0.2-1", "punch=0.5", "odd"]}}
    manifest._as_planned_now(planned)
    assert planned["settings"]["guide"] == ["decay=1:0.3s", "punch=0.5", "odd"]


# -- review s43 (docs) F1: a refused command leaves no --out behind -------------------------------------------------

@pytest.mark.parametrize("options, said", [
    (["--recipe", "punchy"], "no recipe named 'punchy'"),  # README's example had it, and left an empty folder
    (["--guide", "match=1:/nonexistent/kick.wav"], "/nonexistent/kick.wav: no such file"),
    (["--noise", "0.1234501,0.1234502"], "--noise lists a level twice"),
    (["--per-source", 100_000, "--noise", ",".join(f"0.{n}" for n in range(1, 7))], "more than a pack holds"),
    (["--model", "nosuch"], "no model named 'nosuch'"),
])
def test_a_command_refused_for_its_guides_recipe_plan_or_model_makes_no_out_folder(tmp_path, tiny_model_path,
                                                                                 drumkits, capsys, options, said):
    out = tmp_path / "packs" / "Loop Pack"
    capsys.readouterr()
    assert run_pack("pack", *sources(drumkits), "--out", out, "--model", tiny_model_path, "--per-source", 8,
                    *options) == 1  # the options last: their --model, --per-source are the ones taken
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("dd-bridge pack: error: ") and said in error, error
    assert not (tmp_path / "packs").exists()
