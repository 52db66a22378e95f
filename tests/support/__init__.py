"""Helpers the test suites share: model files in the layouts users bring."""
