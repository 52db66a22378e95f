"""`dd-bridge models get` against a real HTTP server on loopback serving checkpoints in the released layout.

Every failure (an interrupted transfer, a corrupt file, a full disk, no network) must be one line on stderr and
leave nothing in the model folder; the download cache keeps only what a rerun resumes.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import logging
import os
import pty
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml
from tqdm import tqdm

from bridge import constants
from bridge.cli import main
from bridge.engine import catalogue
from bridge.engine.checkpoints import load_model
from bridge.errors import ConfigError
from tests.conftest import TINY
from tests.support.model_files import Malicious, random_native_state, write_lightning_checkpoint

NAME = "tiny-release"


class FileServer:
    """``http.server`` in a thread with byte ranges, and the faults the tests need: a connection cut after some
    bytes, Range ignored (servers that cannot resume), no Content-Length. Records what was asked and sent."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.sent: list[int] = []  # body bytes written per request
        self.if_ranges: list[str | None] = []  # the If-Range header of each request
        self.cut_after: int | None = None  # the next response stops after this many bytes, then the connection
        self.honour_range = True
        self.send_length = True
        self.stall_after: int | None = None  # the next response stops after this many bytes and hangs there
        self.honour_if_range = True  # a Range whose If-Range names another version gets the whole file (RFC 9110)
        self.release = threading.Event()  # ends a stall (the server's shutdown sets it too)
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                owner.handle(self)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def handle(self, request: http.server.BaseHTTPRequestHandler) -> None:
        asked = request.headers.get("Range")
        self.requests.append((request.path, asked))
        data = self.files.get(request.path)
        if data is None:
            request.send_error(404)
            self.sent.append(0)
            return
        start = 0
        found = re.fullmatch(r"bytes=(\d+)-", asked or "")
        etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'  # a strong ETag: this version of the file
        self.if_ranges.append(request.headers.get("If-Range"))
        if found and self.honour_if_range and request.headers.get("If-Range") not in (None, etag):
            found = None  # another version than the part is of: the whole file, 200
        if found and self.honour_range:
            start = int(found.group(1))
            if start >= len(data):
                request.send_response(416)
                request.send_header("Content-Range", f"bytes */{len(data)}")
                request.end_headers()
                self.sent.append(0)
                return
            request.send_response(206)
            request.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            request.send_response(200)
        body = data[start:]
        request.send_header("ETag", etag)
        if self.send_length:
            request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if self.cut_after is not None:
            body, self.cut_after = body[:self.cut_after], None
        if self.stall_after is not None:
            body, self.stall_after = body[:self.stall_after], None
            request.wfile.write(body)
            request.wfile.flush()
            self.sent.append(len(body))
            self.release.wait(60)
            return
        request.wfile.write(body)
        request.wfile.flush()
        self.sent.append(len(body))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> bytes:
    """A checkpoint in the exact layout Harmonai's train_uncond.py writes (tiny network, same keys)."""
    path = write_lightning_checkpoint(tmp_path_factory.mktemp("release") / f"{NAME}.ckpt",
                                      random_native_state(TINY))
    return path.read_bytes()


@pytest.fixture
def home(tmp_path, monkeypatch) -> dict:
    """The user's folders (XDG) under tmp_path, for this process and the subprocesses it starts."""
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "DD_BRIDGE_CATALOGUE": str(tmp_path / "catalogue.yaml")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(catalogue.MIRROR_ENV, raising=False)
    return env


def models_dir(home) -> Path:
    return Path(home["XDG_DATA_HOME"]) / "dd-bridge" / "models"


def cache_dir(home) -> Path:
    return Path(home["XDG_CACHE_HOME"]) / "dd-bridge" / "downloads"


