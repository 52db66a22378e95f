"""Variations rendered ahead, in memory, per source clip, at the settings they were rendered with.

An entry belongs to one source (a file as it was on disk: path, size, modification and change times, inode, and
the region of it the clip plays) and one render key (noise, steps, sampler, seed, loop, resampling, guides); asking for it with another key
starts it afresh, so stale work is never served. One entry per file: another region of it, or the file as it was
before it changed, is dropped. Bounded twice: at most ``max_clips`` entries (least recently used dropped first),
and at most ``max_bytes`` of decoded audio over all entries (each source and each variation kept counts its
samples): the prefetch depth of a long multichannel clip is cut to what fits, and older clips' entries go first to
make room for the selected one.
"""

from __future__ import annotations

import os
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from bridge import files
from bridge.constants import RANDOM_SEEDS
from bridge.engine.audio import AudioHeader, Clip, read_header
from bridge.engine.regions import Region
from bridge.engine.tempo import Bars
from bridge.errors import AudioError

if TYPE_CHECKING:
    from bridge.daemon.renderer import Made
    from bridge.engine.guides.registry import GuideRequest


@dataclass(frozen=True)
class Source:
    """A source file as it is on disk now, and the part of it used; a changed file is another source. Size and
    mtime alone miss a file replaced by one of the same size with its time kept (``cp -p``, a rename over it): the
    inode and the change time, which no program can set back, tell those apart too."""

    path: str
    size: int
    mtime_ns: int
    region: Region | None = None  # None: the whole file
    inode: int = 0
    device: int = 0
    ctime_ns: int = 0

    @classmethod
    def of(cls, path: str, stat: os.stat_result | None = None) -> "Source":
        """The source at ``path`` (as ``stat`` found it, else as it is now), or an AudioError that says why it cannot
        be one."""
        _full(path)
        if stat is None:
            stat = files.check_input(path, AudioError)  # the checks and words of read_audio
        return cls(os.path.realpath(path), stat.st_size, stat.st_mtime_ns, inode=stat.st_ino, device=stat.st_dev,
                   ctime_ns=stat.st_ctime_ns)

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


def _full(path: str) -> None:
    if not os.path.isabs(path):
        raise AudioError(f"{path}: give the full path (the service does not share your working folder)")


def open_source(path: str, region: Region | None = None) -> Source:
    """The source a request names, probed: a file that is not audio is refused at once, before it reaches the
    render thread, and its region is checked against the file. One open of the file, its header only, through the
    opener that never waits (bridge.engine.audio.read_header: this runs on the door's thread, where a FIFO put in
    the file's place would hold every request after it); the source is the file that header was read from. Waited
    for at most files.DISK_ANSWER_SECONDS (files.answered): a file on a network share that stopped answering is
    refused after that, where it held the service's requests until the share came back."""
    return probe_source(path, region)[0]


def probe_source(path: str, region: Region | None = None) -> tuple[Source, AudioHeader]:
    """open_source, and the header it read (a repaint's range is checked against the file's length): the file
    opened once, so the length is the very file's the source names."""
    _full(path)
    return files.answered(lambda: _probed(path, region), path, AudioError)


def _probed(path: str, region: Region | None) -> tuple[Source, AudioHeader]:
    stat, header = read_header(path)
    source = Source.of(path, stat)
    return replace(source, region=header.region(region, source.name)), header


@dataclass(frozen=True)
class RenderKey:
    """The settings that shape a variation's audio (not where it is written or in which format)."""

    noise: float
    steps: int
    sampler: str
    seed: int | None  # None: a fresh random seed per variation
    loop: bool = False  # loops that wrap seamlessly (docs/loops.md): the clip's own length, or bars long
    bars: Bars | None = None
    guides: tuple[GuideRequest, ...] = ()  # what steers it (bridge.daemon.steering), recipes resolved
    # RePaint's resampling (resample=U) of a loop, repaint or extension; None: the engine's default, not named
    resample: int | None = None

    def loop_options(self) -> dict:
        """What a loop adds to a file's recipe and recreate command (--loop [--bars N --bpm B])."""
        if not self.loop:
            return {}
        return {"loop": True, **({"bars": self.bars.bars, "bpm": self.bars.bpm} if self.bars else {})}

    def resample_options(self) -> dict:
        """What resampling adds to a render's arguments, its recipe and its recreate command (--resample U)."""
        return {"resample": self.resample} if self.resample is not None else {}

    def guide_options(self) -> dict:
        """What guidance adds to a file's recipe and recreate command (--guide repeated), as the CLI names it."""
        return {"guide": [request.text for request in self.guides]} if self.guides else {}


@dataclass(frozen=True)
class Variation:
    clip: Clip
    seed: int
    seconds: float  # how long it took to render
    made: Made  # the model that made it (bridge.daemon.renderer.Made, not the model): its file's metadata
    staged: Path | None = None  # the complete file written ahead, if any
    staged_format: str | None = None


