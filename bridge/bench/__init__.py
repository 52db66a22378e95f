"""Benchmarks (`dd-bridge bench`) and the diffusers reference they, and the tests, compare the engine against.

Nothing that renders for a producer imports this package: the engine, the service and the render commands run
without it. diffusers is a test-only dependency (the `test` extra); ``reference`` says how to install it.
"""
