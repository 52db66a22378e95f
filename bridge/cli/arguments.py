"""Argument types shared by the commands: argparse turns their errors into one line naming the option."""

from __future__ import annotations

import argparse


def bounded_int(low: int, high: int | None = None):
    """A whole number in low..high (no upper bound when high is None)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"in {low}..{high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value
    parse.__name__ = "whole number"  # argparse names the type in some messages
    return parse


def bounded_float(low: float, high: float):
    """A number in low..high."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not low <= value <= high:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be in {low:g}..{high:g}, got {text}")
        return value
    parse.__name__ = "number"
    return parse


positive_int = bounded_int(1)