@dataclass(eq=False)
class Entry:
    key: RenderKey
    ready: deque = field(default_factory=deque)
    clip: Clip | None = None  # the decoded source, kept while the entry lives
    next_seed: int | None = None
    failed: str | None = None  # why this source cannot be prefetched; cleared by a new selection

    @property
    def nbytes(self) -> int:
        """Decoded audio held: the source and every variation ready."""
        held = [self.clip] + [variation.clip for variation in self.ready]
        return sum(clip.samples.nbytes for clip in held if clip is not None)

    def seeds(self, count: int) -> list[int]:
        """Seeds for the next ``count`` variations: consecutive from the key's seed, else fresh random ones."""
        if self.key.seed is None:
            return [secrets.randbelow(RANDOM_SEEDS) for _ in range(count)]
        if self.next_seed is None:
            self.next_seed = self.key.seed
        first, self.next_seed = self.next_seed, self.next_seed + count
        return list(range(first, first + count))


class PrefetchCache:
    """Variations dropped as stale are collected in ``dropped`` for the owner to discard (their staged files)."""

    def __init__(self, max_clips: int, max_bytes: int | None = None):
        self.max_clips = max_clips
        self.max_bytes = max_bytes  # None: bounded by clip count only
        self._entries: OrderedDict[Source, Entry] = OrderedDict()
        self.dropped: list[Variation] = []

    def entry(self, source: Source, key: RenderKey) -> Entry:
        """The entry for source at key; a different key replaces the old one (its variations are stale)."""
        entry = self._entries.get(source)
        if entry is None:  # another region (or an older state) of this file is stale now
            self.forget_stale(source)
        if entry is None or entry.key != key:
            if entry is not None:
                self.dropped.extend(entry.ready)
            entry = Entry(key, clip=entry.clip if entry else None)
            self._entries[source] = entry
        self._entries.move_to_end(source)
        while len(self._entries) > self.max_clips:
            self.dropped.extend(self._entries.popitem(last=False)[1].ready)
        return entry

    def peek(self, source: Source, key: RenderKey) -> Entry | None:
        entry = self._entries.get(source)
        return entry if entry is not None and entry.key == key else None

    def take(self, source: Source, key: RenderKey, count: int) -> list[Variation]:
        entry = self.peek(source, key)
        if entry is None:
            return []
        return [entry.ready.popleft() for _ in range(min(count, len(entry.ready)))]

    def drop_variations(self) -> None:
        """Forget every rendered variation (settings changed); decoded sources stay."""
        for source, entry in self._entries.items():
            self.dropped.extend(entry.ready)
            self._entries[source] = Entry(entry.key, clip=entry.clip)

    def forget(self, source: Source) -> None:
        """Drop source's entry: its decoded audio and its variations."""
        entry = self._entries.pop(source, None)
        if entry is not None:
            self.dropped.extend(entry.ready)

    def forget_stale(self, source: Source) -> None:
        """Drop the other entries of source's file: other regions of it, or the file as it was before it changed
        on disk (their audio is of the old sound)."""
        for other in [s for s in self._entries if s.path == source.path and s != source]:
            self.forget(other)

    def fits(self, clip: Clip | AudioHeader) -> bool:
        """Whether clip (or what a header says it will be) and one variation of it fit the byte bound at all (a
        variation is as large as its source)."""
        return self.max_bytes is None or 2 * clip.nbytes <= self.max_bytes

    def room(self, source: Source, wanted: int) -> int:
        """How many of ``wanted`` more variations of source's entry (its decoded clip known) fit the byte bound;
        older clips' entries are dropped, least recently used first, as far as that makes room."""
        entry = self._entries.get(source)
        if entry is None or entry.clip is None or self.max_bytes is None:
            return wanted
        each = entry.clip.samples.nbytes
        self.trim(keep=source, extra=wanted * each)
        return max(0, min(wanted, (self.max_bytes - self.nbytes()) // max(each, 1)))

    def trim(self, keep: Source, extra: int = 0) -> None:
        """Drop other clips' entries, least recently used first, until ``extra`` more bytes would fit."""
        if self.max_bytes is None:
            return
        for other in [s for s in self._entries if s != keep]:
            if self.nbytes() + extra <= self.max_bytes:
                break
            self.forget(other)

    def nbytes(self) -> int:
        return sum(entry.nbytes for entry in self._entries.values())

    def take_dropped(self) -> list[Variation]:
        dropped, self.dropped = self.dropped, []
        return dropped

    def all_variations(self) -> list[Variation]:
        return [variation for entry in self._entries.values() for variation in entry.ready]

    def counts(self) -> dict[str, int]:
        return {source.path: len(entry.ready) for source, entry in self._entries.items()}

    def __len__(self) -> int:
        return sum(len(entry.ready) for entry in self._entries.values())
