"""What the DAW suites share: a real `dd-bridge serve` on the tiny test model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge.constants import REPO_DIR


@pytest.fixture(scope="session")
def service(tmp_path_factory, tiny_model_path):
    """`dd-bridge serve` on the tiny test model, on a free port, allowed to write under its own folder; its user
    config folder (and so its recipes folder) in that folder too."""
    root = tmp_path_factory.mktemp("service")
    config = root / "config.yaml"
    config.write_text(
        f"folder: {root / 'samples'}\n"
        f"allowed_folders: [{root}]\n"
        "osc: {port: 0, reply_port: null}\n"
        "midi: {port: none}\n"
        "render: {prefetch: 0, sampler: v-ddim}\n")
    log = root / "service.log"  # a file, not a pipe: a full pipe would block the service's logging
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "serve", "--config", str(config), "--model", str(tiny_model_path),
             "--device", "cpu"],
            cwd=REPO_DIR, stderr=log_file,
            env=dict(os.environ, PYTHONPATH=str(REPO_DIR), XDG_CONFIG_HOME=str(root / "config")))
    try:
        port = None
        deadline = time.monotonic() + 180
        while port is None and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            text = log.read_text()
            found = re.search(r"listening for OSC on [\d.]+:(\d+)", text)
            port = int(found[1]) if found and "ready" in text else None
        assert port, "the service did not start:\n" + log.read_text()
        yield {"port": port, "root": root, "recipes": root / "config" / "dd-bridge" / "recipes"}
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError("the service did not stop within 30 s of SIGTERM:\n" + log.read_text())


@pytest.fixture(scope="session")
def service_takes_class() -> bool:
    """Whether the service can meet `class=1:kick` in this environment (where it runs): a `class` guide installed,
    with a classifier that knows kick, as the service checks guides at the door. Else it refuses the Class
    setting in one line, and the DAW sides show that line."""
    from bridge.daemon import steering
    from bridge.engine.guides import registry
    from bridge.errors import ConfigError
    try:
        steering.checked((registry.parse_request("class=1:kick"),), 48000, False)
    except ConfigError:
        return False
    return True


@pytest.fixture(scope="session")
def long_take(tmp_path_factory, drum_samples) -> Path:
    """A 3.1 s stereo recording at 48 kHz: drum hits every 0.25 s, as a take an item plays 0.2 s of."""
    import numpy as np
    import soundfile
    hit, rate = soundfile.read(drum_samples["wav"], dtype="float32", always_2d=True)
    out = np.zeros((round(3.1 * 48000), 2), dtype="float32")
    hit = hit[: 48000 // 4, :1] if rate == 48000 else np.resize(hit[:, :1], (48000 // 4, 1))
    for start in range(0, len(out) - len(hit), 48000 // 4):
        out[start:start + len(hit)] += hit
    path = tmp_path_factory.mktemp("long") / "take 3.wav"
    soundfile.write(path, out, 48000, subtype="PCM_24")
    return path
