"""bootstrap.sh, the README's first two commands: what a second start installs (nothing, offline), and PortAudio tried
once. Run on a copy of the script with a stand-in .venv whose python records pip and apt instead of running them."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SYSTEM_PATH = "/usr/bin:/bin"

PYTHON = """#!/bin/sh
case "$*" in
  "-m pip --version") exit 0 ;;
  "-m pip install"*) echo "pip $*" >> "$LOG"; exit 0 ;;
  "-c import torch") exit 0 ;;
  "-c import sounddevice") exit "${SOUNDDEVICE_RC:-0}" ;;
esac
exec REAL "$@"
"""


@pytest.fixture
def copy(tmp_path):
    root = tmp_path / "dd-bridge"
    (root / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(REPO / "bootstrap.sh", root)
    shutil.copy(REPO / "pyproject.toml", root)
    tools = tmp_path / "tools"
    tools.mkdir()
    scripts = {root / ".venv/bin/python": PYTHON.replace("REAL", sys.executable),
               root / ".venv/bin/dd-bridge": '#!/bin/sh\necho "dd-bridge $*" >> "$LOG"\n',
               tools / "apt-get": '#!/bin/sh\necho "apt-get $*" >> "$LOG"\nexit 100\n',
               tools / "sudo": '#!/bin/sh\nexec "$@"\n'}
    for path, text in scripts.items():
        path.write_text(text)
        path.chmod(0o755)
    return root


def _run(root: Path, **env) -> tuple[list[str], str]:
    log = root.parent / "calls.log"
    log.unlink(missing_ok=True)
    path = f"{root.parent / 'tools'}:{SYSTEM_PATH}"
    result = subprocess.run(["bash", str(root / "bootstrap.sh"), "serve", "--port", "9000"], capture_output=True,
                            text=True, env={"PATH": path, "HOME": str(root.parent), "LOG": str(log), **env},
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return (log.read_text().splitlines() if log.exists() else []), result.stderr


def _extra() -> str:
    return "gpu" if shutil.which("nvidia-smi", path=SYSTEM_PATH) else "cpu"


def _hash(root: Path) -> str:
    return hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()[:16]


def test_a_start_after_the_tests_installs_nothing_and_a_changed_project_installs_what_was_there(copy):
    stamp = copy / ".venv/.dd-bridge-installed"
    extra = _extra()
    calls, _ = _run(copy)  # a fresh .venv: installed with serve's extras
    assert calls == [f"pip -m pip install -q -e .[{extra}]", "dd-bridge serve --port 9000"]
    assert stamp.read_text() == f"{_hash(copy)} {extra}\n"
    assert _run(copy)[0] == ["dd-bridge serve --port 9000"]  # the second start: nothing installed (offline)

    stamp.write_text(f"{_hash(copy)} {extra},test\n")  # `./bootstrap.sh test` ran since: its extras hold serve's
    assert _run(copy)[0] == ["dd-bridge serve --port 9000"]  # before: installed again (pip needs the network)

    stamp.write_text(f"0123456789abcdef test,{extra}\n")  # pyproject.toml changed since
    calls, said = _run(copy)
    assert calls[0] == f"pip -m pip install -q -e .[{','.join(sorted([extra, 'test']))}]", said
    assert stamp.read_text() == f"{_hash(copy)} {','.join(sorted([extra, 'test']))}\n"

    # cpu and gpu exclude each other (onnxruntime beside onnxruntime-gpu breaks the CUDA provider): a machine that
    # was set up the other way installs this run's alone, with what else it had
    other = "gpu" if extra == "cpu" else "cpu"
    stamp.write_text(f"{_hash(copy)} {other},test\n")
    calls, said = _run(copy)
    assert calls[0] == f"pip -m pip install -q -e .[{','.join(sorted([extra, 'test']))}]", said


@pytest.mark.skipif(sys.platform != "linux", reason="PortAudio comes from apt on Linux only")
def test_portaudio_that_cannot_be_installed_is_tried_once(copy):
    """Where apt cannot install it (no apt, sudo asking a password) every start asked again before starting."""
    (copy / ".venv/.dd-bridge-installed").write_text(f"{_hash(copy)} {_extra()}\n")
    calls, said = _run(copy, SOUNDDEVICE_RC="1")
    assert calls[0].startswith("apt-get update") and calls[-1] == "dd-bridge serve --port 9000"
    assert "no PortAudio (libportaudio2): the service runs without playback" in said
    calls, said = _run(copy, SOUNDDEVICE_RC="1")
    assert calls == ["dd-bridge serve --port 9000"]  # not tried again
    assert "(apt is tried again once .venv/.dd-bridge-no-portaudio is removed)" in said
    os.remove(copy / ".venv/.dd-bridge-no-portaudio")
    assert _run(copy, SOUNDDEVICE_RC="1")[0][0].startswith("apt-get update")  # asked for again
