"""The `class` guide: toward a drum class, or a mix of classes, as a drum classifier hears the denoised estimate.

The loss is the cross-entropy from the asked mix to the classifier's answer, ``-sum_k p_k log q_k(x0)``; a mix such
as ``kick*0.7+snare*0.3`` asks for a sound the classifier hears as 70 % kick and 30 % snare (CRASH's class mixing,
Rouard and Hadjeres 2021). A negative weight moves away from the class. The classifier is the shipped default
(bridge/engine/classifier.py) or a user's, named in the target: ``FILE.safetensors#kick``. Its input is resampled
(linearly: it only has to hear the class) when the model's rate is not its own. The loss is stepped through the
estimate's envelope (``EnvelopeGuide``), not its samples: see there why. A classifier that carries its classes'
ceilings (``class_ceilings``, made by `dd-bridge train-classifier` from its training sounds) also keeps the
estimate under the asked class's: see ``EnvelopeGuide`` why. The same ceilings shape every new sound, under the
classes the shipped classifier hears in it (``HeardCeiling``, generate's --shape).
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import os
import re
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from bridge.engine.classifier import DEFAULT_CLASSIFIER, DrumClassifier, load_classifier
from bridge.engine.guidance import (BANDS, HOP, LOWEST_BAND_HZ, N_FFT, LossGuide, band_energy_db, band_matrix,
                                    cell_energy_db, stft, with_band_gains)
from bridge.engine.guides.builtin import HIT_DB, HITS_WITHIN_DB, RISES_WITHIN_DB, WHAT, GuideContext, smoothed
from bridge.engine.schedules import alpha_sigma
from bridge.errors import ConfigError, one_line
from bridge.files import shown

log = logging.getLogger(__name__)

_SHARE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*")
# What a class=1:... target uses to say a mix (+, *), a classifier file (#), the next guide (;, the service's list)
# and a noise range (@): a class name holding one could not be asked for (class_name_problem).
RESERVED = "+*#;@="


class EnvelopeGuide(LossGuide):
    """A loss stepped down through the estimate's envelope: gains in dB per band and 21 ms frame (the source-shape
    guide's cells), moved along the loss's normalised gradient with respect to them, ``weight * sigma *
    STEP_DB`` dB RMS per network call.

    A classifier's gradient with respect to the samples is spread over fine detail that barely correlates with
    what makes a kick a kick (a cosine of 0.01-0.03 with the kicks-minus-hats direction in the tests' set,
    where darker's step has 0.7; through the envelope, 0.4): stepped along it, the sound changes and its class does not. Through the envelope, only where the
    energy lies in time and frequency can move, which is what a class is heard by. It always edits the estimate
    (the cheap mode's way), whatever the mode: the network's gradient would not be an envelope's.

    ``ceiling`` [bands + 1, frames] (dB under the estimate's loudest cell; the asked class's, ``class_ceilings``):
    no cell ends a step more than CEILING_MARGIN_DB over it. The classifier alone steered toward what it reads as
    the class and no real sound of it has: guided kicks put 7 % of their energy under 30 Hz (real kicks 0.1-0.4 %)
    and held their tails up, guided snares sat on a low thump; under the ceiling of the classifier's own training
    sounds of the class both go (docs/guidance.md, "The class's ceiling"). Nor does a step lift a frame after the
    estimate's loudest back over its fall (``over_the_fall``): toward a tom, half the sounds got a second hit.

    ``heard(audio) -> [B]``: how sure the classifier is, from t = HEARD_T_MAX down, that each estimate already is
    what was asked (the asked class's probability; for a mix, exp(-KL) from it to the answer); past CONFIDENT the step eases off, in proportion to the doubt
    left, and stops at certainty. The gradient of log p(class | x), which classifier guidance steps along
    (Dhariwal and Nichol 2021, "Diffusion models beat GANs on image synthesis", eq. 10), fades as p nears 1 by
    itself; normalised to a fixed size, this one kept pushing a sound already heard as a kick at every step, and
    what it added made it less like real kicks (docs/guidance.md, "When the sound already is the class")."""

    def __init__(self, loss, weight: float, sample_rate: int, ceiling: torch.Tensor | None = None, *,
                 heard=None, **options):
        super().__init__(loss, weight, **options)
        self.sample_rate, self.full, self.ceiling, self.heard = sample_rate, False, ceiling, heard

    def __call__(self, denoised: torch.Tensor, t: float) -> torch.Tensor:
        sigma = float(alpha_sigma(torch.tensor(t))[1])
        with torch.inference_mode(False), torch.enable_grad():
            audio = denoised.detach().clone().float()
            spec = stft(audio)
            matrix = band_matrix(self.sample_rate).to(audio)
            gains = torch.zeros(spec.shape[0], matrix.shape[0], spec.shape[-1], device=audio.device,
                                requires_grad=True)
            loss = self.loss(with_band_gains(spec, gains, matrix, audio))
            (gradient,) = torch.autograd.grad(loss.sum(), gains)
        gradient = torch.nan_to_num(gradient)
        spread = gradient.pow(2).mean(dim=(1, 2), keepdim=True).sqrt().clamp(min=1e-30)
        size = abs(self.weight) * sigma * STEP_DB
        step_db = (-math.copysign(size, self.weight) * gradient / spread).clamp(-CELL_LIMIT * size, CELL_LIMIT * size)
        if self.heard is not None and t <= HEARD_T_MAX:  # above it a blur: no class can be heard in it yet
            with torch.no_grad():
                doubt = 1 - self.heard(denoised.detach().float())
            step_db = step_db * (doubt / (1 - CONFIDENT)).clamp(0, 1).to(step_db)[:, None, None]
        cells = band_energy_db(spec.detach(), matrix)  # the estimate's, once for both rules
        if self.ceiling is not None:
            step_db = step_db - over_ceiling(cells, self.ceiling, step_db)
        step_db = step_db - over_the_fall(cells, step_db)
        return with_band_gains(spec, step_db, matrix, denoised.detach().float()).to(denoised.dtype)


STEP_DB = 10.0  # the RMS change of the envelope per network call at weight 1 and t = 1, in dB
CONFIDENT = 0.97  # the class guide eases off once the asked mix is this likely (EnvelopeGuide's ``heard``)
CELL_LIMIT = 3.0  # no cell moves more than 3 times that: a gradient on a few cells would otherwise boost them 60 dB
# A class's ceiling: per cell, the level 3 of every 4 of its training sounds stay under (dB under each one's loudest
# cell), spread over +-4 frames (+-21 ms: an attack may land a little later), and a 3 dB margin over it. Chosen on
# held-out kits against the 90th percentile (kicks 0.43 from real kicks against 0.28), the median (0.37: too alike
# to vary) and no margin (the same): docs/guidance.md, "The class's ceiling".
CEILING_PERCENTILE = 75.0
# ... except perc, whose sounds share no shape (cowbells ring, shakers hiss, congas thump): 3 in 4 of them lie under
# a short burst of noise, a clap's shape, and under that ceiling every guided perc came out a clap (0 of 64 heard as
# perc). Under the 90th percentile's 72 % are heard as perc (real held-out perc: 70 %), as near real perc as the
# plain renders are to the kits; the 95th, 97th and 99th are heard as perc more often and sound less like it.
# Chosen on seeds 0-31: docs/guidance.md, "Perc's ceiling".
CEILING_PERCENTILES = {"perc": 90.0}
# ... and the kick's top: 1 in 4 of the GM kicks keep a band of noise over 500 Hz for 0.4 s, so guided kicks kept it,
# 10 dB over what real low kicks have (their top is gone in 0.1 s). In the bands centred over 500 Hz the kick's ceiling
# is the median instead: a kick at A1 then keeps as little there as real ones (-79 dB), its ring below as before, and
# new sounds measure as before. Per class: (Hz, percentile) for the bands centred over Hz; docs/guidance.md,
# "The kick's top". The tom's likewise over 1 kHz: 1 in 4 GM toms keep noise there, and toms guided to ring as real
# ones do (the `ringing-tom` recipe) kept a hiss over 2 kHz 14-18 dB over theirs; under the median, 7-8 dB, and
# nearer real toms (docs/guidance.md, "The tom's top").
CEILING_PERCENTILES_OVER = {"kick": (500.0, 50.0), "tom": (1000.0, 50.0)}
CEILING_SLACK_FRAMES = 4
CEILING_MARGIN_DB = 3.0
# Where 3 in 4 of a class's training sounds have ended (the GM kicks by 0.46 s, snares by 0.54, claps by 0.33), its
# percentile is digital silence, and a render under it was gated there: its hiss and its ring cut in one 5 ms frame
# (docs/pictures/sheet-ceiling-release.png). In use, such cells (under CEILING_SILENT_DB) are released instead: the
# ceiling fades from its last level at CEILING_RELEASE_DB_PER_S (a T60 of 0.25 s), as a hit does. Released
# everywhere, the fall after each attack was loosened too and new sounds measured further from real kits; only
# where silent, they measure as before: docs/guidance.md, "A kick at a note". The stored ceilings stay the
# percentiles as made; ``on_grid`` releases them where they are put on a guide's grid.
CEILING_SILENT_DB = -120.0
CEILING_RELEASE_DB_PER_S = 240.0


def class_ceilings(windows: torch.Tensor, labels: torch.Tensor, classes, sample_rate: int,
                   percentiles: dict[str, float] | None = None,
                   over: dict[str, tuple[float, float]] | None = None) -> tuple[torch.Tensor, dict]:
    """(ceilings [classes, bands + 1, frames], the card's entry for them) from labelled one-shots [N, C, L] at
    ``sample_rate``: each class's percentile (by class name: ``percentiles`` over CEILING_PERCENTILES, else
    CEILING_PERCENTILE) of every cell's level under its sound's loudest cell, on the guide's grid (its bands and
    STFT frames); in the bands centred over Hz, the percentile ``over`` gives a class as (Hz, percentile)
    (over CEILING_PERCENTILES_OVER). A class without sounds gets 0 dB: no ceiling."""
    given = CEILING_PERCENTILES | (percentiles or {})
    percentiles = {name: given.get(name, CEILING_PERCENTILE) for name in classes}
    given_over = CEILING_PERCENTILES_OVER | (over or {})
    over = {name: given_over[name] for name in classes if name in given_over}
    grid = guide_grid(sample_rate)
    centres = torch.from_numpy(band_centres(grid))
    cells = _under_loudest(torch.cat([cell_energy_db(windows[i:i + 64].float(), sample_rate)
                                      for i in range(0, len(windows), 64)]))
    ceilings = torch.zeros(len(classes), *cells.shape[1:])
    counts = {}
    for k, name in enumerate(classes):
        chosen = cells[labels == k]
        counts[name] = len(chosen)
        if len(chosen):
            level = torch.quantile(chosen, percentiles[name] / 100, dim=0)
            if name in over:
                hz, percentile = over[name]
                high = centres > hz
                level[high] = torch.quantile(chosen[:, high], percentile / 100, dim=0)
            ceilings[k] = F.max_pool1d(level[None], 2 * CEILING_SLACK_FRAMES + 1, stride=1,
                                       padding=CEILING_SLACK_FRAMES)[0]
    entry = {"unit": "dB under each sound's loudest cell", "percentile": percentiles,
             "percentile_over": {name: {"hz": hz, "percentile": p} for name, (hz, p) in over.items()},
             "slack_frames": CEILING_SLACK_FRAMES, "sounds": counts, "grid": grid}
    return ceilings, entry


def guide_grid(sample_rate: int) -> dict:
    """The guide's grid at ``sample_rate`` as a card names it (its `ceilings: grid:`)."""
    return {"sample_rate": sample_rate, "n_fft": N_FFT, "hop": HOP, "bands": BANDS, "lowest_hz": LOWEST_BAND_HZ}


def band_centres(grid: dict) -> np.ndarray:
    """Each row of a ceiling made on ``grid`` as a frequency in Hz: its band's centre (band_matrix's; row 0, the
    band under the lowest, placed at half the lowest)."""
    centres = np.logspace(np.log10(grid["lowest_hz"]), np.log10(grid["sample_rate"] / 2), int(grid["bands"]))
    return np.concatenate([[grid["lowest_hz"] / 2], centres])


def regrid(ceiling: torch.Tensor, grid: dict, sample_rate: int) -> torch.Tensor:
    """A ceiling [bands + 1, frames] made on ``grid`` (the card's), on this guide's grid at ``sample_rate``:
    interpolated in log frequency and in time (a model at 16 kHz has other bands and frames than a 48 kHz
    classifier); past its highest band or its last frame, those."""
    here = guide_grid(sample_rate)
    if {key: grid.get(key) for key in here} == here:
        return ceiling

    values = ceiling.double().numpy()
    source_f, target_f = np.log(band_centres(grid)), np.log(band_centres(here))
    by_band = np.stack([np.interp(target_f, source_f, column) for column in values.T], axis=1)
    source_t = np.arange(values.shape[1]) * grid["hop"] / grid["sample_rate"]
    frames = int(math.ceil(source_t[-1] * sample_rate / HOP)) + 1
    target_t = np.arange(frames) * HOP / sample_rate
    return torch.from_numpy(np.stack([np.interp(target_t, source_t, row) for row in by_band])).float()



def on_grid(ceiling: torch.Tensor, grid: dict, sample_rate: int) -> torch.Tensor:
    """A stored ceiling as a guide uses it: on this guide's grid (``regrid``), and where it is digital silence
    (under CEILING_SILENT_DB) what its cells before would have fallen to by then at CEILING_RELEASE_DB_PER_S."""
    ceiling = regrid(ceiling, grid, sample_rate)
    ramp = torch.arange(ceiling.shape[-1], dtype=ceiling.dtype) * (CEILING_RELEASE_DB_PER_S * HOP / sample_rate)
    released = torch.cummax(ceiling + ramp, dim=-1).values - ramp
    return torch.where(ceiling > CEILING_SILENT_DB, ceiling, released)

class HeardCeiling:
    """A new sound kept under the ceiling of the drum class the classifier hears in it, at every network call: the
    class's ceiling (``class_ceilings``) as a shape for a sound with no source to take one from (a variation's is
    its source's, guidance.SourceShape). Each batch item gets the loudest of the ceilings of the HEARD_CLASSES
    classes the classifier finds likeliest, heard afresh from each estimate; a cell more than CEILING_MARGIN_DB over
    it, relative to the estimate's loudest cell, is taken down onto it (``strength``: that share of it); then what
    comes back after the first hit's fall is taken down to it (``after_the_first_hit``: one hit). Nothing is lifted.
    A closed-form edit, as SourceShape is: it sees the whole state.

    Why: the bundled model's new sounds were no closer to real drums than noise bursts on their envelopes (MMD^2
    0.111 against 0.146 on six held-out kits): a hiss floor from 1 to 20 kHz 45 dB under the peak for the whole
    window, where a real hit decays into silence. Under the heard classes' ceiling they measure 0.048 (docs/
    benchmarks.md, "New sounds under the heard class's ceiling"). Applied to real hits it leaves the set as
    drum-like as it was (+0.0001), though it shortens one in seven that rings past 3 in 4 of its class: for a model
    whose sounds are already real, --shape 0 renders it alone (the same section)."""

    full = False
    name = "heard class ceiling"

    def __init__(self, model: DrumClassifier, sample_rate: int, strength: float = 1.0):
        values, entry = model.ceilings
        self.model, self.sample_rate, self.strength = model, sample_rate, float(strength)
        self.ceilings = torch.stack([on_grid(value, entry["grid"], sample_rate) for value in values])

    def acts_at(self, t: float) -> bool:
        return 0 < t <= HEARD_T_MAX

    def __call__(self, denoised: torch.Tensor, t: float) -> torch.Tensor:
        audio = denoised.detach().float()
        with torch.no_grad():
            heard = logits(self.model, audio, self.sample_rate).topk(HEARD_CLASSES, dim=-1).indices
        self.ceilings = self.ceilings.to(audio.device)  # once: the render loop calls this at every step
        spec = stft(audio)
        matrix = band_matrix(self.sample_rate).to(audio)
        # the likeliest classes' ceilings
        cells = band_energy_db(spec, matrix)
        over = over_ceiling(cells, self.ceilings[heard].amax(dim=1))
        over = over + after_the_first_hit(cells - over)  # then one hit: what the ceiling left of a second goes
        return with_band_gains(spec, -self.strength * over, matrix, audio).to(denoised.dtype)


def after_the_first_hit(cells: torch.Tensor) -> torch.Tensor:
    """[B, 1, frames] dB to take off every cell (``cells``, dB: ``band_energy_db``) of each frame so the sound has
    one hit, as ``builtin.hits`` counts them: once its level (smoothed as ``hits`` reads it, from the first frame
    within HITS_WITHIN_DB of the loudest) has fallen HIT_DB under its top so far, no frame comes back more than
    FALL_MARGIN_DB (a drum's own ripple) over the quietest since. Frames more than HITS_WITHIN_DB under the loudest
    are free, as ``hits`` leaves them; a sound that never falls that far (a ride's wash, a swell) is left alone.

    Why: the bundled model's own new sounds came as a double hit in 2-3 of 32 (by ``hits``; the later hit often the
    loudest; real one-shots of six held-out kits: 0 of 136): the network had already drawn both hits by t = 0.35,
    so it takes a rule on the estimate, not on a guide's lifts (``over_the_fall``), to keep one (docs/guidance.md,
    "One hit for new sounds")."""
    level = smoothed(frame_db(cells))
    frames = torch.arange(level.shape[-1], device=level.device)
    peak = level.amax(-1, keepdim=True)
    start = (level > peak - HITS_WITHIN_DB).int().argmax(-1, keepdim=True)
    top = torch.cummax(torch.where(frames[None] >= start, level, torch.full_like(level, -math.inf)), -1).values
    fallen = (frames[None] >= start) & (level <= top - HIT_DB)
    first_fall = torch.where(fallen.any(-1, keepdim=True), fallen.int().argmax(-1, keepdim=True),
                             torch.full_like(start, level.shape[-1]))
    after = frames[None] >= first_fall
    lowest = torch.cummin(torch.where(after, level, torch.full_like(level, math.inf)), -1).values
    excess = (level - lowest - FALL_MARGIN_DB).clamp(min=0)
    return torch.where(after & (level > peak - HITS_WITHIN_DB), excess, torch.zeros_like(excess))[:, None]


# The heard class's ceiling acts from this noise level down (above it the estimate is a blur no class can be heard
# in), and joins the ceilings of the two classes the classifier finds likeliest (a real hit it mishears is then
# mostly left alone): chosen in docs/benchmarks.md, "New sounds under the heard class's ceiling".
HEARD_T_MAX = 0.7
HEARD_CLASSES = 2


def heard_ceiling(sample_rate: int, strength: float = 1.0) -> HeardCeiling | None:
    """The shape new sounds get from the shipped classifier at ``strength`` (the share of each excess taken down
    per network call; generate's --shape), or None (logged) when it has no ceilings or cannot be read: a new sound
    is then rendered as the model makes it, never refused for it."""
    try:
        model = _loaded(str(DEFAULT_CLASSIFIER), os.stat(DEFAULT_CLASSIFIER).st_mtime_ns)
    except Exception as error:  # a broken install must not stop generate
        log.warning("new sounds without the heard class's ceiling: %s", one_line(error))
        return None
    return HeardCeiling(model, sample_rate, strength) if model.ceilings is not None else None


def over_ceiling(cells: torch.Tensor, ceiling: torch.Tensor, step_db: torch.Tensor | float = 0.0) -> torch.Tensor:
    """[B, bands + 1, frames]: how far each cell (``cells``, dB: ``band_energy_db``), after a step of ``step_db``,
    would stand over ``ceiling`` ([bands + 1, frames] or one per item) + CEILING_MARGIN_DB, both relative to the
    loudest cell."""
    after = _under_loudest(cells + step_db)
    return (after - _fitted(ceiling.to(after), after.shape[-1]) - CEILING_MARGIN_DB).clamp(min=0)


def over_the_fall(cells: torch.Tensor, step_db: torch.Tensor) -> torch.Tensor:
    """[B, 1, frames] dB to take off every cell (``cells``, dB: ``band_energy_db``) of each frame after a step of
    ``step_db`` [B, bands + 1, frames], so the step adds no second hit: after the sound's loudest moment (before
    the step, levels smoothed as ``builtin.rises`` smooths them), no frame is lifted more than FALL_MARGIN_DB over
    the quietest (smoothed, after the step) between that moment and it, nor over its own level before the step
    where that is higher. Frames more than RISES_WITHIN_DB under the loudest are left free, as ``rises`` leaves
    them. Only lifts are taken back: no frame ends quieter than it was, and a tail lifted as a whole, falling still,
    passes.

    Why: the class guide lifts the cells where its classifier hears the asked class, wherever they are. Toward a tom,
    a sound that had fallen 30-45 dB came back as a second hit 0.1-0.3 s later in half the renders (rises over
    ``SECOND_HIT_DB`` in 16 of 32; plain new sounds 1, real one-shots of every class 0-4 %): docs/guidance.md, "No
    second hit"."""
    before, after = frame_db(cells), frame_db(cells + step_db)
    frames = torch.arange(after.shape[-1], device=after.device)
    peak, at = smoothed(before).max(-1, keepdim=True)  # the sound's own loudest moment, which a step does not move
    lowest = torch.cummin(torch.where(frames[None] >= at, smoothed(after), torch.full_like(after, math.inf)),
                          -1).values  # the quietest since the loudest, +inf before it (an attack builds freely)
    bound = torch.cat([torch.full_like(lowest[:, :1], math.inf), lowest[:, :-1]], -1) + FALL_MARGIN_DB
    excess = (after - torch.maximum(before, bound)).clamp(min=0)
    return torch.where(after > peak - RISES_WITHIN_DB, excess, torch.zeros_like(excess))[:, None]


def frame_db(cells: torch.Tensor) -> torch.Tensor:
    """[B, frames] dB: each frame's level from its cells [B, bands + 1, frames] (dB; the bands sum to the whole)."""
    return 10 * torch.log10(torch.pow(10.0, cells / 10).sum(1))


# How far a step may lift a frame over the quietest since the loudest: a drum's own ripple (real kicks' tails
# wobble, their rises' median 9 dB). Chosen on seeds 0-31 against 1 and 3 dB, which held the guided sounds' fall
# as well and took them further from real sounds of the class: docs/guidance.md, "No second hit".
FALL_MARGIN_DB = 6.0


def _under_loudest(cells: torch.Tensor) -> torch.Tensor:
    """Cells in dB under each item's loudest: the scale the ceilings are on (a sound's level does not count)."""
    return cells - cells.amax(dim=(1, 2), keepdim=True)


def _fitted(ceiling: torch.Tensor, frames: int) -> torch.Tensor:
    """[..., bands, frames] of a ceiling: cut to ``frames``, or held at its last moment's past its end."""
    if ceiling.shape[-1] < frames:
        ceiling = torch.cat([ceiling, ceiling[..., -1:].expand(*ceiling.shape[:-1], frames - ceiling.shape[-1])],
                            dim=-1)
    return ceiling[..., :frames]


@dataclass(frozen=True)
class Asked:
    """A parsed target: the classifier's file and the mix, one weight per class summing to 1."""

    classifier: Path
    mix: dict[str, float]

    def model(self) -> DrumClassifier:
        return _loaded(str(self.classifier), os.stat(self.classifier).st_mtime_ns)

    def ceiling(self, sample_rate: int) -> torch.Tensor | None:
        """The loudest of the asked classes' ceilings at each cell, on the guide's grid at ``sample_rate``; None
        when the classifier carries none (a file from before them)."""
        model = self.model()
        if model.ceilings is None:
            return None
        values, entry = model.ceilings
        asked = [model.classes.index(name) for name, share in self.mix.items() if share > 0]
        return on_grid(values[asked].amax(dim=0), entry["grid"], sample_rate)

    def weights(self) -> torch.Tensor:
        model = self.model()
        return torch.tensor([self.mix.get(name, 0.0) for name in model.classes])


def parse(target: str | None) -> Asked:
    """``kick``, ``kick*0.7+snare*0.3``, ``FILE.safetensors#kick`` (a classifier of your own)."""
    if not target:
        raise ConfigError(f"class: name the class: class=1:kick, or a mix: class=1:kick*0.7+snare*0.3 "
                          f"({_classes_of(DEFAULT_CLASSIFIER)})")
    path, _, text = target.rpartition("#")
    classifier = Path(path).expanduser() if path else DEFAULT_CLASSIFIER
    try:
        model = _loaded(str(classifier), os.stat(classifier).st_mtime_ns)
    except FileNotFoundError:
        raise ConfigError(f"class: no classifier {shown(str(classifier))}") from None
    mix: dict[str, float] = {}
    for part in text.split("+"):
        # Any name the classifier has (a producer's folders: "808", "hi hat", "präzise"), then *SHARE
        name, star, share = part.partition("*")
        name = name.strip().lower()
        if name not in model.classes or (star and _SHARE.fullmatch(share) is None):
            raise ConfigError(f"class: cannot read {shown(part.strip())} in {shown(target)}: a class of "
                              f"{', '.join(model.classes)}, optionally *WEIGHT (kick*0.7+snare*0.3)")
        mix[name] = mix.get(name, 0.0) + (float(share) if star else 1.0)
    total = sum(mix.values())
    if not total > 0 or not math.isfinite(total):
        raise ConfigError(f"class: the mix {shown(text)} has no weight")
    return Asked(classifier, {name: share / total for name, share in mix.items()})


def class_name_problem(name: str) -> str | None:
    """Why a class of that name (a folder's, lowercased) could not be asked for in class=1:FILE#NAME, or None."""
    if not name.strip():
        return "it is empty"
    if name != name.strip():
        return "it starts or ends with a space"
    reserved = sorted(set(name) & set(RESERVED))
    if reserved:
        return f"it holds {' '.join(reserved)}, which a class=1:... target uses ({RESERVED})"
    return None


@functools.lru_cache(maxsize=4)
def _loaded(path: str, _mtime: int) -> DrumClassifier:
    """One loaded copy per file and version, shared by every render (a guide step only reads it); loaded outside
    inference mode whatever the caller's, so that a copy first loaded while sampling (the heard class's ceiling)
    can still be differentiated through by the class guide later. It stays on the CPU: another device gets a copy
    (``on_device``)."""
    with torch.inference_mode(False):
        model, _card = load_classifier(path)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def _classes_of(path: Path) -> str:
    try:
        return "classes: " + ", ".join(_loaded(str(path), os.stat(path).st_mtime_ns).classes)
    except Exception:  # listing must not fail because the default is missing or broken
        return f"no classifier at {path}"


def on_device(model: DrumClassifier, device: torch.device) -> DrumClassifier:
    """``model`` where it is, or its own copy on ``device``: one per classifier and device, made once, outside
    inference mode and autograd, and kept as long as the classifier is.

    The classifier is shared (``_loaded``) and is never moved in place. Moved under the engine's inference mode
    (a new sound's heard class's ceiling is the first to call it on a GPU or a Mac), its parameters became
    inference tensors, and every class guide after it failed ("Inference tensors cannot be saved for backward")
    until the process ended; and renders on a GPU and eval-guides' measures on the CPU moved it back and forth.
    A copy is the classifier as it was when copied: a shared classifier is only read (its parameters need no
    gradient)."""
    device = torch.device(device)
    if next(model.parameters()).device == device:
        return model
    with _COPIES_LOCK:
        copies = _COPIES.setdefault(model, {})
        if device not in copies:
            with torch.inference_mode(False), torch.no_grad():
                copies[device] = copy.deepcopy(model).to(device)
        return copies[device]


# classifier -> {device: its copy there}; a classifier the cache (``_loaded``) lets go takes its copies with it
_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_COPIES_LOCK = threading.Lock()  # the service's render thread and its front end may both ask at once


def logits(model: DrumClassifier, audio: torch.Tensor, rate: int) -> torch.Tensor:
    """The classifier's logits of [B, C, L] audio at ``rate``, on the audio's device (``on_device``)."""
    model = on_device(model, audio.device)
    own = model.features.sample_rate
    if rate != own:
        audio = F.interpolate(audio.float(), scale_factor=own / rate, mode="linear", align_corners=False)
    return model(audio)


class ClassGuide:
    """Found through the ``dd_bridge.guides`` entry point ``class``; ``value``/``named`` serve eval-guides."""

    name = "class"
    unit = "% of the asked class"
    stage = WHAT  # it sets what the sound is: it acts first
    summary = "toward a drum class or a mix of classes (negative: away from it)"

    @property
    def target_help(self) -> str:
        return ("a class, a mix, or a classifier of your own: kick, kick*0.7+snare*0.3, FILE.safetensors#hat; "
                f"the default's {_classes_of(DEFAULT_CLASSIFIER)}")

    def make(self, weight: float, target: str | None, context: GuideContext, *, t_min: float = 0.0,
             t_max: float = 1.0, full: bool = False) -> LossGuide:
        asked = parse(target)
        model, mix, rate = asked.model(), asked.weights(), context.sample_rate

        def loss(audio: torch.Tensor) -> torch.Tensor:
            return -(mix.to(audio.device) * logits(model, audio, rate).log_softmax(-1)).sum(-1)

        entropy = float(-(mix * mix.clamp(min=1e-12).log()).sum())

        def heard(audio: torch.Tensor) -> torch.Tensor:  # exp(-KL(mix || answer)): one class's probability, or 1
            return torch.exp(entropy - loss(audio))    # when a mix is heard as exactly that mix

        if weight < 0:  # away from a class: no class's ceiling says where to go, nor when it is far enough
            return EnvelopeGuide(loss, weight, rate, t_min=t_min, t_max=t_max, name=self.name)
        return EnvelopeGuide(loss, weight, rate, asked.ceiling(rate), heard=heard, t_min=t_min, t_max=t_max,
                             name=self.name)

    def resolved(self, target: str | None) -> str | None:
        """The target with its classifier's file made absolute (a stored recipe works from any folder)."""
        if target and "#" in target:
            path, _, text = target.rpartition("#")
            return f"{Path(path).expanduser().resolve()}#{text}"
        return target

    def value(self, audio: torch.Tensor, rate: int, target: str | None = None) -> list[float]:
        """The classifier's probability (%) of the asked mix for each item of [B, C, L] audio."""
        asked = parse(target)
        with torch.no_grad():
            probabilities = logits(asked.model(), audio.float(), rate).softmax(-1).cpu()
        return [100 * float(row @ asked.weights()) for row in probabilities]

    def asked(self, target: str | None) -> list[str]:
        """The classes the target asks for."""
        return list(parse(target).mix)

    def named(self, audio: torch.Tensor, rate: int, target: str | None = None) -> list[str]:
        """The class the classifier names for each item."""
        model = parse(target).model()
        with torch.no_grad():
            return [model.classes[int(k)] for k in logits(model, audio.float(), rate).argmax(-1)]


CLASS = ClassGuide()
