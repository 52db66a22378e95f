"""The part of a source file that a clip plays: the one place where a region's rule lives.

"Select a clip, press a key" means the audio the clip plays, which is often a slice of a longer file. A region is
``start`` and ``end`` in seconds of the source FILE (not of the DAW's timeline), either of which may be absent
(start 0, end the file's end), and an optional ``tail``: up to that much source audio past ``end``, so that a
one-shot cut at its clip's end can ring out. The OSC requests, the CLI and the file reader all use this.

A region is checked twice: on its own when it arrives (a negative start, start >= end), and against the file
(a start past its end). An end past the file's end is the file's end (a DAW rounds clip ends to its own grid).
A region that covers the whole file is no region at all, so whole-file clips keep their plain names and share
the whole file's prefetch. No torch here: the transports import this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bridge.errors import ConfigError


@dataclass(frozen=True)
class Region:
    """Seconds of the source file: [start, end), plus up to ``tail`` seconds after end; end None: the file's end."""

    start: float = 0.0
    end: float | None = None
    tail: float = 0.0

    def __post_init__(self):
        for name in ("start", "end", "tail"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ConfigError(f"{name} must be a number of seconds, 0 or more, not {value:g}")
        if self.end is not None and self.start >= self.end:
            raise ConfigError(f"start ({self.start:g} s) must be before end ({self.end:g} s)")

    @classmethod
    def of(cls, start: float | None = None, end: float | None = None, tail: float | None = None) -> Region | None:
        """The region the options ask for; None when they name none."""
        if start is None and end is None and not tail:
            return None
        return cls(float(start or 0.0), None if end is None else float(end), float(tail or 0.0))

    def check_loop(self, loop: bool, said: str = "tail=") -> None:
        """A loop is exactly as long as its region (or its bars): a tail, which lets a one-shot ring past its end,
        would make it longer than the clip it is named after, and drift against the grid every cycle."""
        if loop and self.tail:
            raise ConfigError(f"{said} goes with one-shots, not loops: a loop is exactly as long as its region "
                              "(or its bars)")

    def frames(self, total: int, sample_rate: int, name: str) -> tuple[int, int]:
        """(first frame, frame after the last, tail included) in a file of ``total`` frames; ConfigError if the
        region lies outside it."""
        first = round(self.start * sample_rate)
        if first >= total:
            raise ConfigError(f"start {self.start:g} s is past the end of {name} ({total / sample_rate:.3f} s)")
        stop = total if self.end is None else min(total, round(self.end * sample_rate))
        if stop <= first:
            raise ConfigError(f"the region {self.start:g}-{self.end:g} s of {name} holds no whole sample")
        return first, min(total, stop + round(self.tail * sample_rate))

    def resolved(self, total: int, sample_rate: int, name: str) -> Region | None:
        """This region in a file of ``total`` frames, with a concrete end; None when it is the whole file."""
        first, _ = self.frames(total, sample_rate, name)
        seconds = total / sample_rate
        end = seconds if self.end is None else min(self.end, seconds)
        if first == 0 and round(end * sample_rate) >= total:
            return None
        return Region(self.start, end, self.tail)

    @property
    def label(self) -> str:
        """How file names show the region: "1.000-1.200s" (the tail is in the WAV comment, not the name)."""
        return f"{self.start:.3f}-{self.end:.3f}s" if self.end is not None else f"{self.start:.3f}s-"

    def inside(self, start: float, end: float) -> tuple[float, float]:
        """Seconds ``start``..``end`` of the file as seconds of this region's clip (a repaint's range in a clip that
        plays a region); ConfigError unless the range lies inside the region."""
        if start < self.start or (self.end is not None and end > self.end):
            shown = f"{self.start:g}-{self.end:g} s" if self.end is not None else f"from {self.start:g} s"
            raise ConfigError(f"the range {start:g}-{end:g} s must lie inside the clip's part of the file ({shown})")
        return start - self.start, end - self.start

    def options(self, prefix: str = "") -> dict[str, float]:
        """The CLI options that select this region again (``b_`` for an interpolation's second file)."""
        options = {f"{prefix}start": self.start, f"{prefix}end": self.end}
        if self.tail:
            options[f"{prefix}tail"] = self.tail
        return options


def clip_options(region: Region | None) -> dict[str, float]:
    """A repaint's clip of a region, as its recipe and recreating command name it: --clip-start, --clip-end (its
    --start/--end are the range to repaint)."""
    return {} if region is None else {"clip_start": region.start, "clip_end": region.end}


def named(stem: str, region: Region | None) -> str:
    """A file-name stem with the region it came from: "kick" -> "kick 1.000-1.200s"."""
    return f"{stem} {region.label}" if region is not None else stem


def repaint_end(start: float, end: float, file_seconds: float, clip: Region | None) -> float:
    """A repaint's end as both front ends take it: one past the clip's end (or the file's, for a whole file) is that
    end, as a DAW's time selection may run a little past the item (the CLI's and the service's alike, and so their
    file names). A range that then holds nothing (it starts at or past that end) is refused in the file's seconds,
    as the producer gave them."""
    last = file_seconds if clip is None or clip.end is None else clip.end
    if start >= last:
        where = "the file's end" if clip is None else f"the end of the clip's part of the file ({clip.label})"
        raise ConfigError(f"the range {start:g}-{end:g} s starts at or past {where}: nothing to repaint")
    return min(end, last)
