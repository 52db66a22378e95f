"""What a front end (OSC, MIDI) asks the service to do: immutable values, validated before they arrive.

No torch here: the transports build these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge.daemon.settings import validate
from bridge.engine.regions import Region
from bridge.engine.tempo import Bars
from bridge.errors import ConfigError

# Per-request options (`key=value` after the positional arguments); they apply to that request only.
OPTION_KEYS = ("folder", "seed", "steps", "sampler", "noise", "count", "format", "guide", "recipe")
# The region of the source file (seconds in the file); for /dd/interpolate start/end are a's and b_start/b_end b's.
REGION_KEYS = ("start", "end", "tail")
# A length in bars at a tempo (bridge.engine.tempo): /dd/extend's, and a loop's with loop=on.
TEMPO_KEYS = ("bars", "bpm")
LOOP_KEYS = ("loop",) + TEMPO_KEYS
# RePaint's resampling (docs/loops.md), as the CLI's --resample: on loops, repaints and extensions.
RESAMPLE_KEYS = ("resample",)
# How loud audition plays a press or a file, as a MIDI note's velocity does (127: as rendered).
VELOCITY_KEYS = ("velocity",)
ADDRESS_OPTIONS = {
    "/dd/select": REGION_KEYS + LOOP_KEYS,  # a loop selected: prefetch renders loops of it (docs/loops.md)
    "/dd/vary": OPTION_KEYS + REGION_KEYS + LOOP_KEYS + RESAMPLE_KEYS + VELOCITY_KEYS,
    "/dd/play": VELOCITY_KEYS,
    "/dd/generate": OPTION_KEYS + LOOP_KEYS + RESAMPLE_KEYS,
    "/dd/interpolate": OPTION_KEYS + ("start", "end", "b_start", "b_end"),
    # start/end: the range to repaint, seconds of the file; clip_start/clip_end: the part of the file the clip plays
    "/dd/repaint": OPTION_KEYS + RESAMPLE_KEYS + ("start", "end", "clip_start", "clip_end"),
    "/dd/extend": OPTION_KEYS + TEMPO_KEYS + RESAMPLE_KEYS + ("start", "end"),  # start/end: the region to continue from its end
}


@dataclass(frozen=True)
class Options:
    """Per-request overrides; None means "use the current setting"."""

    folder: str | None = None
    seed: int | None = None
    steps: int | None = None
    sampler: str | None = None
    noise: float | None = None
    count: int | None = None
    format: str | None = None
    start: float | None = None
    end: float | None = None
    tail: float | None = None
    b_start: float | None = None
    b_end: float | None = None
    clip_start: float | None = None
    clip_end: float | None = None
    bars: float | None = None
    bpm: float | None = None
    loop: bool | None = None
    resample: int | None = None  # RePaint's U; a loop's only on /dd/vary and /dd/generate (service.looped)
    guide: tuple[str, ...] | None = None  # with recipe: this request's guidance instead of the settings' (() off)
    recipe: str | None = None
    velocity: int | None = None  # the request's `velocity` (Vary, Play) when given

    def __post_init__(self):
        region = Region.of(self.start, self.end, self.tail)  # one that cannot be (start >= end): refused on arrival
        if region is not None:
            region.check_loop(bool(self.loop))
        Region.of(self.b_start, self.b_end)
        Region.of(self.clip_start, self.clip_end)
        Bars.of(self.bars, self.bpm)  # both or neither

    @classmethod
    def parse(cls, pairs: dict[str, object]) -> "Options":
        return cls(**{key: validate(key, value) for key, value in pairs.items()})

    @property
    def region(self) -> Region | None:
        return Region.of(self.start, self.end, self.tail)

    @property
    def region_b(self) -> Region | None:
        return Region.of(self.b_start, self.b_end)

    @property
    def clip_region(self) -> Region | None:
        """A repaint's clip: the part of the file it plays and the output is (None: the whole file)."""
        return Region.of(self.clip_start, self.clip_end)

    @property
    def bars_at_tempo(self) -> Bars | None:
        return Bars.of(self.bars, self.bpm)

    @property
    def looping(self) -> tuple[bool | None, Bars | None]:
        """loop= (None: not said) and its bars= at bpm= of a variation's or a selection's request; bars= or bpm=
        without loop=on are refused (on /dd/extend they are its length, read as bars_at_tempo)."""
        bars = self.bars_at_tempo
        if bars is not None and not self.loop:
            raise ConfigError("bars= and bpm= go with loop=on")
        return self.loop, bars


