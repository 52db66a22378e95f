"""Fixtures of the service tests: a micro model loaded once, one torch thread, a drum one-shot to work on."""

from tests.support.service import _one_torch_thread, drum, renderer  # noqa: F401
