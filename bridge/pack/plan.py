"""A pack's plan: every file it will hold, computed up front and deterministically from the arguments.

Each Task names its source (and the region of it), noise level, seed and file; the Plan's settings are every
option that decides the bytes (model, steps, sampler, shape, guides, loop, format, ...). Rendering a task needs
nothing else, so one process, N local workers or a Ray cluster make the same bytes from the same plan.

Seeds follow the sheet's rule (bridge.engine.seeds.series): source k's variation i has seed base + k*N + i at every
noise level, so a row of the contact sheet differs from the next by the noise alone, sources draw different
noise, and `dd-bridge vary SOURCE --noise F --seed S --count 1` (each file's WAV comment) makes any file again.

Layout: PACK/<source>/<source> noise 0.4 var 001.wav, the source's folder named after its file (and region),
" (2)" added when two sources share a name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bridge import files
from bridge.engine.regions import Region, named
from bridge.engine.seeds import series
from bridge.engine.tempo import Bars
from bridge.errors import ConfigError

MAX_FILES = 1_000_000  # a pack this large is a mistake in --per-source or the noise list, not a request


@dataclass(frozen=True)
class Source:
    """A source file (absolute path) and the part of it used (None: all of it), and its folder in the pack."""

    path: Path
    region: Region | None
    folder: str

    @property
    def region_list(self) -> list[float] | None:
        return None if self.region is None else [self.region.start, self.region.end]


@dataclass(frozen=True)
class Task:
    """One file of the pack: everything that decides its bytes besides the plan's settings."""

    source: int  # index into Plan.sources
    noise: float
    seed: int
    file: str  # its path in the pack, "/"-separated


@dataclass(frozen=True)
class Plan:
    sources: tuple[Source, ...]
    tasks: tuple[Task, ...]
    settings: dict = field(default_factory=dict)  # the options that decide the bytes, as the CLI names them

    @property
    def bars(self) -> Bars | None:
        return Bars.of(self.settings.get("bars"), self.settings.get("bpm"))

    def identity(self) -> dict:
        """What makes two runs the same pack (a rerun may resume only such a pack): settings and sources."""
        return {"settings": self.settings,
                "sources": [{"path": str(s.path), "region": s.region_list, "folder": s.folder}
                            for s in self.sources]}


def make_plan(sources: list[tuple[Path, Region | None]], *, per_source: int, noises: list[float], seed: int,
              settings: dict) -> Plan:
    """The plan for sources (absolute paths with their resolved regions, in order) x noises x per_source."""
    check(len(sources), per_source=per_source, noises=noises)
    digits = max(files.NUMBER_DIGITS, len(str(per_source)))
    looped = " loop" if settings.get("loop") else ""
    planned, tasks, taken = [], [], set()
    for k, (path, region) in enumerate(sources):
        stem, where = files.source_stems(path.name)[0], named("", region)  # where: " 0.100-0.300s", or ""
        folder = _free(stem, where, taken)
        planned.append(Source(path, region, folder))
        seeds = series(seed, per_source, k * per_source)
        for noise in noises:
            for number, one in enumerate(seeds, 1):
                name = _fitted(stem, f"{where}{looped} noise {noise:g} var {number:0{digits}d}.wav")
                tasks.append(Task(k, noise, one, f"{folder}/{name}"))
    _check_distinct(tasks)
    settings = {**settings, "seed": seed, "per_source": per_source, "noise": list(noises)}
    return Plan(tuple(planned), tuple(tasks), settings)


def check(sources: int, *, per_source: int, noises: list[float]) -> None:
    """ConfigError for a plan that cannot be made: asked before the pack's folder is (bridge.cli.pack), so a refused
    command leaves nothing behind, and again by make_plan."""
    total = sources * len(noises) * per_source
    if total > MAX_FILES:
        raise ConfigError(f"{total} files is more than a pack holds ({MAX_FILES}): fewer sources, noise levels or "
                          "--per-source")
    labels = [f"{noise:g}" for noise in noises]  # as the files name them: 0.1234501 and 0.1234502 are one name
    if len(set(labels)) != len(labels):
        raise ConfigError(f"--noise lists a level twice: {','.join(labels)} (levels are named to 6 digits)")


def _fitted(stem: str, tail: str) -> str:
    """stem + tail within a file name's NAME_BYTES, the stem cut (never inside a character) and never the tail: a
    long source name keeps its files' noise level, number and ".wav" (as files.numbered_name does)."""
    return files.fit_name(stem, files.NAME_BYTES - len(tail.encode("utf-8"))).rstrip() + tail


def _check_distinct(tasks: list[Task]) -> None:
    """Every planned file has a name of its own (compared as case-blind file systems do): two tasks written to one
    name would leave one file where the manifest lists two."""
    seen: set[str] = set()
    for task in tasks:
        if task.file.casefold() in seen:
            raise ConfigError(f"two files of the pack would be named {task.file!r}: a bug in DD Bridge's pack plan, "
                              "please report it with the command")
        seen.add(task.file.casefold())


def _free(stem: str, where: str, taken: set[str]) -> str:
    """stem + where (the region), or "<stem><where> (2)", ... : the first not taken (compared as case-blind file
    systems do); the stem cut where the whole would not fit in a name."""
    name, n = _fitted(stem, where), 1
    while name.casefold() in taken:
        n += 1
        name = _fitted(stem, f"{where} ({n})")
    taken.add(name.casefold())
    return name
