"""`dd-bridge serve | send | status` as users and the REAPER scripts run them."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import soundfile
import torch

from bridge import __version__, constants
from bridge.cli import main
from bridge.daemon import renderer as renderer_module
from bridge.engine.audio import read_metadata
from bridge.engine.catalogue import RECOMMENDED
from bridge.engine.checkpoints import LoadedModel, save_model
from bridge.engine.unet import DanceDiffusionUNet, UNetConfig
from tests.support.service import _one_torch_thread, drum, renderer  # noqa: F401 (fixtures)
from tests.support.service import Listener, micro_model, running_service, service_config


def send(capsys, port, *words, timeout="10"):
    code = main(["send", "--port", str(port), "--timeout", timeout, *words])
    out, err = capsys.readouterr()
    return code, out, err


def test_send_prints_the_reply_and_exits_by_its_kind(tmp_path, renderer, drum, capsys, monkeypatch):
    with running_service(service_config(tmp_path), renderer) as svc:
        assert send(capsys, svc.port, "/dd/ping")[:2] == (0, f"{__version__}\n")

        # Paths relative to the caller's folder are sent absolute; the reply's paths go one a line to stdout.
        monkeypatch.chdir(drum.parent)
        code, out, _ = send(capsys, svc.port, "/dd/vary", "kick.wav", "2", "0.3")
        assert code == 0 and out.splitlines() == [str(tmp_path / "samples" / "kick" / f"kick var 00{i}.wav")
                                                   for i in (1, 2)]

        code, out, err = send(capsys, svc.port, "/dd/vary", "missing.wav")
        assert code == 1 and out == "" and "no such file" in err and len(err.splitlines()) == 1

        code, out, _ = send(capsys, svc.port, "/dd/set", "seed", "-1")  # a negative number stays a number
        assert code == 0 and out == "set seed random\n"

        code, out, _ = send(capsys, svc.port, "/dd/status")
        assert code == 0 and json.loads(out)["model"] == "micro"


def test_a_render_send_gives_up_on_is_cancelled_not_left_to_hold_the_queue(tmp_path, renderer, drum, capsys):
    """Review s42 F2: `dd-bridge send` timed out (or Ctrl-C'd) left its render queued or rendering; /dd/cancel is per
    client and every send is a new one, so nothing from the command line could reach it, and every later request
    waited behind it. Now the send that gives up cancels its own request from its own socket."""
    holder = Listener()  # another client's long render, ahead in the queue
    try:
        with running_service(service_config(tmp_path, render={"prefetch": 0}), renderer) as svc:
            holder.send(svc.port, "/dd/vary", "#long", str(drum), 16, "steps=1000")  # minutes
            svc.wait_for(lambda s: s["running"] and s["running"]["kind"] == "vary", what="the long render")

            code, out, err = send(capsys, svc.port, "/dd/vary", str(drum), "1", "seed=3", timeout="0.5")
            assert (code, out) == (3, "") and err == (
                f"dd-bridge send: no answer from the service at 127.0.0.1:{svc.port} within 0.5 s; the request is "
                "cancelled (a longer --timeout waits for it)\n")
            assert svc.status()["queue"] == 0 and svc.status()["running"]["kind"] == "vary"

            code = "import sys; from bridge.cli import main; sys.exit(main())"
            process = subprocess.Popen(
                [sys.executable, "-c", code, "send", "--port", str(svc.port), "--timeout", "600", "/dd/vary",
                 str(drum), "1", "seed=4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=dict(os.environ, PYTHONPATH=str(constants.REPO_DIR)))
            svc.wait_for(lambda s: s["queue"] == 1, what="the queued press")
            process.send_signal(signal.SIGINT)  # Ctrl-C
            process.communicate(timeout=30)
            assert process.returncode == 130
            svc.wait_for(lambda s: s["queue"] == 0, what="the press cancelled")
            assert not [m for m in holder.messages if m[0] == "/dd/error"]  # the other client's render goes on
            holder.send(svc.port, "/dd/cancel", "#c")
            holder.wait_for(lambda m: m[0] == "/dd/error" and m[1][0] == "#long")
    finally:
        holder.close()


def test_a_send_that_gives_up_cancels_only_its_own_request(tmp_path, renderer, drum, capsys):
    """Review s42 diff M2: the give-up sent a plain /dd/cancel, which also failed the producer's MIDI presses and
    emptied and paused the DAW's prefetch. It now names its own request (/dd/cancel request=#ID)."""
    daw = Listener()  # the Live device or REAPER: a clip selected, its variations prefetched
    other = tmp_path / "in" / "other.wav"
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_bytes(drum.read_bytes())
    try:
        with running_service(service_config(tmp_path, render={"prefetch": 2, "steps": 2}), renderer) as svc:
            daw.send(svc.port, "/dd/select", "#s", str(drum))
            svc.wait_for(lambda s: s["prefetched"].get(str(drum)) == 2, what="the prefetch")
            code, _, err = send(capsys, svc.port, "/dd/vary", str(other), "32", "steps=1000", timeout="0.2")  # 5 % is 50 steps of 32
            assert code == 3 and "the request is cancelled" in err, err
            svc.wait_for(lambda s: s["running"] is None and s["queue"] == 0, what="the given-up render stopped")
            assert svc.status()["prefetched"].get(str(drum)) == 2  # the DAW's presses are still instant
            assert len(svc.ask("/dd/vary").args) == 2  # and a press is answered from it
    finally:
        daw.close()


def test_send_result_file_for_callers_without_a_pipe(tmp_path, renderer, drum, capsys):
    result = tmp_path / "result.txt"
    progress_seen = []
    with running_service(service_config(tmp_path, render={"steps": 40, "prefetch": 0}), renderer) as svc:
        stop = threading.Event()

        def watch_progress():
            while not stop.is_set():
                try:
                    progress_seen.append(float((tmp_path / "result.txt.progress").read_text()))
                except (FileNotFoundError, ValueError):
                    pass
                time.sleep(0.005)
        watcher = threading.Thread(target=watch_progress)
        watcher.start()
        try:
            code, out, _ = send(capsys, svc.port, "--result", str(result), "/dd/vary", str(drum))
        finally:
            stop.set()
            watcher.join()
        lines = result.read_text().splitlines()
        assert code == 0 and lines[0] == "done" and lines[1:] == out.splitlines() and len(lines) == 2
        assert progress_seen and all(0 <= p <= 1 for p in progress_seen) and max(progress_seen) > 0
        assert not (tmp_path / "result.txt.progress").exists()

        code, _, _ = send(capsys, svc.port, "--result", str(result), "/dd/vary", str(drum), "99")
        assert code == 1 and result.read_text().splitlines() == ["error", "count must be in 1..64, not 99"]

        code, _, _ = send(capsys, svc.port, "--result", str(result), "/dd/select", str(drum))
        assert code == 0 and result.read_text().splitlines() == ["ok", "select", str(drum)]
    # Nobody listening: exit 3, and the result file says why.
    code, _, err = send(capsys, svc.port, "--result", str(result), "/dd/ping", timeout="0.5")
    assert code == 3 and "is `dd-bridge serve` running?" in err
    # REAPER's Follow selection stops on this wording (the service is gone) and not on a refusal of one clip
    assert result.read_text().splitlines()[0] == "error"
    assert result.read_text().splitlines()[1].startswith("no reply from the service")


def test_a_refused_progress_write_does_not_lose_the_answer(tmp_path, renderer, drum, capsys, monkeypatch):
    """On Windows, REAPER's poll holding the .progress file open makes replacing it fail (PermissionError): the
    percentage is best effort, the result file the script waits for is still written."""
    from bridge.cli import serve

    real_write = serve.write_atomically

    def windows_write(path, text):
        if path.name.endswith(".progress"):
            raise PermissionError(13, "Access is denied", str(path))
        real_write(path, text)
    monkeypatch.setattr(serve, "write_atomically", windows_write)
    real_unlink = type(tmp_path).unlink

    def windows_unlink(self, missing_ok=False):  # the last tidy-up, refused the same way
        if self.name.endswith(".progress"):
            raise PermissionError(13, "Access is denied", str(self))
        real_unlink(self, missing_ok=missing_ok)
    monkeypatch.setattr(type(tmp_path), "unlink", windows_unlink)
    result = tmp_path / "result.txt"
    with running_service(service_config(tmp_path, render={"prefetch": 0}), renderer) as svc:
        code, out, _ = send(capsys, svc.port, "--result", str(result), "/dd/vary", str(drum))
    lines = result.read_text().splitlines()
    assert code == 0 and lines[0] == "done" and lines[1:] == out.splitlines() and len(lines) == 2


def test_a_recipe_name_of_digits_stays_text(tmp_path, renderer, capsys, monkeypatch):
    """REAPER's "Save guides as recipe" sends the name through `send`: "007" is saved as 007.yaml, the name its
    Settings and Recipe menu then send as text, not as the number 7."""
    from bridge.cli.serve import osc_arguments

    assert osc_arguments("/dd/save_recipe", ["007"]) == ["007"]
    assert osc_arguments("/dd/vary", ["007"]) == [7]  # elsewhere a number is a number
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with running_service(service_config(tmp_path), renderer) as svc:
        assert send(capsys, svc.port, "/dd/set", "guide", "brightness=1")[0] == 0
        code, out, err = send(capsys, svc.port, "/dd/save_recipe", "007")
        assert code == 0, err
        assert out.split()[:2] == ["save_recipe", "007"] and out.strip().endswith("007.yaml")
        assert send(capsys, svc.port, "/dd/set", "recipe", "007")[0] == 0


def test_status_describes_the_service(tmp_path, renderer, drum, capsys):
    with running_service(service_config(tmp_path), renderer) as svc:
        svc.ask("/dd/select", str(drum))
        svc.wait_for(lambda s: s["prefetched"].get(str(drum)) == 2, what="prefetch")
        svc.ask("/dd/vary")
        assert main(["status", "--port", str(svc.port)]) == 0
        out = capsys.readouterr().out
        assert "model      micro" in out and "on cpu, fp32" in out
        assert "prefetched 2 of kick.wav" in out or "prefetched 1 of kick.wav" in out
        assert "kick var 001.wav" in out and "(prefetched" in out
    assert main(["status", "--port", str(svc.port), "--timeout", "0.3"]) == 3


def test_the_stand_in_model_only_when_the_default_is_missing(monkeypatch, caplog):
    monkeypatch.setattr(constants, "DEFAULT_MODEL", "not-installed-anywhere")
    with caplog.at_level(logging.WARNING):
        loaded, reference = renderer_module.load_for_service(None)
    assert reference == renderer_module.STAND_IN_NAME and loaded.name == renderer_module.STAND_IN_NAME
    assert "RANDOM-WEIGHT stand-in" in caplog.text
    with pytest.raises(Exception, match="no model named 'also-missing'"):
        renderer_module.load_for_service("also-missing")  # a model asked for by name never falls back


@pytest.fixture
def model_file(tmp_path):
    (tmp_path / "models").mkdir()
    weights, _card = save_model(micro_model(), tmp_path / "models" / "micro")
    return weights


@contextlib.contextmanager
def serving(*argv, env: dict | None = None, preexec_fn=None):
    """`dd-bridge serve` in a subprocess on a free port, on the CPU, without MIDI; yields once it is ready, with
    its stderr lines so far (still growing); kills it on the way out if the test has not stopped it. preexec_fn
    runs in the child before it starts (e.g. a memory limit)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd(), **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge", "serve", "--osc-port", "0", "--midi-port", "none", "--device", "cpu",
         *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=preexec_fn)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")))
    reader.start()
    try:
        deadline = time.monotonic() + 90
        while not any("ready" in line for line in lines):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.05)
        yield process, lines
    finally:
        if process.poll() is None:
            process.kill()
        reader.join()
        process.stdout.close()
        process.stderr.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_serve_starts_listens_and_stopping_mid_render_leaves_no_partial_file(tmp_path, model_file, drum, signum):
    """SIGTERM while a render runs: the process exits 0 at once, its staged files gone. Even SIGKILL leaves
    nothing in the sample folder but complete files."""
    config = tmp_path / "config.yaml"
    config.write_text(f"osc: {{reply_port: null}}\nallowed_folders: [{tmp_path}]\n"
                      "render: {steps: 1000, prefetch: 2}\n")
    folder = tmp_path / "samples"
    with serving("--config", config, "--model", model_file, "--folder", folder) as (process, lines):
        log = "".join(lines)
        port = int(re.search(r"listening for OSC on 127\.0\.0\.1:(\d+)", log).group(1))
        assert "model: micro" in log and "on cpu, fp32" in log and f"sample folder: {folder}" in log

        from bridge.transports.osc.client import OscClient
        with OscClient("127.0.0.1", port) as client:
            client.request("/dd/set", ["steps", 2])
            assert client.request("/dd/vary", [str(drum)]).address == "/dd/done"  # one file made before the stop
            client.request("/dd/set", ["steps", 1000])
            assert client.request("/dd/select", [str(drum)]).address == "/dd/ack"
            while True:
                status = json.loads(client.request("/dd/status").args[0])
                if status["running"] and status["running"]["progress"] > 0:
                    break
                time.sleep(0.05)
        began = time.monotonic()
        process.send_signal(signum)
        assert process.wait(timeout=30) == (0 if signum == signal.SIGTERM else -signal.SIGKILL)
        assert time.monotonic() - began < 15
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert [p.name for p in files if not any(part.startswith(".") for part in p.relative_to(folder).parts)] == [
        "kick var 001.wav"]
    assert all(soundfile.info(p).frames == soundfile.info(drum).frames for p in files)  # each one complete
    if signum == signal.SIGTERM:
        assert "stopped" in "".join(lines) and len(files) == 1  # no temporary or staged file left


def test_serve_says_the_bundled_model_is_a_demo_and_how_to_get_a_real_one(tmp_path):
    with serving("--folder", tmp_path / "samples", env={"XDG_CONFIG_HOME": str(tmp_path)}) as (process, lines):
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    log = "".join(lines)
    assert f"model: {constants.DEFAULT_MODEL}" in log
    assert "small demo model" in log and f"dd-bridge models get {RECOMMENDED}" in log


def test_serve_refuses_a_bad_config_in_one_line(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("render: {noise: 7}\n")
    assert main(["serve", "--config", str(config), "--midi-port", "none"]) == 1
    err = capsys.readouterr().err
    assert "noise must be in 0..1, not 7" in err and "Traceback" not in err


def test_serve_refuses_a_bad_flag_in_one_line_naming_it(tmp_path, capsys):
    """Flags are read by the config table's own rules, before anything binds or loads."""
    config = tmp_path / "config.yaml"
    config.write_text("osc: {port: 0}\n")
    for flags, message in ((["--osc-port", "nine"], "--osc-port must be a number, not 'nine'"),
                           (["--osc-port", "70000"], "--osc-port must be in 0..65535, not 70000"),
                           (["--model", " "], "--model must be a non-empty text")):
        assert main(["serve", "--config", str(config), "--folder", str(tmp_path / "samples"), *flags]) == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "samples").exists()


