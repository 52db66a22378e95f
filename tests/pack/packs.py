"""What the pack suites share: real one-shots, the command as a user types it, and a pack folder read back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bridge.cli import main
from bridge.files import TEMPORARY_PREFIX

REPO = Path(__file__).resolve().parents[2]
FAST = ["--steps", "3"]
REFERENCE = ["--per-source", 2, "--noise", "0.3,0.7"]  # the suites' pack: 2 sources x 2 noise levels x 2 variations


def sources(drumkits: Path) -> list[Path]:
    """A kick and a hat from a kit the bundled model never trained on (docs/training-data.md)."""
    kit = drumkits / "BJA_Pacific"
    return [kit / "BD_01.aiff", kit / "HH_01.aiff"]


def pack_args(model: Path, out: Path, drumkits: Path, *more) -> list[str]:
    return ["pack", *map(str, sources(drumkits)), "--out", str(out), "--model", str(model), "--seed", "21",
            "--threads", "1", *FAST,
            *map(str, more)]


def run_pack(*args) -> int:
    """`dd-bridge pack ...` in this process (torch already loaded: seconds, not a fresh interpreter's start)."""
    return main([str(arg) for arg in args])


def start(*args, prelude: str = "") -> subprocess.Popen:
    """`dd-bridge ARGS` as a real process on this tree (prelude first, e.g. to take matplotlib away)."""
    code = f"{prelude}\nimport sys; from bridge.cli import main; sys.exit(main())"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def contents(folder: Path, *, timings: bool = False) -> dict[str, bytes]:
    """Every file of a pack by its path in the pack; the manifests without the seconds each render took (timings
    differ from run to run, nothing else may)."""
    import json

    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            found[str(path.relative_to(folder))] = path.read_bytes()
    if not timings:
        data = json.loads(found.pop("manifest.json"))
        for entry in data["files"]:
            entry.pop("seconds")
        data["model"].pop("device", None)
        found["manifest.json"] = json.dumps(data, sort_keys=True).encode()
        found["manifest.csv"] = b"\n".join(line.rsplit(b",", 2)[0] + b"," + line.rsplit(b",", 1)[1]
                                           for line in found["manifest.csv"].splitlines())
    return found


def temporaries(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.name.startswith(TEMPORARY_PREFIX)]
