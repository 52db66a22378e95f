"""Progress bars (bridge.progress): redrawn in place on a real terminal (a pty), plain lines in a file or a pipe,
nothing under --quiet, and nothing at all for a command that fails before its first step."""

from __future__ import annotations

import fcntl
import logging
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from bridge import progress
from bridge.progress import Bar
from tests.cli.test_render_cli import FAST, dd_bridge, written

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def info_logs():
    logger = logging.getLogger("bridge")
    before = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(before)


def test_in_a_file_each_report_is_a_line_of_its_own(tmp_path, info_logs, monkeypatch):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)  # every report a line, to see each one
    path = tmp_path / "stderr.log"
    with path.open("w") as stream, Bar("train", counts="step {n_fmt}/{total_fmt}", unit="step", stream=stream) as bar:
        for step in range(1, 4):
            bar(step, 3, note=f"loss {1 / step:.4f}")
    text = path.read_text()
    lines = text.splitlines()
    assert "\r" not in text and lines and all(line.startswith("train: ") for line in lines), text
    assert "step 1/3" in lines[0] and "step 3/3" in lines[-1] and "loss 0.3333" in lines[-1]
    assert len(lines) == len(set(lines))  # the final redraw is not written twice


def test_in_a_log_lines_are_spaced_in_time(tmp_path, info_logs):
    path = tmp_path / "stderr.log"
    with path.open("w") as stream, Bar("vary kick.wav", unit="step", stream=stream) as bar:
        for done in range(1, 1001):
            bar(done, 1000)
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and "1/1000" in lines[0] and "100% 1000/1000" in lines[1], lines  # first and last


def test_quiet_and_unstarted_bars_write_nothing(tmp_path, info_logs):
    path = tmp_path / "stderr.log"
    with path.open("w") as stream:
        with Bar("never started", stream=stream):
            pass  # a command refused before its first step
        logging.getLogger("bridge").setLevel(logging.WARNING)  # --quiet
        with Bar("quiet", stream=stream) as bar:
            bar(1, 2)
            bar(2, 2)
    assert path.read_text() == ""


def test_an_unknown_total_counts_bytes(tmp_path, info_logs):
    path = tmp_path / "stderr.log"
    with path.open("w") as stream, Bar("gwf-440k", unit="B", unit_scale=True, stream=stream) as bar:
        bar(2_500_000, None)
    assert path.read_text().startswith("gwf-440k: 2.50MB [")


TERMINAL_CHILD = """
import logging, sys, time
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
from bridge.progress import Bar
with Bar("vary kick.wav", unit="step") as bar:
    for done in range(1, 4):
        bar(done, 3)
        time.sleep(0.15)
        logging.getLogger("bridge.render").info("a log line %d", done)
"""


def test_on_a_terminal_the_bar_is_redrawn_in_place_and_logs_print_above_it():
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    child = subprocess.Popen([sys.executable, "-c", TERMINAL_CHILD], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=terminal, cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    os.close(terminal)
    received = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        received += chunk
    os.close(controller)
    assert child.wait(timeout=60) == 0
    text = received.decode()
    assert "\r" in text and "█" in text and "3/3" in text, text  # a drawn bar, redrawn with "\r"
    logged = [line.strip("\r") for line in text.split("\n") if "a log line" in line]
    assert [line.rsplit("\r", 1)[-1] for line in logged] == [f"a log line {n}" for n in (1, 2, 3)], text
    assert text.rstrip().rsplit("\r", 1)[-1].startswith("vary kick.wav: 100%|")  # the bar stays, complete


def test_a_render_logs_plain_progress_lines(tmp_path, tiny_model_path, drum_samples):
    result = dd_bridge("vary", drum_samples["wav"], "--count", 1, "--model", tiny_model_path, "--out", tmp_path, *FAST)
    written(result, 1)
    lines = [line for line in result.stderr.splitlines() if line.startswith("vary ")]
    assert "\r" not in result.stderr and lines and "100%" in lines[-1], result.stderr
