"""Requests that are legal but too long for the memory: a real `dd-bridge serve` under a memory limit set here.

The service runs in a child process whose address space setrlimit caps, as a small machine or a container would;
each over-long request must get a one-line error that names the longest clip, before any work, and the service
must stay up and keep rendering what fits.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import subprocess
import sys
import time

import numpy as np
import soundfile
import soxr

from bridge.transports.osc.client import OscClient
from tests.cli.test_serve_cli import model_file, serving  # noqa: F401 (model_file is a fixture)

HEADROOM = 2 << 30  # what the service may take beyond its size when idle: far less than 10 minutes need


def _limited(limit: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def _vm_size(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"^VmSize:\s+(\d+) kB", status.read(), re.MULTILINE).group(1)) * 1024


def _config(folder):
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yaml"
    config.write_text(f"osc: {{reply_port: null}}\nallowed_folders: [{folder}]\nrender: {{steps: 2, prefetch: 0}}\n")
    return config


@contextlib.contextmanager
def _service(folder, model_file, limit=None):
    """A real `dd-bridge serve` (under an address-space limit) and an OSC client talking to it."""
    with serving("--config", _config(folder), "--model", model_file, "--folder", folder / "samples",
                 preexec_fn=_limited(limit) if limit else None) as (process, lines):
        port = int(re.search(r"listening for OSC on 127\.0\.0\.1:(\d+)", "".join(lines)).group(1))
        with OscClient("127.0.0.1", port) as osc:
            yield process, osc


def _idle_size(tmp_path, model_file) -> int:
    """The address space of an idle service, measured on one started without a limit."""
    with _service(tmp_path / "probe", model_file) as (process, _osc):
        return _vm_size(process.pid)


def _ten_minutes(drum, path):
    """A real drum one-shot repeated for 10 minutes, at 11025 Hz mono to keep the file small (13 MB)."""
    hit, rate = soundfile.read(drum, dtype="float32", always_2d=True)
    hit = soxr.resample(hit.mean(axis=1), rate, 11025)
    beat = np.concatenate([hit, np.zeros(max(0, 11025 // 2 - len(hit)), np.float32)])
    soundfile.write(path, np.tile(beat, 600 * 11025 // len(beat) + 1)[: 600 * 11025], 11025, subtype="PCM_16")
    return path


def test_over_long_requests_under_a_memory_limit_get_a_clear_error_and_the_service_stays_up(tmp_path, model_file,
                                                                                          drum):
    limit = _idle_size(tmp_path, model_file) + HEADROOM
    long_clip = _ten_minutes(drum, tmp_path / "ten minutes.wav")
    one_hertz = tmp_path / "one hertz.wav"  # 120 kB whose header says 1 Hz: 60,000 s once at 48 kHz
    soundfile.write(one_hertz, np.zeros(60000, np.int16), 1, subtype="PCM_16")
    assert one_hertz.stat().st_size < 121_000

    with _service(tmp_path / "limited", model_file, limit) as (process, osc):
        for address, args in (("/dd/vary", [str(long_clip)]), ("/dd/generate", [1, 600]),
                              ("/dd/vary", [str(one_hertz)]), ("/dd/interpolate", [str(long_clip), str(drum), 2])):
            reply = osc.request(address, args, timeout=60)
            assert reply is not None and reply.address == "/dd/error", (address, reply)
            message = reply.args[1]
            assert "\n" not in message and re.search(r"the longest is \d+\.\d s", message), message
            assert osc.request("/dd/ping", [], timeout=10).address == "/dd/pong"
        status = json.loads(osc.request("/dd/status", [], timeout=10).args[0])
        assert 1 < status["longest_seconds"] < 600  # what the errors named, shown before anyone tries
        done = osc.request("/dd/vary", [str(drum)], timeout=60)  # what fits still renders
        assert done.address == "/dd/done" and os.path.exists(done.args[1])
        assert process.poll() is None


def test_the_command_line_refuses_an_over_long_render_before_working(tmp_path, model_file):
    limit = _idle_size(tmp_path, model_file) + HEADROOM
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "bridge", "--quiet", "generate", "--model", str(model_file),
                             "--seconds", "600", "--steps", "2", "--out", str(tmp_path / "out"), "--device", "cpu"],
                            capture_output=True, text=True, env=env, preexec_fn=_limited(limit), timeout=300)
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "the longest is" in result.stderr, result.stderr
    assert time.monotonic() - started < 120
    assert list((tmp_path / "out").iterdir()) == []
