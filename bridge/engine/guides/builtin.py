"""The built-in guides: measures of a drum sound a producer names, each differentiable in the audio.

Every measure takes [B, C, L] audio at ``rate`` and returns [B] on a working scale where equal steps sound about
equal (octaves, dB, semitones); docs/guidance.md gives each formula and unit. A ``Measured`` guide moves its
measure up with a positive weight, down with a negative one, or toward a target; ``match`` moves the sound toward
a second clip. The registry finds these objects through the ``dd_bridge.guides`` entry points (pyproject.toml),
the same way it finds a user's.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from bridge.engine.finish import low_band
from bridge.engine.guidance import HOP, N_FFT, LossGuide, band_matrix, stft
from bridge.errors import ConfigError

T60_PER_MEAN_TIME = 6 * math.log(10)  # energy exp(-t/tau) falls 60 dB at t = tau ln(10^6): T60 = 13.8 tau
PEAK_FALL_DB = 60.0  # per second: a later block is decay's peak only if it stands above a 1 s T60's fall
DECAY_HOP = 64  # 1.3 ms at 48 kHz: blocks fine enough for a 30 ms T60, long enough to average a noise's energy
ONSET_DB = -20.0  # the onset is the first frame within 20 dB of the loudest
ATTACK_FRAMES = 4  # 21 ms at 48 kHz (hop 256): the transient
BODY_FRAMES = 34  # the next 181 ms: the body the transient stands out from
# Punch without a target goes no further than real one-shots do: the 5th and 95th percentiles of 1541 of them
# (the Hydrogen kits, the three General MIDI sets and MuldjordKit; docs/guidance.md, "Punch stops where real drums
# stop"). Unbounded, weight 1 took renders to 34 dB, a click with a faint tail, where real hits read 8 (median).
PUNCH_ENDS = (-1.0, 18.0)
PITCH_FFT, PITCH_HOP = 8192, 2048  # 5.9 Hz bins at 48 kHz: a kick's fundamental needs them
PITCH_LOW_HZ, PITCH_HIGH_HZ = 20.0, 500.0  # where the fundamental of a kick, tom or 808 lies
FLOOR = 1e-6  # -60 dB under a reference: energies, widths and shapes are floored here (finite logs)
NOTE_NAMES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


@dataclass(frozen=True)
class GuideContext:
    """What building a guide may need besides its weight and target."""

    sample_rate: int
    source: torch.Tensor | None = None  # [2, L] at the model's rate: vary's source (relative targets)
    load: Callable[[str], torch.Tensor] | None = None  # an audio file -> [2, L] at the model's rate (match)


# Measures ----------------------------------------------------------------------------------------------------------

def heard(audio: torch.Tensor, rate: int) -> torch.Tensor:
    """The audio without its band under 20 Hz, which envelopes are measured on: every file is finished without it
    (bridge.engine.finish), and an offset or rumble left in a tail read as a tail (a decay guide held 0.30 s on
    estimates whose files read 0.24 s)."""
    return audio - low_band(audio, rate)


def frame_energy(audio: torch.Tensor, rate: int) -> torch.Tensor:
    """[B, frames]: energy per 21 ms STFT frame (hop 5.3 ms at 48 kHz), summed over bins and channels, of what
    is heard (``heard``)."""
    return stft(heard(audio, rate)).abs().pow(2).sum(dim=(1, 2))


def brightness(audio: torch.Tensor, rate: int) -> torch.Tensor:
    """log2 of the spectral centroid in Hz: sum(f P) / sum(P) over every bin and frame (P: power)."""
    power = stft(audio).abs().pow(2).sum(dim=(1, 3))  # [B, bins]
    freqs = torch.linspace(0, rate / 2, power.shape[-1], device=audio.device)
    centroid = (power * freqs).sum(-1) / power.sum(-1).clamp(min=1e-30)
    return torch.log2(centroid.clamp(min=1.0))


def block_energy(audio: torch.Tensor, rate: int, hop: int) -> torch.Tensor:
    """[B, blocks]: energy per block of ``hop`` samples (a partial last block left out), summed over channels, of
    what is heard (``heard``)."""
    kept = heard(audio, rate)
    blocks = kept.shape[-1] // hop
    return kept[..., : blocks * hop].pow(2).sum(1).reshape(kept.shape[0], blocks, hop).sum(-1)


def decay(audio: torch.Tensor, rate: int) -> torch.Tensor:
    """log2 of the T60 in seconds, from the energy-weighted mean time after the peak in 1.3 ms blocks
    (``DECAY_HOP``). Energy exp(-t/tau) summed in blocks of h seconds is geometric with ratio r = exp(-h/tau),
    whose mean is r / (1 - r) blocks = m: so tau = h / ln(1 + 1/m) (about (m + 1/2) h for long tails), and the
    T60 is 13.8 tau. Exact decays of noise or of a kick's sine read within a few % from 30 ms to 1 s (the 21 ms
    STFT frames used before read them 7-20 % short: a short tail fits in a few frames, and the frame holding the
    peak is smeared); a tail cut by the clip's end reads shorter. The peak is the loudest block against a fall
    of 60 dB a second (``PEAK_FALL_DB``): a hit's loudest, but on a steady sound, where the loudest block could
    be any, near the first, so the peak does not jump to the end (reading a steady sound as 0 s) when a step
    makes the end a little louder."""
    energy = block_energy(audio, rate, DECAY_HOP)
    blocks = torch.arange(energy.shape[-1], device=audio.device)
    level = 10 * torch.log10(energy.detach().clamp(min=1e-30)) - PEAK_FALL_DB * blocks[None] * DECAY_HOP / rate
    after = blocks[None] - level.argmax(-1, keepdim=True)  # blocks since the peak
    weights = energy * (after >= 0)
    mean_blocks = (weights * after.clamp(min=0)).sum(-1) / weights.sum(-1).clamp(min=1e-30)
    tau = DECAY_HOP / rate / torch.log1p(1 / mean_blocks.clamp(min=1e-3))
    return torch.log2((T60_PER_MEAN_TIME * tau).clamp(min=1e-3))


RISES_WITHIN_DB = 45.0  # a tail this far under the peak is in the noise floor: its wobble is not heard as pumping
RISES_SMOOTHING = 5  # frames (27 ms at 48 kHz): a partial's beating within it is not a rise
# Rises over this are heard as a second hit (or a tail that pumps): 0-4 % of the real one-shots of each class of six
# held-out Hydrogen kits, half of the renders guided toward a tom before the class guide was held to their fall
# (docs/guidance.md, "No second hit"). Real kicks' tails wobble by less: their median is 9 dB.
SECOND_HIT_DB = 20.0


def rises(audio: torch.Tensor, rate: int) -> torch.Tensor:
    """dB: how unevenly each sound falls from its loudest frame, the sum of the rises of its frame level
    (``frame_energy``, smoothed over ``RISES_SMOOTHING`` frames) after the peak while within ``RISES_WITHIN_DB`` of
    it. A clean decay reads 0 (the 50 real toms near G2 of the held-out kits: median 0.0; plain new sounds 3-4);
    flams and a pumping tail read tens of dB (a decay target of 1.5 s on toms: 23-40). Not a guide: a measure for
    the rulers, which pool spectra and envelopes over a sound and do not see pumping (docs/guidance.md, "A tom at
    a note")."""
    level = frame_level(audio, rate)
    frames = torch.arange(level.shape[-1], device=audio.device)
    peak, at = level.max(-1, keepdim=True)
    steps = level.diff(dim=-1).clamp(min=0)
    counted = (frames[None, 1:] > at) & (level[:, 1:] > peak - RISES_WITHIN_DB)
    return (steps * counted).sum(-1)


def hits(audio: torch.Tensor, rate: int) -> torch.Tensor:
    """[B] how many hits each sound has, whichever is the loudest: on the levels ``rises`` reads, from the first
    frame within HITS_WITHIN_DB of the loudest, a new hit is a rise of HIT_DB out of a dip of HIT_DB under the last
    hit's top, within HITS_WITHIN_DB of the loudest. ``rises`` reads only after the loudest frame, so a sound whose
    later hit is its loudest reads as falling evenly: plain new sounds had two hits in 3 of 32 where rises saw 1
    (real one-shots of six held-out kits: 0 of 136; docs/guidance.md, "No second hit"). A ruler, not a guide."""
    levels = frame_level(audio, rate).tolist()
    return torch.tensor([_hits(level) for level in levels], dtype=torch.long)


def _hits(level: list[float]) -> int:
    floor = max(level) - HITS_WITHIN_DB
    start = next(i for i, value in enumerate(level) if value > floor)
    top = low = level[start]
    count = 1
    for value in level[start + 1:]:
        if value > floor and value - low >= HIT_DB and top - low >= HIT_DB:  # out of a dip: another hit
            count, top, low = count + 1, value, value
        elif value > top:  # the same hit, still rising
            top = low = value
        else:
            low = min(low, value)
    return count


HIT_DB = 12.0  # a dip and a rise this deep make two hits: twice a real drum's own ripple (FALL_MARGIN_DB)
HITS_WITHIN_DB = 30.0  # what lies further under the loudest is a tail's wobble, not a hit


def frame_level(audio: torch.Tensor, rate: int) -> torch.Tensor:
    """[B, frames] dB: each sound's ``frame_energy``, ``smoothed``: the level ``rises`` and ``hits`` read."""
    return smoothed(10 * torch.log10(frame_energy(audio, rate).clamp(min=1e-30)))


def smoothed(level: torch.Tensor) -> torch.Tensor:
    """[B, frames] levels in dB, averaged over ``RISES_SMOOTHING`` frames (fewer at the ends)."""
    return F.avg_pool1d(level[:, None], RISES_SMOOTHING, 1, RISES_SMOOTHING // 2, count_include_pad=False)[:, 0]


ENVELOPE_FLOOR_DB = -60.0  # under the peak: where the even fall a decay target draws ends (no tail is pulled up to it)


def even_fall(goal: float, rate: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The loss of a decay target of 2**goal s. Toward a shorter T60 than the sound's, the squared distance of
    ``decay`` (log2 s), which takes away late energy wherever it is. Toward a longer one, how far the level of the
    sound's main band lies from an even fall at 60 dB per T60 from its onset, frame by frame, plus how far any
    frame of the whole sound stands over such a fall from the whole sound's own onset: 0 on an exact exponential
    fall at the target.

    Why not the squared distance both ways: its T60, the energy-weighted mean time after the peak, is met by any
    late energy, and toward 1.5 s toms fell 25 dB in 0.1 s and held a tail that wobbled by tens of dB (``rises``;
    docs/guidance.md, "A decay that falls evenly"). Why the main band: a frame's level steps the whole frame, so an
    even fall of the whole sound held its top as loud as its ring (crackle over 500 Hz for the whole tail, where a
    real tom's top dies in 0.1-0.3 s); weighed by the sound's own long-term spectrum (``main_band_level``) the steps
    fall on the band it mostly is, and the rest of the sound is only held under the fall, not lifted to it. Levels as
    amplitudes: each frame steps in proportion to how far off it is, so the loud part of the fall leads and the
    noise floor does not jump (in dB a frame would step by its error over its own level). Under
    ``ENVELOPE_FLOOR_DB`` only a louder frame counts. Shortening keeps the squared distance: a tail 45 dB down
    reads as a long T60 but is too quiet for an amplitude's error to move it within one call."""

    def loss(audio: torch.Tensor) -> torch.Tensor:
        value = decay(audio, rate)
        fall = off_an_even_fall(audio, rate, torch.full_like(value, 2.0**goal).detach())
        return torch.where(value.detach() > goal, (value - goal).pow(2) / 2, fall)

    return loss


LONGER_OCTAVES = 1.0  # the Decay dial's pull: toward an even fall this many octaves longer than the sound's T60


def longer(rate: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The loss a positive decay weight without a target (the Decay dial) steps down, a distance its steps are cut
    not to pass (``LossGuide``'s ``to_end``): how far the sound's main band (``main_band_level``) lies under an
    even fall ``LONGER_OCTAVES`` longer than its own T60, read afresh at every step, from its onset, but no longer
    than one that fills the clip. It only lifts: a sound falls more slowly, evenly, up to a tail that just fills
    its clip; one that already rings through its clip (its T60 longer than the clip) is left as it is.

    Why: raising the T60 itself lengthened new sounds by 0.02 s (0.44 -> 0.46 s) and left them less even (rises 4.4
    -> 7.5 dB); the even fall both ways (``even_fall``'s, toward an octave longer) shortened sounds that ring
    through their clips (1 s clips: T60 6.19 -> 1.44 s), which lie over the fall and were pulled down to it
    (docs/guidance.md, "The Decay dial lengthens")."""

    def loss(audio: torch.Tensor) -> torch.Tensor:
        clip = math.log2(audio.shape[-1] / rate)
        value = decay(audio, rate).detach()
        seconds = 2.0 ** (value + LONGER_OCTAVES).clamp(max=clip)
        power = stft(heard(audio, rate)).abs().pow(2).sum(1)  # [B, bins, frames]
        # A sound that rings through its clip has no fall to lengthen: its own first frames under a fall as long
        # as the clip would be lifted, and it would read shorter.
        return _off_the_fall(main_band_level(power), rate, seconds, over=False, under=True) * (value < clip)

    return loss


def off_an_even_fall(audio: torch.Tensor, rate: int, seconds: torch.Tensor) -> torch.Tensor:
    """[B]: how far [B, C, L] audio lies from an even fall at 60 dB per ``seconds`` [B] (a T60 each): its main
    band's level (``main_band_level``) above or under the fall from its onset, and any frame of the whole sound
    over the fall from the whole's onset, squared, relative to each level's peak (``even_fall`` says why)."""
    power = stft(heard(audio, rate)).abs().pow(2).sum(1)  # [B, bins, frames]
    whole = power.sum(1).clamp(min=1e-30).sqrt()
    return _off_the_fall(main_band_level(power), rate, seconds, over=True, under=True) + \
        _off_the_fall(whole, rate, seconds, over=True, under=False)


def _off_the_fall(amplitude: torch.Tensor, rate: int, seconds: torch.Tensor, *, over: bool,
                  under: bool) -> torch.Tensor:
    """[B, frames] levels -> [B]: the squared distances of the frames ``over`` and/or ``under`` a fall at 60 dB
    per ``seconds`` [B] from the onset, relative to the peak's square (under it: only while the fall is over
    ``ENVELOPE_FLOOR_DB``)."""
    frames = torch.arange(amplitude.shape[-1], device=amplitude.device)
    peak = amplitude.detach().amax(-1, keepdim=True)
    # From the onset, not the loudest frame: the frames before a late peak were free to swell, and did (a 50-100
    # ms fade-in on toms).
    onset = onset_frame(amplitude.detach().pow(2))
    after = (frames[None] - onset) * HOP / rate
    level_db = (-60.0 * after / seconds.reshape(-1, 1)).clamp(min=ENVELOPE_FLOOR_DB)
    error = amplitude - peak * 10 ** (level_db / 20)
    counted = (after > 0) & ((over & (error > 0)) | (under & (error < 0) & (level_db > ENVELOPE_FLOOR_DB)))
    return (error.pow(2) * counted).sum(-1) / peak[:, 0].pow(2).clamp(min=1e-30)


def main_band_level(power: torch.Tensor) -> torch.Tensor:
    """[B, bins, frames] power -> [B, frames]: each frame's amplitude in the sound's main band, its bins weighed
    by the sound's own long-term spectrum (a tom's ring, a hat's top), as a fraction of the whole."""
    spectrum = power.detach().sum(-1, keepdim=True)
    weights = spectrum / spectrum.sum(1, keepdim=True).clamp(min=1e-30)
    return (power * weights).sum(1).clamp(min=1e-30).sqrt()


def onset_frame(energy: torch.Tensor) -> torch.Tensor:
    """[B, frames] energies -> [B, 1]: the first frame within ``ONSET_DB`` of the loudest (punch's attack, the
    start of a decay target's fall)."""
    return (energy >= energy.amax(-1, keepdim=True) * 10 ** (ONSET_DB / 10)).float().argmax(-1, keepdim=True)


def punch(audio: torch.Tensor, rate: int) -> torch.Tensor:
    """dB of the transient over the body: mean frame energy in the 21 ms from the onset over that in the 181 ms
    after (onset: the first frame within 20 dB of the loudest)."""
    energy = frame_energy(audio, rate)
    onset = onset_frame(energy.detach())
    offset = torch.arange(energy.shape[-1], device=audio.device)[None] - onset
    attack = (offset >= 0) & (offset < ATTACK_FRAMES)
    body = (offset >= ATTACK_FRAMES) & (offset < ATTACK_FRAMES + BODY_FRAMES)
    # (+ 1e-30: digital silence reads 0 dB, not 0/0; under any sound's floor by far, so nothing else moves)
    floor = FLOOR * energy.amax(-1) + 1e-30
    attack_mean = (energy * attack).sum(-1) / attack.sum(-1).clamp(min=1)
    body_mean = (energy * body).sum(-1) / body.sum(-1).clamp(min=1)
    return 10 * torch.log10((attack_mean + floor) / (body_mean + floor))


def tuning(audio: torch.Tensor, rate: int) -> torch.Tensor:
    """The fundamental as a MIDI note number (69 = A4 = 440 Hz; fractions are cents / 100): the geometric mean
    frequency of 20-500 Hz weighted by the squared power spectrum (5.9 Hz bins), which sits on the strongest
    low partial: a kick's, tom's or 808's pitch."""
    power = stft(audio, PITCH_FFT, PITCH_HOP).abs().pow(2).sum(dim=(1, 3))  # [B, bins]
    freqs = torch.linspace(0, rate / 2, power.shape[-1], device=audio.device)
    band = (freqs >= PITCH_LOW_HZ) & (freqs <= PITCH_HIGH_HZ)
    weights = (power[:, band] / power[:, band].amax(-1, keepdim=True).clamp(min=1e-30)).pow(2)
    log_f = (weights * torch.log2(freqs[band])).sum(-1) / weights.sum(-1).clamp(min=1e-30)
    return 69 + 12 * (log_f - math.log2(440.0))


def width(audio: torch.Tensor, rate: int) -> torch.Tensor:
    """dB of side over mid energy, side = (L - R) / 2, mid = (L + R) / 2: 0 dB is as wide as it is centred; mono
    reads -60 dB (the floor) and stays mono (its side has no gradient)."""
    left, right = audio[:, 0], audio[:, -1]
    side = ((left - right) / 2).pow(2).sum(-1)
    mid = ((left + right) / 2).pow(2).sum(-1)
    floor = FLOOR * (side + mid).clamp(min=1e-30)
    return 10 * torch.log10((side + floor) / (mid + floor))


def shape_features(audio: torch.Tensor, rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, bands] dB, [B, frames] dB): the long-term spectrum in the 33 log bands of the source-shape guide,
    relative to its total, and the frame envelope relative to its peak; both floored at -60 dB."""
    power = stft(audio).abs().pow(2).sum(dim=1)  # [B, bins, frames]
    bands = torch.einsum("kf,bf->bk", band_matrix(rate).to(power), power.sum(-1))
    bands = bands / bands.sum(-1, keepdim=True).clamp(min=1e-30)
    envelope = power.sum(1)
    envelope = envelope / envelope.amax(-1, keepdim=True).clamp(min=1e-30)
    return 10 * torch.log10(bands + FLOOR), 10 * torch.log10(envelope + FLOOR)


def shape_distance(audio: torch.Tensor, rate: int, reference: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """dB: the RMS difference of the spectra plus that of the envelopes (the shorter one padded with -60 dB)."""
    spectrum, envelope = shape_features(audio, rate)
    ref_spectrum, ref_envelope = (feature.to(audio.device) for feature in reference)
    frames = max(envelope.shape[-1], ref_envelope.shape[-1])
    floor = 10 * math.log10(FLOOR)
    envelope = torch.nn.functional.pad(envelope, (0, frames - envelope.shape[-1]), value=floor)
    ref_envelope = torch.nn.functional.pad(ref_envelope, (0, frames - ref_envelope.shape[-1]), value=floor)
    spectral = (spectrum - ref_spectrum).pow(2).mean(-1).add(1e-12).sqrt()
    temporal = (envelope - ref_envelope).pow(2).mean(-1).add(1e-12).sqrt()
    return spectral + temporal


# Targets -----------------------------------------------------------------------------------------------------------

def _number(name: str, text: str, units: dict[str, float], low: float, high: float) -> float:
    """A number with one of ``units``' suffixes (case-insensitive; '' for a bare number), scaled, in low..high."""
    match = re.fullmatch(r"\s*([-+]?\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in units:
        raise ConfigError(f"{name}: cannot read the target {text!r}: a number with "
                          f"{' or '.join(repr(u) for u in units if u) or 'no unit'}")
    value = float(match.group(1)) * units[unit]
    if not low <= value <= high:
        raise ConfigError(f"{name}: the target {text!r} is outside {low:g}..{high:g}")
    return value


def _hertz(text: str, context: GuideContext) -> float:
    return math.log2(_number("brightness", text, {"": 1, "hz": 1, "k": 1000, "khz": 1000}, 20,
                             context.sample_rate / 2))


def _seconds(text: str, context: GuideContext) -> float:
    return math.log2(_number("decay", text, {"": 1, "s": 1, "ms": 1e-3}, 0.01, 60))


def _decibels(name: str):
    def parse(text: str, context: GuideContext) -> float:
        return _number(name, text, {"": 1, "db": 1}, -60, 60)
    return parse


def _midi(hertz: float) -> float:
    return 69 + 12 * math.log2(hertz / 440)


def _note_name(midi: float) -> str:
    """The nearest note's name: 15.5 -> "E0" (sharps, as NOTE_NAMES reads them back)."""
    number = round(midi)
    return f"{['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'][number % 12]}{number // 12 - 1}"


def _note(text: str, context: GuideContext) -> float:
    """A note name (A1, C#2, Eb0), a MIDI number (33), a frequency (55Hz), or semitones from the source (+2, -3):
    in every form a note the tuning measure can read (PITCH_LOW_HZ..PITCH_HIGH_HZ), so a target is never one the
    guide cannot reach while the file says it was tuned there (C6 was taken, and the sound stopped at F4)."""
    if text.strip().lower().endswith("hz"):  # said in the measure's own units: its range, in them
        return _midi(_number("tuning", text, {"hz": 1}, PITCH_LOW_HZ, PITCH_HIGH_HZ))
    spoken = re.fullmatch(r"\s*([a-gA-G])([#b]?)(-?\d)\s*", text)
    if spoken:
        letter, accidental, octave = spoken.groups()
        note = 12 * (int(octave) + 1) + NOTE_NAMES[letter.lower()] + {"#": 1, "b": -1, "": 0}[accidental]
        said = repr(text)
    elif text.strip().startswith(("+", "-")):
        if context.source is None:
            raise ConfigError(f"tuning: {text!r} is relative to a source; name a note (A1) to generate")
        shift = _number("tuning", text, {"": 1, "st": 1}, -24, 24)
        base = float(tuning(context.source[None].float(), context.sample_rate)[0])
        note = base + shift
        said = f"{text!r} (the source's note {base:.1f} {'+' if shift >= 0 else '-'} {abs(shift):g})"
        if not _midi(PITCH_LOW_HZ) <= base <= _midi(PITCH_HIGH_HZ):
            # No note the measure reads in the source (the silence a guide is checked on before the render, a
            # hat): only a shift that leads out of a readable note is known to miss.
            return note
    else:
        note, said = _number("tuning", text, {"": 1}, 0, 127), repr(text)
    low, high = _midi(PITCH_LOW_HZ), _midi(PITCH_HIGH_HZ)
    if not low <= note <= high:
        raise ConfigError(f"tuning: the target {said} is outside {_note_name(math.ceil(low))}.."
                          f"{_note_name(math.floor(high))} (MIDI {low:.1f}..{high:.1f}, {PITCH_LOW_HZ:g}.."
                          f"{PITCH_HIGH_HZ:g} Hz): the fundamentals of kicks, toms and 808s it tunes")
    return note


# Guides ------------------------------------------------------------------------------------------------------------

# When a guide acts among the others (its kind's ``stage``, registry.in_order): what the sound is (class, match),
# then its shape (brightness, decay, punch, width; a plug-in's unless it says), then its note (tuning). Each guide
# steps on what the one before it left, so the last has the last word at every network call: the note, the finest
# target, is not moved off it by a guide after it.
WHAT, SHAPE, NOTE = 0, 1, 2


@dataclass(frozen=True)
class Measured:
    """A guide that moves one measure: up (positive weight), down (negative) or toward a target (positive weight;
    the loss (measure - target)^2 / 2, with steps that stop there). Plug-ins may build their own from any
    differentiable measure."""

    name: str
    unit: str  # what `dd-bridge guides` shows: the unit of ``shown(measure)``
    summary: str  # what a positive weight does
    target_help: str
    measure: Callable[[torch.Tensor, int], torch.Tensor]
    parse_target: Callable[[str, GuideContext], float]
    shown: Callable[[float], float] = float  # working scale -> unit
    relative: bool = False  # the unit is a ratio scale (s, Hz): eval-guides also gives a target's relative distance
    # (lowest, highest) in the working scale: how far a weight without a target takes the measure, up to the
    # highest or down to the lowest and no further, whatever the weight; None: on as long as the guide acts.
    ends: tuple[float, float] | None = None
    stage: int = SHAPE  # when it acts among the others
    # The loss toward a target (its goal in the working scale, the rate) when the squared distance of the measure
    # would reach it the wrong way (decay: ``even_fall``); None: (measure - goal)^2 / 2.
    target_loss: Callable[[float, int], Callable[[torch.Tensor], torch.Tensor]] | None = None
    # The loss a positive weight without a target steps down (a distance, cut not to pass it), when raising the
    # measure itself would raise it the wrong way (decay: by holding up the hiss; ``longer``); None: minus it.
    raise_loss: Callable[[int], Callable[[torch.Tensor], torch.Tensor]] | None = None

    def make(self, weight: float, target: str | None, context: GuideContext, *, t_min: float = 0.0,
             t_max: float = 1.0, full: bool = False) -> LossGuide:
        rate, measure = context.sample_rate, self.measure
        if target is None:
            if self.ends is None:
                if self.raise_loss is not None and weight > 0:  # a distance: its steps are cut not to pass it
                    return LossGuide(self.raise_loss(rate), weight, t_min=t_min, t_max=t_max, full=full,
                                     to_end=True, name=self.name)
                return LossGuide(lambda audio: -measure(audio, rate), weight, t_min=t_min, t_max=t_max, full=full,
                                 name=self.name)
            # The distance left to the end it moves toward, 0 there and past it: a sound already past that end is
            # left as it is, and the other way stays open.
            low, high = self.ends
            up = weight > 0

            def left(audio: torch.Tensor) -> torch.Tensor:
                value = measure(audio, rate)
                return (high - value if up else value - low).clamp(min=0)

            return LossGuide(left, abs(weight), t_min=t_min, t_max=t_max, full=full, to_end=True, name=self.name)
        goal = self.parse_target(target, context)
        if weight < 0:
            raise ConfigError(f"{self.name}: a weight toward a target must be positive, got {weight:g}")
        loss = self.target_loss(goal, rate) if self.target_loss is not None else \
            (lambda audio: (measure(audio, rate) - goal).pow(2) / 2)
        return LossGuide(loss, weight, t_min=t_min, t_max=t_max, full=full, to_zero=True, name=self.name)

    def value(self, audio: torch.Tensor, rate: int) -> list[float]:
        """The measure of each item of [B, C, L] audio, in ``unit``."""
        with torch.no_grad():
            return [self.shown(float(v)) for v in self.measure(audio.float(), rate)]


@dataclass(frozen=True)
class Match:
    """Toward the spectrum and envelope of a second clip (the target: its path)."""

    name: str = "match"
    unit: str = "dB"
    summary: str = "closer to the target clip's spectrum and envelope (a negative weight: further from it)"
    target_help: str = "an audio file (required)"
    target_is_file: bool = True  # the registry makes it absolute for the recreating command
    distance: bool = True  # its measure is a distance to the target: a positive weight lowers it (eval-guides)
    stage: int = WHAT  # it sets what the sound is: it acts first

    def make(self, weight: float, target: str | None, context: GuideContext, *, t_min: float = 0.0,
             t_max: float = 1.0, full: bool = False) -> LossGuide:
        if not target or context.load is None:
            raise ConfigError("match: give the clip to match as the target: match=WEIGHT:FILE")
        rate = context.sample_rate
        with torch.no_grad():
            reference = shape_features(context.load(target)[None].float(), rate)
        return LossGuide(lambda audio: shape_distance(audio, rate, reference), weight, t_min=t_min, t_max=t_max,
                         full=full, name=self.name)

    def value(self, audio: torch.Tensor, rate: int, target: str | None = None) -> list[float]:
        """dB from each item of [B, C, L] audio to the target clip (its path), the distance the guide steps down."""
        if not target:
            raise ConfigError("match: give the clip to match as the target: match=WEIGHT:FILE")
        reference = _clip_features(target, rate, Path(target).stat().st_mtime_ns)
        with torch.no_grad():
            return [float(v) for v in shape_distance(audio.float(), rate, reference)]


@functools.lru_cache(maxsize=8)
def _clip_features(path: str, rate: int, _mtime_ns: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A match clip's shape features, read once per file and version: eval-guides measures the unguided renders,
    the guided ones and each best-of set against the same clip."""
    from bridge.engine.audio import read_audio, to_model  # file reading: only where a measure needs the clip

    with torch.no_grad():
        return shape_features(to_model(read_audio(Path(path)), rate)[None].float(), rate)


BRIGHTNESS = Measured("brightness", "Hz", "a higher spectral centroid: brighter (negative: darker)",
                      "a centroid in Hz: 3000, 3k, 3kHz", brightness, _hertz,
                      shown=lambda octaves: 2 ** octaves, relative=True)
DECAY = Measured("decay", "s", "a longer tail (negative: shorter)", "a T60 in seconds: 0.4, 400ms", decay,
                 _seconds, shown=lambda octaves: 2 ** octaves, relative=True, target_loss=even_fall,
                 raise_loss=longer)
PUNCH = Measured("punch", "dB", "more transient over the body (negative: softer attack)", "dB: 12", punch,
                 _decibels("punch"), ends=PUNCH_ENDS)
TUNING = Measured("tuning", "MIDI note", "a higher fundamental (negative: lower)",
                  "a note (A1, C#2), MIDI number (33), Hz (55Hz), or semitones from the source (+2, -3)", tuning,
                  _note, stage=NOTE)
WIDTH = Measured("width", "dB side/mid", "wider stereo (negative: narrower)", "dB of side over mid: -12", width,
                 _decibels("width"))
MATCH = Match()
