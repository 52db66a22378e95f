"""Runs the Max device's JavaScript suite (Node's built-in test runner, fake LiveAPI) as part of pytest."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

NODE_SUITE = Path(__file__).resolve().parent / "node"


def test_device_javascript_under_node():
    node = shutil.which("node")
    assert node, "node is missing: ./bootstrap.sh test installs it (Debian package nodejs)"
    result = subprocess.run([node, "--test", str(NODE_SUITE)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"node --test failed:\n{result.stdout}\n{result.stderr}"
    assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout, result.stdout