def files_in(folder: Path) -> list[str]:
    """Every name in the folder, hidden temporary ones included."""
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def write_catalogue(home, url: str, data: bytes | None, **fields) -> None:
    entry = {"name": NAME, "url": url, "sample_rate": 44100, "window": 16384,
             "trained_on": "random weights made by the tests", "licence": "CC0-1.0",
             "licence_url": "https://creativecommons.org/publicdomain/zero/1.0/"}
    if data is not None:
        entry.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    entry.update(fields)
    Path(home["DD_BRIDGE_CATALOGUE"]).write_text(yaml.safe_dump([entry]))


@pytest.fixture(autouse=True)
def _info_logs(caplog):
    caplog.set_level(logging.INFO)  # main() logs through the handler of the first test: caplog sees every run


def get(capsys, *argv):
    code = main(["models", "get", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("dd-bridge models get: error: ")]
    assert len(lines) == 1 and lines == [line for line in err.splitlines() if "error" in line], err
    return lines[0]


def dd_bridge(env: dict, *argv, **options) -> subprocess.Popen:
    full = {**os.environ, **env, "PYTHONPATH": str(constants.REPO_DIR), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "bridge", *map(str, argv)], env=full, text=True, **options)


def ctrl_c_as_on_a_terminal() -> None:
    """Ctrl-C's default action, as a command run from a terminal has it: a test suite started in the background by
    a shell (`cmd &`) ignores SIGINT, and a child inherits that, so the signal sent would be dropped."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_on_a_terminal(env: dict, answer: str, *argv) -> tuple[int, str, str]:
    """Runs dd-bridge with a pseudo-terminal as stdin (as in a shell) and types ``answer`` when it asks."""
    master, slave = pty.openpty()
    try:
        process = dd_bridge(env, *argv, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.write(master, answer.encode() + b"\n")
        out, err = process.communicate(timeout=300)
    finally:
        os.close(master)
        os.close(slave)
    return process.returncode, out, err


def test_get_asks_once_downloads_verifies_converts_and_says_how_to_use_it(tmp_path, home, checkpoint):
    with FileServer({f"/files/{NAME}.ckpt": checkpoint}) as server:
        write_catalogue(home, f"{server.url}/files/{NAME}.ckpt", checkpoint)

        code, out, err = run_on_a_terminal(home, "n", "models", "get", NAME)
        assert code == 1 and out == "" and "[y/N]" in err and "CC0-1.0" in err
        assert err.strip().splitlines()[-1].endswith("licence not accepted; nothing downloaded")
        assert server.requests == [] and files_in(models_dir(home)) == []

        code, out, err = run_on_a_terminal(home, "y", "models", "get", NAME)
        assert code == 0, err
        weights, card = models_dir(home) / f"{NAME}.safetensors", models_dir(home) / f"{NAME}.yaml"
        assert out.splitlines() == [str(weights), str(card)]
        assert f"--model {NAME}" in err and "dd-bridge serve" in err
        assert server.requests == [(f"/files/{NAME}.ckpt", None)] and server.sent == [len(checkpoint)]

    assert files_in(models_dir(home)) == [weights.name, card.name]
    assert files_in(cache_dir(home)) == []  # the .ckpt is gone once converted
    installed = load_model(NAME)
    (tmp_path / "original.ckpt").write_bytes(checkpoint)
    original = load_model(tmp_path / "original.ckpt", sample_rate=44100, window=16384)
    assert installed.sha256 == original.sha256
    fields = yaml.safe_load(card.read_text())
    assert (fields["name"], fields["sample_rate"], fields["window"]) == (NAME, 44100, 16384)
    assert fields["licence"] == "CC0-1.0 (stated at https://creativecommons.org/publicdomain/zero/1.0/)"
    assert fields["trained_on"] == "random weights made by the tests"
    assert fields["download"]["sha256"] == hashlib.sha256(checkpoint).hexdigest()

    listed = dd_bridge(home, "models", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = listed.communicate(timeout=300)
    assert listed.returncode == 0, err
    rows = [line.split() for line in out.splitlines()]
    assert [NAME, "44100", "16384"] == rows[rows.index(["NAME", "SAMPLE", "RATE", "WINDOW", "STATE", "TRAINED",
                                                        "ON"]) + 1][:3]
    assert [NAME, "44100", "16384", "installed", "random", "weights", "made", "by", "the", "tests"] in rows
    assert [NAME, "44100", "16384", f"{installed.num_parameters / 1e6:.1f}M", str(weights)] in rows


def test_an_installed_model_is_not_fetched_again(home, checkpoint, capsys, caplog):
    with FileServer({"/m.ckpt": checkpoint}) as server:
        write_catalogue(home, f"{server.url}/m.ckpt", checkpoint)
        assert get(capsys, NAME, "--yes")[0] == 0
        code, out, err = get(capsys, NAME, "--yes")
        assert code == 0 and out.strip() == str(models_dir(home) / f"{NAME}.safetensors")
        assert "installed already" in caplog.text and len(server.requests) == 1


def test_an_interrupted_download_resumes_where_it_stopped(home, checkpoint, capsys):
    half = len(checkpoint) // 2
    with FileServer({"/m.ckpt": checkpoint}) as server:
        write_catalogue(home, f"{server.url}/m.ckpt", checkpoint)
        server.cut_after = half
        code, out, err = get(capsys, NAME, "--yes")
        assert code == 1 and out == ""
        assert "interrupted at" in one_error_line(err) and "run the same command again to resume" in err
        assert files_in(models_dir(home)) == []
        assert files_in(cache_dir(home)) == [f"{NAME}.ckpt.part", f"{NAME}.ckpt.part.source"]
        assert (cache_dir(home) / f"{NAME}.ckpt.part").stat().st_size == half

        code, out, err = get(capsys, NAME, "--yes")
        assert code == 0, err
        assert server.requests == [("/m.ckpt", None), ("/m.ckpt", f"bytes={half}-")]
        assert server.sent == [half, len(checkpoint) - half]  # the rest only, not the whole file again
    assert load_model(NAME).num_parameters > 0 and files_in(cache_dir(home)) == []


@pytest.mark.parametrize("honour_if_range", [True, False])
def test_a_file_changed_on_the_server_between_two_runs_is_never_resumed_into_a_mix(home, checkpoint, capsys,
                                                                                  honour_if_range):
    """s41 review #10: an entry without a published checksum, cut half way; the file on the server replaced before
    the rerun. The rerun appended the new file's second half to the old one's first and installed the mix (163
    tensors of one, 746 of the other, in the review's run). Now the rest is asked for with If-Range (the part's
    version, kept beside it): a server that honours it sends the new file whole; one that does not is caught where
    the length changed."""
    other = write_lightning_checkpoint(Path(home["XDG_CACHE_HOME"]).parent / "v2.ckpt",
                                       random_native_state(TINY, seed=2)).read_bytes()
    other = other if honour_if_range else other + b"\0" * 64  # a server ignoring If-Range: a length that differs
    half = len(checkpoint) // 2
    with FileServer({"/m.ckpt": checkpoint}) as server:
        server.honour_if_range = honour_if_range
        write_catalogue(home, f"{server.url}/m.ckpt", None)  # no sha256, no size
        server.cut_after = half
        code, out, err = get(capsys, NAME, "--yes")
        assert code == 1 and "run the same command again to resume" in err
        assert files_in(cache_dir(home)) == [f"{NAME}.ckpt.part", f"{NAME}.ckpt.part.source"]
        server.files["/m.ckpt"] = other  # a new version under the same address
        code, out, err = get(capsys, NAME, "--yes")
        assert server.if_ranges[1] == f'"{hashlib.sha256(checkpoint).hexdigest()[:16]}"'  # the part's version
        if honour_if_range:
            assert code == 0, err
            assert server.sent[1] == len(other)  # the new file whole, not its second half
        else:
            assert code == 1 and "the file on the server changed since the partial download" in one_error_line(err)
            assert files_in(cache_dir(home)) == []  # nothing of the old version left to mix
            code, out, err = get(capsys, NAME, "--yes")
            assert code == 0, err
    installed = load_model(NAME).state_dict
    wanted = random_native_state(TINY, seed=2)
    assert all(torch.equal(installed[key], value) for key, value in wanted.items())
    assert files_in(cache_dir(home)) == []


def test_a_resumed_download_shows_its_progress_in_bytes_from_where_it_stopped(home, checkpoint, capsys):
    half = len(checkpoint) // 2
    with FileServer({"/m.ckpt": checkpoint}) as server:
        write_catalogue(home, f"{server.url}/m.ckpt", checkpoint)
        server.cut_after = half
        get(capsys, NAME, "--yes")
        code, out, err = get(capsys, NAME, "--yes")
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith(f"{NAME}: ")]  # stderr is no terminal: lines
    size = tqdm.format_sizeof(len(checkpoint), "B", divisor=1000)  # "3.57MB", as the bar writes sizes
    assert "\r" not in err and lines, err
    assert not lines[0].startswith(f"{NAME}:   0%")  # counted from where the first run stopped
    assert lines[-1].startswith(f"{NAME}: 100% {size}/{size} ["), lines


def test_ctrl_c_during_the_download_keeps_what_arrived_for_the_rerun(home, checkpoint, capsys):
    third = len(checkpoint) // 3
    part = cache_dir(home) / f"{NAME}.ckpt.part"
    with FileServer({"/m.ckpt": checkpoint}) as server:
        write_catalogue(home, f"{server.url}/m.ckpt", checkpoint)
        server.stall_after = third
        process = dd_bridge(home, "models", "get", NAME, "--yes", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=ctrl_c_as_on_a_terminal)
        deadline = time.monotonic() + 120
        while not (part.is_file() and part.stat().st_size == third):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 130 and out == "", err  # err: why, when it ever ends otherwise
        assert "stopped at" in err and "run the same command again to resume" in err
        assert files_in(models_dir(home)) == [] and part.stat().st_size == third

        code, out, err = get(capsys, NAME, "--yes")
        assert code == 0, err
        assert server.requests[-1] == ("/m.ckpt", f"bytes={third}-") and server.sent[-1] == len(checkpoint) - third
    assert files_in(models_dir(home)) == [f"{NAME}.safetensors", f"{NAME}.yaml"]


def test_a_server_that_cannot_resume_sends_it_all_again(home, checkpoint, capsys, caplog):
    with FileServer({"/m.ckpt": checkpoint}) as server:
        write_catalogue(home, f"{server.url}/m.ckpt", checkpoint)
        server.cut_after, server.honour_range = 1000, False
        assert get(capsys, NAME, "--yes")[0] == 1
        code, out, err = get(capsys, NAME, "--yes")
        assert code == 0, err
        assert "cannot resume" in caplog.text and server.sent == [1000, len(checkpoint)]
    assert files_in(models_dir(home)) == [f"{NAME}.safetensors", f"{NAME}.yaml"]


def test_a_corrupt_download_is_refused_and_deleted(home, checkpoint, capsys):
    damaged = bytearray(checkpoint)
    damaged[len(damaged) // 2] ^= 0xFF
    with FileServer({"/m.ckpt": bytes(damaged)}) as server:
        write_catalogue(home, f"{server.url}/m.ckpt", checkpoint)  # the checksum of the good file
        code, out, err = get(capsys, NAME, "--yes")
    assert code == 1 and out == "" and "corrupt download" in one_error_line(err)
    assert files_in(models_dir(home)) == [] and files_in(cache_dir(home)) == []


def test_a_file_of_the_wrong_length_is_not_downloaded(home, checkpoint, capsys):
    with FileServer({"/m.ckpt": checkpoint + b"extra"}) as server:
        write_catalogue(home, f"{server.url}/m.ckpt", checkpoint)
        code, out, err = get(capsys, NAME, "--yes")
    assert code == 1 and "the catalogue says" in one_error_line(err)
    assert files_in(models_dir(home)) == [] and files_in(cache_dir(home)) == []


def test_without_a_published_checksum_a_pickle_that_runs_code_is_refused(home, tmp_path, capsys):
    marker = tmp_path / "pwned"
    torch.save({"state_dict": {}, "payload": Malicious(marker)}, tmp_path / "evil.ckpt")
    with FileServer({"/m.ckpt": (tmp_path / "evil.ckpt").read_bytes()}) as server:
        write_catalogue(home, f"{server.url}/m.ckpt", None)  # no sha256, no size: as for a model without them
        code, out, err = get(capsys, NAME, "--yes")
    assert code == 1 and "refused" in one_error_line(err) and "not a usable model" in err
    assert not marker.exists()
    assert files_in(models_dir(home)) == [] and files_in(cache_dir(home)) == []


def test_a_catalogue_entry_whose_window_does_not_fit_keeps_the_download_and_blames_the_entry(home, checkpoint,
                                                                                             capsys):
    """s41 review #11: a typo in a catalogue's window (3) downloaded and verified the file, then deleted it as "not a
    usable model", and every run after downloaded it all again for the same refusal."""
    with FileServer({"/m.ckpt": checkpoint}) as server:
        write_catalogue(home, f"{server.url}/m.ckpt", checkpoint, window=3)
        code, out, err = get(capsys, NAME, "--yes")
        line = one_error_line(err)
        assert code == 1 and f"catalogue entry {NAME!r}" in line and "window 3 given do not fit" in line, line
        assert "the verified download is kept" in line and files_in(cache_dir(home)) == [f"{NAME}.ckpt"]
        write_catalogue(home, f"{server.url}/m.ckpt", checkpoint)  # the entry fixed: installed, not fetched again
        code, out, err = get(capsys, NAME, "--yes")
        assert code == 0, err
        assert len(server.requests) == 1 and files_in(cache_dir(home)) == []
    assert load_model(NAME).window == 16384


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A real tmpfs of ``size`` mounted at ``folder`` (the tests run as root, as in CI)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("stated", [True, False], ids=["length-stated", "no-length"])
def test_a_full_disk_while_downloading_is_one_line_and_resumable(home, checkpoint, capsys, stated):
    """With the length stated the shortfall is seen before any byte; without it the write itself hits ENOSPC."""
    with FileServer({"/m.ckpt": checkpoint}) as server, small_disk(Path(home["XDG_CACHE_HOME"]), "1m"):
        server.send_length = stated
        write_catalogue(home, f"{server.url}/m.ckpt", checkpoint, size=None)
        code, out, err = get(capsys, NAME, "--yes")
        line = one_error_line(err)
        assert code == 1 and out == ""
        assert ("not enough disk space" in line and "MB free" in line) if stated else "disk full at" in line
        assert files_in(models_dir(home)) == []
        assert files_in(cache_dir(home)) == ([] if stated else [f"{NAME}.ckpt.part", f"{NAME}.ckpt.part.source"])


