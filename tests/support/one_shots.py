"""A folder of real one-shots for a training test: links to a Hydrogen kit's smallest files (the quickest to load
and to train on), so the kit's files stay where they are."""

from __future__ import annotations

from pathlib import Path


def smallest(drumkits: Path, folder: Path, count: int, kit: str = "rumpf_kit_z01_h2") -> Path:
    """folder holding links to the kit's count smallest FLAC files."""
    folder.mkdir(parents=True, exist_ok=True)
    for src in sorted((drumkits / kit).glob("*.flac"), key=lambda p: p.stat().st_size)[:count]:
        (folder / src.name).symlink_to(src)
    return folder
