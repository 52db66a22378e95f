"""Fixtures every suite shares: real drum one-shots and small architectures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bridge.engine.unet import UNetConfig

DRUMKITS = Path("/usr/share/hydrogen/data/drumkits")

# 4 levels (length multiple 8), attention on the inner two: builds in milliseconds, same code paths as the full model.
TINY = UNetConfig(channels=(32, 32, 64, 64), n_attn_layers=2)


@pytest.fixture(scope="session")
def drumkits() -> Path:
    if not DRUMKITS.is_dir():
        raise RuntimeError(f"{DRUMKITS} is missing: ./bootstrap.sh test installs hydrogen-drumkits")
    return DRUMKITS


@pytest.fixture(scope="session")
def drum_samples(drumkits) -> dict[str, Path]:
    """One real one-shot per format (wav, flac, aiff), smallest first so tests stay fast."""
    found = {}
    for suffix in ("wav", "flac", "aiff"):
        files = sorted(drumkits.rglob(f"*.{suffix}"), key=lambda p: (p.stat().st_size, str(p)))
        if not files:
            raise RuntimeError(f"no .{suffix} file under {drumkits}")
        found[suffix] = files[len(files) // 4]
    return found


@pytest.fixture
def tiny_config() -> UNetConfig:
    return TINY


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
