"""The pack every suite here compares with: rendered once per session, by one worker in this process."""

from __future__ import annotations

import pytest

from tests.pack.packs import REFERENCE, pack_args, run_pack


@pytest.fixture(scope="session")
def reference(tmp_path_factory, tiny_model_path, drumkits):
    """A 2-source x 2-noise x 2-variation pack with --threads 1; tests copy it rather than change it."""
    import torch

    before = torch.get_num_threads()
    out = tmp_path_factory.mktemp("packs") / "reference"
    assert run_pack(*pack_args(tiny_model_path, out, drumkits, *REFERENCE)) == 0
    assert torch.get_num_threads() == before  # the in-process worker gives this process its threads back
    return out
