"""The sample folder: where results go, what they are called, and what each file says about its making.

A request names a folder (or leaves it to the settings) and a source file; neither can make the service write
outside the configured folders: folders are resolved (symlinks included) and must lie inside an allowed one, and
names taken from source files are reduced to one plain path component.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from bridge.engine.audio import Clip, write_numbered
from bridge.errors import ConfigError

MAX_NAME = 80
_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]')  # separators, and what Windows and macOS Finder refuse


def safe_name(text: str, fallback: str = "clip") -> str:
    """One path component from any text: no separators, no leading dots, no control characters."""
    name = _UNSAFE.sub("_", text).strip().lstrip(".").strip()
    return name[:MAX_NAME].rstrip(" .") or fallback


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


class SampleFolder:
    """Resolves request folders inside the allowed ones and writes numbered, complete files into them."""

    def __init__(self, default: Path, allowed: tuple[Path, ...]):
        self.allowed = tuple(Path(os.path.realpath(folder)) for folder in allowed)
        self.default = self.resolve(str(default))

    def resolve(self, folder: str) -> Path:
        """The real folder for a request's folder text; ConfigError unless it lies inside an allowed folder."""
        path = Path(os.path.expanduser(folder))
        if not path.is_absolute():
            raise ConfigError(f"folder must be an absolute path, not {folder!r}")
        real = Path(os.path.realpath(path))
        if not any(_inside(real, allowed) for allowed in self.allowed):
            raise ConfigError(f"folder {folder} is outside the allowed folders "
                              f"({', '.join(map(str, self.allowed))}); add it to allowed_folders in the config")
        return real

    def _subfolder(self, folder: Path, name: str) -> Path:
        target = folder / safe_name(name)
        target.mkdir(parents=True, exist_ok=True)
        real = Path(os.path.realpath(target))
        if not _inside(real, folder):  # a symlink planted inside the sample folder
            raise ConfigError(f"{target} leads outside the sample folder; not writing there")
        return real

    def write(self, folder: Path, clip: Clip, fmt: str, metadata: dict, *, operation: str,
              sources: tuple[str, ...] = (), model: str = "model") -> Path:
        """Write one result under ``folder`` as the next free "<stem> NNN.wav" of its kind; returns its path.

        vary: "<source>/<source> var NNN.wav"; generate: "generated/<model> NNN.wav";
        interpolate: "interpolated/<a> to <b> NNN.wav".
        """
        stems = [safe_name(Path(source).stem) for source in sources]
        if operation == "vary":
            target, numbered = self._subfolder(folder, stems[0]), f"{stems[0]} var"
        elif operation == "generate":
            target, numbered = self._subfolder(folder, "generated"), safe_name(model, "model")
        else:
            target, numbered = self._subfolder(folder, "interpolated"), f"{stems[0]} to {stems[1]}"[:2 * MAX_NAME]
        return write_numbered(target, numbered, clip, fmt, metadata)