@dataclass(frozen=True, kw_only=True)
class Request:
    request_id: str | None = None

    address = "/dd/?"


@dataclass(frozen=True, kw_only=True)
class Ping(Request):
    address = "/dd/ping"


@dataclass(frozen=True, kw_only=True)
class Hello(Request):
    port: int | None = None  # None: the sender's own port
    address = "/dd/hello"


@dataclass(frozen=True, kw_only=True)
class Status(Request):
    address = "/dd/status"


@dataclass(frozen=True, kw_only=True)
class Recipes(Request):
    """The recipes a render takes by name (the recipes folder's and the built-ins), for a DAW's menu."""

    address = "/dd/recipes"


@dataclass(frozen=True, kw_only=True)
class SaveRecipe(Request):
    """The settings' guides (recipe included, as renders use them) saved as a new recipe file of this name."""

    name: str
    address = "/dd/save_recipe"


@dataclass(frozen=True, kw_only=True)
class Cancel(Request):
    only: str | None = None  # request=#ID: that one request of the sender's, nothing else (None: all of its own)
    address = "/dd/cancel"


@dataclass(frozen=True, kw_only=True)
class Select(Request):
    path: str
    region: Region | None = None  # the part of the file the clip plays; key presses vary that part
    loop: bool = False  # the clip is a loop: key presses without loop= make loops of it, and prefetch renders them
    bars: Bars | None = None  # its length in bars at a tempo (None: the clip's own length)
    address = "/dd/select"

    def __post_init__(self):
        if self.region is not None:
            self.region.check_loop(self.loop)


@dataclass(frozen=True, kw_only=True)
class Vary(Request):
    path: str | None = None  # None: the selected clip
    count: int | None = None
    noise: float | None = None
    options: Options = field(default_factory=Options)
    velocity: int = 127  # a MIDI note's: how loud audition plays it
    address = "/dd/vary"


@dataclass(frozen=True, kw_only=True)
class Generate(Request):
    count: int | None = None
    seconds: float | None = None
    options: Options = field(default_factory=Options)
    address = "/dd/generate"


@dataclass(frozen=True, kw_only=True)
class Interpolate(Request):
    a: str
    b: str
    count: int | None = None
    options: Options = field(default_factory=Options)
    address = "/dd/interpolate"


@dataclass(frozen=True, kw_only=True)
class Repaint(Request):
    """New material in seconds options.start..options.end of the file; the rest kept to the bit."""

    path: str
    count: int | None = None
    options: Options = field(default_factory=Options)
    address = "/dd/repaint"


@dataclass(frozen=True, kw_only=True)
class Extend(Request):
    """The file, then ``seconds`` (or options.bars at options.bpm) of new material."""

    path: str
    count: int | None = None
    seconds: float | None = None
    options: Options = field(default_factory=Options)
    address = "/dd/extend"


@dataclass(frozen=True, kw_only=True)
class Set(Request):
    key: str
    value: object
    address = "/dd/set"


@dataclass(frozen=True, kw_only=True)
class GuideWeight(Request):
    """A MIDI knob on a guide: its weight among the settings' guides, as `/dd/set guide` sets them (0: taken out)."""

    name: str
    weight: float
    address = "/dd/set"


@dataclass(frozen=True, kw_only=True)
class Keep(Request):
    count: int | None = None  # the last N heard (default 1)
    address = "/dd/keep"


@dataclass(frozen=True, kw_only=True)
class Play(Request):
    path: str
    velocity: int = 127  # how loud, as a MIDI note's velocity
    address = "/dd/play"


SET_KEYS = ("noise", "steps", "sampler", "count", "seed", "model", "folder", "prefetch", "format", "audition", "guide",
            "recipe")