def test_a_full_disk_while_converting_leaves_the_model_folder_empty(home, checkpoint, capsys):
    with FileServer({"/m.ckpt": checkpoint}) as server:
        write_catalogue(home, f"{server.url}/m.ckpt", checkpoint)
        with small_disk(Path(home["XDG_DATA_HOME"]), "1m"):
            code, out, err = get(capsys, NAME, "--yes")
            assert code == 1 and out == "" and "disk full while writing" in one_error_line(err)
            assert files_in(models_dir(home)) == []  # no hidden partial file either
        assert files_in(cache_dir(home)) == [f"{NAME}.ckpt"]  # verified, kept for the rerun
        code, out, err = get(capsys, NAME, "--yes")
        assert code == 0, err
        assert len(server.requests) == 1  # converted from the kept download: not fetched again
    assert files_in(models_dir(home)) == [f"{NAME}.safetensors", f"{NAME}.yaml"]


def test_no_network_is_one_line(home, checkpoint, capsys):
    with socket.socket() as probe:  # a port nothing listens on: connection refused, as with no network
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    write_catalogue(home, f"http://127.0.0.1:{port}/m.ckpt", checkpoint)
    code, out, err = get(capsys, NAME, "--yes")
    line = one_error_line(err)
    assert code == 1 and out == "" and "cannot reach the server (connection refused)" in line
    assert catalogue.MIRROR_ENV in line
    assert files_in(models_dir(home)) == [] and files_in(cache_dir(home)) == []


