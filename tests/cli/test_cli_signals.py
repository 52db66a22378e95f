"""SIGTERM and SIGHUP stop a render command as Ctrl-C does: a real `dd-bridge vary` stopped while it writes into
--out leaves no hidden temporary there and ends with the one line "interrupted" and status 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# The command, its writes slowed: the fsync of a temporary in --out (check_writable's empty one before the render,
# or the finished WAV's) says so in a marker file and then waits, as a slow USB disk or network share does.
CHILD = r"""
import os, sys, time
marker, which = sys.argv[1], sys.argv[2]
real = os.fsync

def slow(fd):
    try:
        name = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        name = ""
    if ".dd-bridge-" in name and name.endswith(".partial.wav" if which == "wav" else ".partial"):
        open(marker, "w").close()
        time.sleep(300)
    real(fd)

os.fsync = slow
from bridge.cli import main
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir() or not hasattr(signal, "SIGHUP"),
                    reason="finds the file being written through /proc (Linux)")
@pytest.mark.parametrize("signum, which", [(signal.SIGTERM, "check"), (signal.SIGTERM, "wav"),
                                           (signal.SIGHUP, "wav")])
def test_a_render_stopped_while_it_writes_leaves_no_partial_file(tmp_path, tiny_model_path, drum_samples, signum,
                                                                 which):
    out, marker = tmp_path / "out", tmp_path / "writing"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    command = [sys.executable, "-c", CHILD, str(marker), which, "vary", str(drum_samples["wav"]), "--model",
               str(tiny_model_path), "--count", "1", "--steps", "2", "--out", str(out)]
    # started as from a terminal: a run under nohup (a CI job's) would hand its ignored SIGHUP on, and an ignored
    # signal stays ignored (test_a_signal_ignored_stays_ignored_and_the_others_are_put_back)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=_as_from_a_terminal)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), process.communicate(timeout=60)
        assert [p.name for p in out.iterdir() if p.name.startswith(".dd-bridge-")]  # caught mid-write
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "dd-bridge vary: interrupted", stderr
    assert "Traceback" not in stderr and stdout == ""
    assert sorted(os.listdir(out)) == []  # no temporary, and no half-named file


def _as_from_a_terminal() -> None:
    for number in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)


def test_a_signal_ignored_stays_ignored_and_the_others_are_put_back():
    """`nohup dd-bridge pack ...`: SIGHUP ignored before the command, so the closed terminal must not stop it."""
    from bridge.cli import stop_on_terminate

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_on_terminate():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # stops as Ctrl-C does
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)
