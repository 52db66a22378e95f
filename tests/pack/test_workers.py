"""Local workers: a pack rendered by two worker processes is the one-worker pack, byte for byte."""

from __future__ import annotations

import pytest

from bridge.pack import manifest
from tests.pack.packs import REFERENCE, contents, pack_args, run_pack

pytestmark = pytest.mark.usefixtures("one_thread")


def test_two_worker_processes_make_the_same_pack_as_one(reference, tmp_path, tiny_model_path, drumkits):
    out = tmp_path / "pack"
    assert run_pack(*pack_args(tiny_model_path, out, drumkits, *REFERENCE, "--workers", 2)) == 0
    assert manifest.validate(out) == []
    assert contents(out) == contents(reference)
