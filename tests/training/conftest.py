"""Training tests run torch on one thread: on a shared 2-core machine two OpenMP threads wait on each other at
every barrier, and a tiny training step takes ten times as long as on one."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
