"""How far each guide moves its measure on a model: paired renders, the same seeds with and without the guide.

`dd-bridge eval-guides` prints it (docs/guidance.md, "Figures"). Every render goes through
``clips.generate_clips``, the path `dd-bridge generate` writes, so the figures are those of the files a producer
gets. The unguided renders are made once and shared by every guide; the cost per step of each mode is the wall
time of the guided renders over that of the unguided ones.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from bridge.engine import clips
from bridge.engine.guides.builtin import SECOND_HIT_DB, GuideContext, hits, rises
from bridge.engine.guides.registry import GuideRequest, check

DEFAULT_GUIDES = ("brightness=1", "brightness=-1", "decay=1:0.3s", "punch=1", "tuning=1:A1", "width=-1")


@dataclass(frozen=True)
class GuideFigures:
    request: GuideRequest
    unit: str
    unguided: list[float]  # the measure of each render without the guide, in the guide's unit
    guided: list[float]  # and with it, seed by seed
    seconds_per_step: float
    goal: float | None = None  # the target, in the guide's unit
    likeness: tuple[float, float] | None = None  # MMD^2 to real one-shots, guided minus unguided, and its se
    # A class guide: MMD^2 of the guided renders to the real one-shots of the asked classes, minus the unguided
    # renders' to all of them, and its se (Judge.paired_to_classes: what a class guide is judged by)
    class_likeness: tuple[float, float] | None = None
    # A measure's guide: MMD^2 of the guided renders to the real one-shots whose measure lies where the guided
    # renders' does (their 10th to 90th percentile), minus the unguided renders' to all, and its se; then that
    # range and how many real sounds are in it (_measure_likeness: what a measure's guide is judged by)
    measure_likeness: tuple[float, float] | None = None
    measure_range: tuple[float, float, int] | None = None
    best_of: tuple[int, list[float]] | None = None  # (N, per pair the best of N unguided renders by the measure)
    # A class guide: the share of renders (unguided, guided) in the asked class, by its own classifier and by an
    # independent judge (one that did not guide: a guide can fool its own classifier).
    in_class: tuple[float, float] | None = None
    judged_in_class: tuple[float, float] | None = None
    relative: bool = False  # also the distance to the target relative to it (a ratio scale: seconds, Hz)
    distance: bool = False  # the measure is a distance to the target (match): a positive weight lowers it
    together: str | None = None  # the recipe whose guides all made the guided renders (None: this guide alone)
    # Medians of builtin.rises (dB: how unevenly the sounds fall from their peak; pumping) without and with the
    # guide, then the shares of renders whose rises are over SECOND_HIT_DB (a second hit) without and with it: the
    # MMD rulers do not see a pumping tail (docs/guidance.md, "A tom at a note"), and a median does not see second
    # hits in half the renders ("No second hit"); then the shares with two hits or more (builtin.hits: rises does
    # not see a later hit that is the loudest)
    rises: tuple[float, float, float, float, float, float] | None = None

    def progress(self, value: float) -> float:
        """How far the asked way ``value`` is: the measure (negated for a negative weight), or minus the distance
        to the target."""
        if self.distance:  # closer to the target clip, or further from it for a negative weight
            return -value if self.request.weight > 0 else value
        if self.request.target is None or self.goal is None:  # a direction, or a class (value: its probability)
            return value if self.request.weight > 0 else -value
        return -abs(value - self.goal)

    def moved_the_asked_way(self) -> float:
        """The share of pairs where the guided render is further the asked way (closer to a target)."""
        return _share([self.progress(g) > self.progress(u) for g, u in zip(self.guided, self.unguided)])

    def summary(self) -> str:
        median_u, median_g = statistics.median(self.unguided), statistics.median(self.guided)
        shown = self.request.text if self.together is None else f"{self.request.text} in {self.together}"
        line = (f"{shown:<16} {self.unit:<11} median {median_u:9.2f} -> {median_g:9.2f}  "
                f"moved the asked way in {100 * self.moved_the_asked_way():5.1f} % of {len(self.guided)} pairs")
        if self.goal is not None:
            errors_u = statistics.median(abs(u - self.goal) for u in self.unguided)
            errors_g = statistics.median(abs(g - self.goal) for g in self.guided)
            line += f"; median distance to {self.goal:.2f}: {errors_u:.2f} -> {errors_g:.2f}"
            if self.relative:
                line += f" ({100 * errors_u / abs(self.goal):.0f} % -> {100 * errors_g / abs(self.goal):.0f} % of it)"
        if self.likeness is not None:
            change, error = self.likeness
            line += f"; MMD^2 to the real sounds {change:+.4f} +- {error:.4f}"
        if self.class_likeness is not None:
            change, error = self.class_likeness
            line += f"; MMD^2 to the asked class's real sounds (unguided: to all) {change:+.4f} +- {error:.4f}"
        if self.measure_range is not None:
            low, high, count = self.measure_range
            line += f"; MMD^2 to the real sounds of {low:.2f}-{high:.2f} {self.unit} ({count})"
            line += (" (unguided: to all) {:+.4f} +- {:.4f}".format(*self.measure_likeness)
                     if self.measure_likeness is not None else ": too few to judge by")
        if self.in_class is not None:
            line += "; in the asked class: {:.0f} % -> {:.0f} % by its classifier".format(*(100 * v for v in
                                                                                           self.in_class))
        if self.judged_in_class is not None:
            line += ", {:.0f} % -> {:.0f} % by the judge".format(*(100 * v for v in self.judged_in_class))
        if self.rises is not None:
            line += ("; rises {:.1f} -> {:.1f} dB, over {:.0f} dB (a second hit) in {:.0f} % -> {:.0f} %, two hits "
                     "or more in {:.0f} % -> {:.0f} %").format(*self.rises[:2], SECOND_HIT_DB,
                                                              *(100 * share for share in self.rises[2:]))
        if self.best_of is not None:
            count, best = self.best_of
            beaten = _share([self.progress(g) > self.progress(b) for g, b in zip(self.guided, best)])
            line += (f"; best of {count} unguided: median {statistics.median(best):.2f}, the guided one further "
                     f"in {100 * beaten:.1f} %")
        return line + f"; {self.seconds_per_step * 1000:.0f} ms/step"


def _measure(kind, request: GuideRequest):
    """``(audio, rate) -> values`` of a guide: a class guide's depends on the asked class (its target), match's on
    the clip (its distance to it)."""
    if hasattr(kind, "named") or getattr(kind, "distance", False):
        return functools.partial(kind.value, target=request.target)
    return kind.value


def _class_shares(kind, request: GuideRequest, plain, guided, rate: int, class_judge) -> dict:
    """The share of renders its own classifier, and the judge (``class_judge(audio) -> names``), name as one of the
    asked classes."""
    asked = set(kind.asked(request.target))
    shares = {"in_class": tuple(_share([name in asked for name in kind.named(audio, rate, request.target)])
                                for audio in (plain, guided))}
    if class_judge is not None:
        shares["judged_in_class"] = tuple(_share([name in asked for name in class_judge(audio)])
                                          for audio in (plain, guided))
    return shares


MEASURE_RANGE = (0.1, 0.9)  # the guided renders' percentiles between which real sounds are their like
MIN_LIKE = 8  # real sounds to judge by, at least: fewer in that range, and the range widens to the nearest ones


def _measure_likeness(judge, measure, plain: torch.Tensor, guided: torch.Tensor, guided_values: list[float],
                      rate: int) -> dict:
    """A measure's guide judged against the real sounds that measure where its renders do.

    All its renders are asked to be brighter (or punchier, narrower, a 0.3 s decay), and real sounds of other kits
    chosen to measure where the guided renders do are far from a kit's mix too: against the three kits of
    docs/guidance.md's ruler, 32 real one-shots with 15-20 dB of punch (where `punch=1` takes renders) read +0.078
    further than 32 at random; under 250 Hz +0.078, a side 25-45 dB under the mid +0.114, a T60 of 0.25-0.35 s
    +0.066 (docs/guidance.md, "Drum-likeness of a measure"). So, as a class guide is judged against real sounds of
    its class, a measure's guide is also judged against the reference's sounds whose measure lies between the
    guided renders' 10th and 90th percentiles (each read over the renders' length, as the renders were). A target
    gathers its renders closer than that (`decay=1:0.3s`: 0.28-0.30 s, which 2 or 3 of 154 real sounds read), so
    where fewer than MIN_LIKE lie in that range it is judged against the MIN_LIKE nearest the guided renders'
    median, and the range given is theirs."""
    ordered = sorted(guided_values)
    low, high = (ordered[round(share * (len(ordered) - 1))] for share in MEASURE_RANGE)
    reference = judge.clips[..., :guided.shape[-1]]
    values = [v for start in range(0, len(reference), 64) for v in measure(reference[start:start + 64], rate)]
    keep = [i for i, value in enumerate(values) if low <= value <= high]
    if len(keep) < MIN_LIKE:
        median = statistics.median(guided_values)
        keep = sorted(range(len(values)), key=lambda i: abs(values[i] - median))[:MIN_LIKE]
        low, high = min(values[i] for i in keep), max(values[i] for i in keep)
    likeness = judge.paired_to_some(guided, plain, keep) if len(keep) >= MIN_LIKE else None
    return {"measure_likeness": likeness, "measure_range": (low, high, len(keep))}


def _share(flags: list[bool]) -> float:
    return sum(flags) / max(len(flags), 1)


def evaluate(engine, requests: Sequence[GuideRequest], *, pairs: int = 32, seconds: float | None = 0.5,
             steps: int = 20, sampler: str = "v-iplms", seed: int = 0, mode: str = "cheap", judge=None,
             best_of: int = 1, class_judge=None, clip_class: Callable[[str], str | None] | None = None,
             report: Callable[[str], None] = print,
             together: Sequence[tuple[str, Sequence[GuideRequest]]] = ()) -> tuple[float, list[GuideFigures]]:
    """(seconds per step unguided, figures per guide): ``pairs`` sounds with seeds seed..seed+pairs-1, each made
    with and without each guide (a Measured one: its ``value`` and ``parse_target`` say where it went). With a
    ``judge`` (bridge.training.evaluate.Judge over real one-shots), how much less drum-like each guide makes
    them: the paired change of MMD^2 to the real set, with its jackknife standard error. With ``best_of`` N > 1,
    the other way to the same end: N unguided renders per pair (the paired one and N - 1 more seeds), keeping
    the one the measure likes best; at equal compute N is the guided render's cost over the unguided one's. A
    class guide also counts the renders in the asked class, by its classifier and by ``class_judge(audio) ->
    [class name]`` (bridge.training.class_judge.FeatureJudge.names), a judge that did not guide. A guide toward a
    clip (match) is judged against the real sounds of the class ``clip_class(path)`` names for it, where it names
    one. Each of ``together`` (a recipe: its name and guides) is rendered with all its guides at once, and each of
    its guides that has a measure is read on those renders as a lone guide is (figures with ``together`` set)."""
    kinds = check(list(requests) + [request for _name, guides in together for request in guides])
    seeds = list(range(seed, seed + pairs))
    common = {"seed": seeds, "steps": steps, "sampler": sampler}
    started = time.perf_counter()
    plain = _audio(clips.generate_clips(engine, pairs, seconds, **common))
    per_step = (time.perf_counter() - started) / (pairs * steps)
    plain_rises = _rises(plain, engine.sample_rate)  # once: every guide's line compares with it
    report(f"unguided: {pairs} renders, {per_step * 1000:.0f} ms/step")
    candidates = [plain] + [_audio(clips.generate_clips(engine, pairs, seconds, **dict(
        common, seed=[seed + pairs * k + i for i in range(pairs)]))) for k in range(1, best_of)]
    for request in requests:
        if not hasattr(kinds[request.name], "value"):
            raise ValueError(f"{request.name} has no measure to evaluate (a Measured guide has one)")
    figures = []
    arms = [(None, (request,)) for request in requests] + [(name, tuple(guides)) for name, guides in together]
    for name, guides in arms:
        started = time.perf_counter()
        guided = _audio(clips.generate_clips(engine, pairs, seconds, guides=list(guides), guide_mode=mode,
                                             **common))
        seconds_per_step = (time.perf_counter() - started) / (pairs * steps)
        guided_rises = _rises(guided, engine.sample_rate)
        rises_of = (plain_rises[0], guided_rises[0], plain_rises[1], guided_rises[1], plain_rises[2],
                    guided_rises[2])
        # a recipe's guides are each read by their own measure on the same renders (one that has none is skipped)
        for request in guides:
            kind = kinds[request.name]
            if not hasattr(kind, "value"):
                continue
            figure = _figures(engine, kind, request, plain, guided, candidates, seconds_per_step, judge=judge,
                              best_of=best_of, class_judge=class_judge, clip_class=clip_class,
                              rises_of=rises_of)
            figure = dataclasses.replace(figure, together=name)
            report(figure.summary())
            figures.append(figure)
    return per_step, figures


def _figures(engine, kind, request: GuideRequest, plain: torch.Tensor, guided: torch.Tensor, candidates,
             seconds_per_step: float, *, judge, best_of: int, class_judge, clip_class,
             rises_of: tuple[float, float, float, float] | None = None) -> GuideFigures:
    """Where one guide's measure went from the unguided renders to the guided ones, and how drum-like those are."""
    goal = None
    if request.target is not None and hasattr(kind, "parse_target"):  # a measure's target (not a class's)
        goal = kind.shown(kind.parse_target(request.target, GuideContext(engine.sample_rate)))
    likeness = judge.paired_difference(guided, plain) if judge is not None else None
    measure = _measure(kind, request)
    figure = GuideFigures(request, kind.unit, measure(plain, engine.sample_rate), measure(guided, engine.sample_rate),
                          seconds_per_step, goal, likeness,
                          relative=goal is not None and getattr(kind, "relative", False),
                          distance=getattr(kind, "distance", False), rises=rises_of)
    if hasattr(kind, "named"):  # a class guide: how many renders are now of the asked class
        figure = dataclasses.replace(figure, **_class_shares(kind, request, plain, guided, engine.sample_rate,
                                                             class_judge))
        if judge is not None and request.weight > 0:  # toward a class: judged against real sounds of it
            figure = dataclasses.replace(figure, class_likeness=judge.paired_to_classes(
                guided, plain, kind.asked(request.target)))
    elif judge is not None and not figure.distance:  # a measure's guide: judged by real sounds measuring so
        figure = dataclasses.replace(figure, **_measure_likeness(judge, measure, plain, guided, figure.guided,
                                                                 engine.sample_rate))
    elif figure.distance and judge is not None and request.weight > 0 and clip_class is not None:
        # toward one clip: its renders are all asked to be like that one, so judged as a class guide's are,
        # against real sounds of the clip's class where its name says one
        named = clip_class(request.target)
        if named is not None:
            figure = dataclasses.replace(figure, class_likeness=judge.paired_to_classes(guided, plain, [named]))
    if best_of > 1:
        values = [measure(audio, engine.sample_rate) for audio in candidates]
        best = [max(column, key=figure.progress) for column in zip(*values)]
        figure = dataclasses.replace(figure, best_of=(best_of, best))
    return figure


def _rises(audio: torch.Tensor, rate: int) -> tuple[float, float, float]:
    """The median of builtin.rises over a set of renders [B, 2, L], the share of them over SECOND_HIT_DB, and the
    share with two hits or more (builtin.hits)."""
    values = rises(audio, rate).tolist()
    return (statistics.median(values), _share([value > SECOND_HIT_DB for value in values]),
            _share([count >= 2 for count in hits(audio, rate).tolist()]))


def _audio(rendered) -> torch.Tensor:
    """[B, 2, L] of the model-rate stereo clips generate_clips returns."""
    return torch.stack([torch.from_numpy(clip.samples.T.copy()) for clip in rendered])
