"""Fixtures of the service tests: a micro model loaded once, one torch thread, a drum one-shot to work on."""

from __future__ import annotations

import shutil

import pytest

from bridge.daemon.renderer import Renderer
from tests.daemon.harness import micro_model, one_thread


@pytest.fixture(scope="session")
def renderer() -> Renderer:
    with one_thread():
        return Renderer(micro_model(), "micro", device="cpu")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with one_thread():
        yield


@pytest.fixture
def drum(tmp_path, drum_samples):
    """A real one-shot (mono 44.1 kHz wav) copied where the test owns it."""
    source = tmp_path / "in" / "kick.wav"
    source.parent.mkdir()
    shutil.copy(drum_samples["wav"], source)
    return source
