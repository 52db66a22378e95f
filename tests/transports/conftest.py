"""The transports' end-to-end tests run against the real service: they share its fixtures."""

from tests.support.service import _one_torch_thread, drum, renderer  # noqa: F401