def test_a_missing_file_on_the_server_is_one_line(home, checkpoint, capsys):
    with FileServer({}) as server:
        write_catalogue(home, f"{server.url}/m.ckpt", checkpoint)
        code, out, err = get(capsys, NAME, "--yes")
    assert code == 1 and "the server answered 404" in one_error_line(err)
    assert files_in(cache_dir(home)) == []


def test_without_a_terminal_it_asks_for_yes_and_fetches_nothing(home, checkpoint, capsys):
    with FileServer({"/m.ckpt": checkpoint}) as server:
        write_catalogue(home, f"{server.url}/m.ckpt", checkpoint)
        code, out, err = get(capsys, NAME)
    assert code == 1 and "pass --yes" in one_error_line(err) and "CC0-1.0" in err
    assert server.requests == []


def test_the_released_models_come_from_the_mirror_and_are_checked_against_the_published_checksums(
        home, checkpoint, capsys, caplog, monkeypatch):
    monkeypatch.delenv("DD_BRIDGE_CATALOGUE")
    with FileServer({"/mirror/gwf-440k.ckpt": checkpoint}) as server:
        monkeypatch.setenv(catalogue.MIRROR_ENV, f"{server.url}/mirror/")
        code, out, err = get(capsys, "glitch-440k", "--yes")  # the notebook's name for it
        assert server.requests == [("/mirror/gwf-440k.ckpt", None)]
    assert code == 1 and "corrupt download" in one_error_line(err)  # not the real file: refused
    assert "MIT (stated at https://huggingface.co/harmonai/glitch-440k)" in caplog.text
    assert files_in(models_dir(home)) == [] and files_in(cache_dir(home)) == []