def test_a_serve_that_ends_leaves_the_log_handlers_as_it_found_them(tmp_path, capsys, caplog):
    """The flood filter lives as long as the service: a handler that outlives one `serve` (main() run in-process)
    must not go on dropping repeated lines afterwards."""
    config = tmp_path / "config.yaml"
    config.write_text("osc: {port: 0}\n")
    before = {id(handler): list(handler.filters) for handler in logging.getLogger().handlers}
    assert main(["serve", "--config", str(config), "--folder", str(tmp_path / "samples"), "--midi-port", "none",
                 "--model", str(tmp_path / "missing.safetensors")]) == 1
    assert "missing.safetensors" in capsys.readouterr().err
    after = {id(handler): list(handler.filters) for handler in logging.getLogger().handlers}
    assert after == before


def test_files_written_before_a_stop_are_complete(tmp_path, renderer, drum):
    with running_service(service_config(tmp_path), renderer) as svc:
        svc.ask("/dd/select", str(drum))
        made = svc.ask("/dd/vary", "", 3).args[1:]
        svc.service.stop(timeout=30)
        assert svc.ask("/dd/vary").address == "/dd/error"  # refuses work once stopping
    frames = soundfile.info(drum).frames
    assert [soundfile.info(p).frames for p in made] == [frames] * 3
    assert not [p for p in (tmp_path / "samples").rglob(".*")]