def test_the_catalogue_lists_the_six_releases_with_their_published_facts():
    releases = {release.name: release for release in catalogue.RELEASES}
    assert set(releases) == {"gwf-440k", "jmann-small-190k", "jmann-large-580k", "maestro-uncond-150k",
                             "unlocked-uncond-250k", "honk-140k"}
    for release in releases.values():
        assert release.sha256 and release.url.endswith(f"/{release.name}.ckpt") and release.licence_url
    assert (releases["jmann-large-580k"].sample_rate, releases["jmann-large-580k"].window) == (48000, 131072)
    assert catalogue.find_release("maestro-150k").name == "maestro-uncond-150k"
    with pytest.raises(ConfigError, match="no released model named 'nope'"):
        catalogue.find_release("nope")


def test_a_bad_catalogue_file_is_one_line(home, capsys):
    Path(home["DD_BRIDGE_CATALOGUE"]).write_text("- {name: x, url: ftp://x/x.ckpt, sample_rate: 1, window: 8}\n")
    code, out, err = get(capsys, "x", "--yes")
    assert code == 1 and "url must be an http:// or https:// address" in one_error_line(err)
    for field, fragment in (("aliases: 5", "aliases must be a list of names"),
                            ("trained_on: [1]", "trained_on must be text"),
                            ("aliases: [1]", "aliases must be names")):  # s41 review #11: TypeErrors before
        Path(home["DD_BRIDGE_CATALOGUE"]).write_text(
            f"- {{name: x, url: https://x/x.ckpt, sample_rate: 1, window: 8, {field}}}\n")
        code, out, err = get(capsys, "x", "--yes")
        assert code == 1 and fragment in one_error_line(err) and "catalogue.yaml" in err, err