def test_bench_latency_runs_both_modes_and_prints_the_table(model_file, capsys):
    """Runs, not timed: the figures are the benchmark's output, read by people."""
    assert main(["bench-latency", "--model", str(model_file), "--device", "cpu", "--steps", "2", "--presses", "3",
                 "--prefetch", "2"]) == 0
    out = capsys.readouterr().out
    assert "model micro" in out and "render of one variation: median" in out
    assert re.search(r"without prefetch(\s+\d+\.\d){4}", out) and re.search(r"with prefetch \(2\)(\s+\d+\.\d){4}", out)
    assert "target p95 with prefetch < 20 ms:" in out
    assert re.search(r"/dd/select -> first prefetched variation ready: \d+\.\d\d s; all 2: \d+\.\d\d s", out)
    assert re.search(r"burst of 20 presses right after /dd/select: first /dd/done \d+\.\d\d s, median \d+\.\d\d s, "
                     r"last \d+\.\d\d s; 20 done, 0 refused \(busy\); 20 of 20 answered, 0 more than once", out)


def test_send_starts_without_loading_torch():
    """REAPER runs `dd-bridge send` on every key press: it must not pay for importing torch."""
    code = ("import sys; from bridge.cli import main; "
            "code = main(['send', '--port', '9', '--timeout', '0.1', '/dd/ping']); "
            "sys.exit(10 + code if 'torch' not in sys.modules else 99)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 13, result.stderr  # exit 3 (no reply), torch never imported


def test_sigterm_during_one_long_model_call_exits_at_once(tmp_path, drum):
    """A 30 s sound is one model call of about 20 s on this CPU, which cannot be stopped between steps: SIGTERM
    still ends the service within seconds, its waiting client is told why, and nothing is left half-written."""
    (tmp_path / "models").mkdir()
    torch.manual_seed(0)
    wide = LoadedModel.from_network(DanceDiffusionUNet(UNetConfig(channels=(32, 32, 32, 32), n_attn_layers=0)),
                                    name="wide", sample_rate=48000, window=65536, provenance="made by the tests")
    weights, _card = save_model(wide, tmp_path / "models" / "wide")
    config = tmp_path / "config.yaml"
    config.write_text(f"osc: {{reply_port: null}}\nallowed_folders: [{tmp_path}]\nrender: {{steps: 2, prefetch: 0}}\n")
    folder = tmp_path / "samples"
    listener = Listener()
    try:
        with serving("--config", config, "--model", weights, "--folder", folder) as (process, lines):
            port = int(re.search(r"listening for OSC on 127\.0\.0\.1:(\d+)", "".join(lines)).group(1))
            listener.send(port, "/dd/generate", "#long", 1, 30.0)
            listener.wait_for(lambda m: m[0] == "/dd/progress" and m[1][0] == "#long")  # in hand
            time.sleep(2.0)  # well inside the first model call
            began = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0, "".join(lines[-5:])
            stopped_after = time.monotonic() - began
            print(f"SIGTERM inside one model call of a 30 s sound: exited after {stopped_after:.1f} s")
            [(_, args)] = listener.wait_for(lambda m: m[0] == "/dd/error" and m[1][0] == "#long", timeout=5)
            assert "stopping" in args[2]
            assert stopped_after < 10, f"{stopped_after:.1f} s: it waited for the model call"
    finally:
        listener.close()
    assert "stopped" in "".join(lines)
    assert [p for p in folder.rglob("*") if p.is_file()] == []


def test_send_names_guide_files_and_recipes_from_the_callers_folder(tmp_path, renderer, drum, capsys, monkeypatch):
    """`guide=match=1:other.wav`, `recipe=mine.yaml` and `/dd/set guide ...` name files relative to where send runs:
    sent absolute, as any path; a note (A1), a time (0.3s) or a recipe's name stays as it is."""
    (drum.parent / "other.wav").write_bytes(drum.read_bytes())
    (drum.parent / "mine.yaml").write_text("guides: [punch=1]\n")
    monkeypatch.chdir(drum.parent)
    with running_service(service_config(tmp_path, render={"prefetch": 0}), renderer) as svc:
        code, out, err = send(capsys, svc.port, "/dd/vary", "kick.wav", "1",
                              "guide=match=1:other.wav@0.5-1;tuning=1:A1;decay=1:0.3s", "recipe=mine.yaml")
        assert code == 0, err
        # in the order they act: what the sound is, its shape, its note
        assert read_metadata(out.strip())["guide"] == [f"match=1:{drum.parent / 'other.wav'}@0.5-1", "decay=1:0.3s",
                                                       "punch=1", "tuning=1:A1"]
        code, out, err = send(capsys, svc.port, "/dd/set", "guide", "match=0.5:other.wav")
        assert code == 0 and out == f"set guide match=0.5:{drum.parent / 'other.wav'}\n", err
    # A recipe word is a file by the recipes' own rule (a folder, or .yaml/.yml): a recipe saved as "kick.wav" is
    # a name (review s42 diff L6: it went out as a path, as an audio word does in a guide's target)
    from bridge.cli.serve import osc_arguments
    assert osc_arguments("/dd/set", ["recipe", "kick.wav"]) == ["recipe", "kick.wav"]
    assert osc_arguments("/dd/set", ["recipe", "mine.yaml"]) == ["recipe", str(drum.parent / "mine.yaml")]


def test_status_says_when_requests_wait_at_the_door():
    """A door held by a disk (a select of a file on a share that stopped answering) shows in `dd-bridge status`."""
    from bridge.cli.serve import _door_lines
    assert _door_lines({"waiting": 0, "refused": 0, "in_hand": "/dd/vary", "in_hand_seconds": 0.1}) == []
    assert _door_lines({"waiting": 3, "refused": 2, "in_hand": "/dd/select", "in_hand_seconds": 42.0}) == [
        "requests   /dd/select in hand for 42 s (a disk not answering?); 3 waiting, 2 turned away (busy)"]
