"""The last touch on a render before it becomes a file: nothing the model added below hearing, nothing clipped.

- Clicks: a variation's lone spikes that its source does not have are mended first (bridge.engine.declick).
- Rumble and DC: a small diffusion model leaves energy below 20 Hz (offsets up to 0.017 were measured on the
  bundled model). A variation gets its source's own content below 20 Hz back in place of the model's, so an 808's
  sub and a recording's offset are kept and only what the model added goes; a generated sound gets none.
  What is left of the model's offset over a short clip is taken out by a smooth correction, zero at both ends,
  that follows the source's level (``sounding``): under its sound, none of it in its silences. A variation's
  shape guide holds its ceiling once more right after the swap (``ceilings``), and with it a gate: silent, to the
  sample, where the source is digital silence (``silences``). The split is a zero-phase FFT
  filter (raised-cosine edge from 10 to 20 Hz) over the clip extended by its odd mirror image at both ends, so it
  shifts nothing in time and takes an offset out up to the last sample.
- Level: a render that peaks above full scale is turned down as a whole to just under it, instead of clamping,
  which would flatten its peaks into clicks. A variation's kept source band is not turned down with it. A
  variation keeps its source's level; only a new one-shot (``levelled``) is brought to a sample pack's peak.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from bridge.engine.audio import PCM_PEAK
from bridge.engine.declick import declicked

RUMBLE_HZ = 20.0  # at and above: untouched
RUMBLE_EDGE_HZ = 10.0  # at and below: all of it is the low band
FULL_SCALE = PCM_PEAK  # -0.1 dBFS: a render over full scale is turned down as a whole to it, never clipped
# A new one-shot's peak: where sample packs (and `make-drums`) put theirs. The model's own came out anywhere from
# -47 to -3 dBFS (median -10), so each file needed its own gain before it sat beside a kit's hits.
NEW_SOUND_PEAK_DB = -1.0
# The most a new one-shot is turned up. A render that peaks far under it is a faint tick over the model's -60 dBFS
# floor (3 or 4 in 32 at the defaults): turned up to -1 dBFS, the floor would become a hiss at -14 dBFS.
NEW_SOUND_MAX_LIFT_DB = 24.0
SMOOTH_S = 0.05  # the offset correction under a source follows its level smoothed over this (``sounding``)
# Digital silence in a source: its louder channel under SILENT_DB at every sample for SILENT_S or longer (a gated
# beat's gaps, a one-shot's end). A variation is silent there too (``silences``), faded over GATE_RAMP_S inside it.
SILENT_DB = -100.0
SILENT_S = 0.01
GATE_RAMP_S = 0.002


def low_band(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """The part of ``audio`` [..., L] below 20 Hz (from 10 Hz a raised-cosine edge), zero-phase.

    The clip is extended at both ends by its odd mirror image about its mean level over the first and last 20 ms
    (as filtfilt pads, with the level averaged over two cycles of 100 Hz): an offset stays an offset and a slow
    wobble carries on up to the last sample, where zero padding would make a step there and leave half of an
    offset in the ends (a click when the sound stops); the circular FFT never wraps the tail into the attack.
    (A tone under 100 Hz cut mid-cycle right at an end — a region cut through a kick's sub — can get a small
    bump there: its 20 ms mean is not its level.)"""
    length = audio.shape[-1]
    pad = length - 1
    shape = audio.shape
    flat = audio.double().reshape(-1, length)
    if pad > 0:
        # Odd extension about the mean of the first and last 20 ms: level and slope carry on across each end.
        ends = max(1, min(length, sample_rate // 50))
        first, last = flat[:, :ends].mean(-1, keepdim=True), flat[:, -ends:].mean(-1, keepdim=True)
        flat = torch.cat([2 * first - flat[:, 1:pad + 1].flip(-1), flat, 2 * last - flat[:, -pad - 1:-1].flip(-1)], -1)
    size = flat.shape[-1]
    spectrum = torch.fft.rfft(flat, n=size)
    freqs = torch.fft.rfftfreq(size, 1 / sample_rate, dtype=torch.float64)
    edge = ((freqs - RUMBLE_EDGE_HZ) / (RUMBLE_HZ - RUMBLE_EDGE_HZ)).clamp(0, 1)
    weight = 0.5 * (1 + torch.cos(math.pi * edge))
    low = torch.fft.irfft(spectrum * weight, n=size)[..., pad:pad + length]
    return low.reshape(shape).to(audio.dtype)


def finish(renders: torch.Tensor, sample_rate: int, source: torch.Tensor | None = None, *,
           level: bool = True, ceilings: Sequence = (), declick: bool = True,
           source_peak: float | None = None) -> torch.Tensor:
    """[B, 2, L] renders at the model's rate, ready to write: the source's sub-20 Hz band (or none), and every
    render whose peak is over full scale turned down to just under it. ``level=False`` leaves the level alone:
    a repaint or an extension turns down only its new part, after the splice (``fit_new_level``).

    ``ceilings``: guides with a ``trim(audio)`` (guidance.SourceShape) held once more right after the source's band
    is swapped in. Wherever the variation's sub differs from its source's, the swap's filter rings on for about
    100 ms at 10-20 Hz, and it rang into a loop's silent gaps at -57 to -71 dBFS, which the ceiling had made
    silent. Held before the offset is set, so the source's offset stays exact (after it, the ceiling took part of
    a short hat's correction back: offsets up to 0.0005).

    ``declick``: mend the clicks the render has where ``source`` has none (bridge.engine.declick). Only where the
    source is what the render varies: an extension's new material (its source there is padding) and a repaint at
    noise 1 (new where the old was) have no reference to tell their own transients from spikes, as a new sound has
    none.

    ``source_peak``: the source's peak in its file (not at the model's rate, where resampling lifts a sample
    normalised to 0 dBFS over it): over full scale, a float bounce's, it is the level the render is held under
    (over_full_scale); else FULL_SCALE."""
    if source is not None and declick:
        renders = declicked(renders.float(), source.float()[..., :renders.shape[-1]], sample_rate)
    high = renders.float() - low_band(renders.float(), sample_rate)
    if source is None:
        model = _centred(high)
        if not level:
            return model
        peak = model.abs().amax(dim=(-2, -1), keepdim=True)
        return model * (FULL_SCALE / peak.clamp(min=FULL_SCALE))
    source = source.float()[..., :renders.shape[-1]]
    gate = silences(source, sample_rate)
    where = sounding(source, sample_rate, gate)
    model = _centred(high, where=where)
    kept = low_band(source, sample_rate).expand_as(model)
    if ceilings:
        swapped = model + kept
        for guide in ceilings:
            swapped = guide.trim(swapped)
        model = swapped * gate - kept  # and silent, to the sample, where the source is digital silence
    out = _centred(model + kept, source.mean(-1, keepdim=True), where)  # the source's offset exactly
    if not level:
        return out
    # Only the model's part is turned down, so the source's own offset and sub stay as they were: a gain g with
    # g * peak(model) + peak(kept) <= the ceiling (a bound, so it may turn down a little more than needed). The
    # ceiling is FULL_SCALE, or the source's own peak where that is over full scale (only float holds it): a
    # variation keeps a hot float bounce's level (a PCM file that cannot hold it is turned down when written, with
    # a line: audio.encode_wav); a source normalised to 0 dBFS still gets FULL_SCALE, which PCM holds.
    ceiling = over_full_scale(source_peak or 0.0)
    over = out.abs().amax(dim=(-2, -1), keepdim=True) > ceiling
    room = (ceiling - kept.abs().amax(dim=(-2, -1), keepdim=True)).clamp(min=0)
    gain = (room / model.abs().amax(dim=(-2, -1), keepdim=True).clamp(min=1e-12)).clamp(max=1)
    return torch.where(over, _centred(model * gain + kept, source.mean(-1, keepdim=True), where), out)



def levelled(renders: torch.Tensor) -> torch.Tensor:
    """Finished new one-shots [..., 2, L] brought to a peak of NEW_SOUND_PEAK_DB, up by at most
    NEW_SOUND_MAX_LIFT_DB (a gain over the whole sound: nothing in it changes but its level)."""
    peak = renders.abs().amax(dim=(-2, -1), keepdim=True).clamp(min=1e-12)
    gain = (10 ** (NEW_SOUND_PEAK_DB / 20) / peak).clamp(max=10 ** (NEW_SOUND_MAX_LIFT_DB / 20))
    return renders * gain


def _centred(audio: torch.Tensor, mean: torch.Tensor | float = 0.0, where: torch.Tensor | None = None) -> torch.Tensor:
    """``audio`` [..., L] with its mean brought to ``mean`` by a smooth correction: what the 20 Hz split leaves of
    an offset over a short clip (content just above 20 Hz does not average out over 0.2 s) goes, as an infrasonic
    bump that is zero at both ends, so it can make no click. Its shape is ``where`` ([..., 1, L], mean 1: see
    ``sounding``), else a Hann window over the whole clip."""
    length = audio.shape[-1]
    excess = audio.mean(-1, keepdim=True) - mean
    if length < 3:
        return audio - excess
    if where is None:
        where = _hann(length, audio)
    return audio - excess * where


def _hann(length: int, like: torch.Tensor) -> torch.Tensor:
    hann = torch.hann_window(length, periodic=False, dtype=like.dtype, device=like.device)
    return hann / hann.mean()


def sounding(source: torch.Tensor, sample_rate: int, gate: torch.Tensor | None = None) -> torch.Tensor:
    """[..., 1, L] weights, mean 1, for an offset correction that lives where ``source`` [..., C, L] sounds: its
    louder channel's magnitude smoothed over SMOOTH_S (twice a moving average), under a Hann window. Spread
    evenly, a correction of 0.0001 put a -80 dBFS bump into every digital silence of a loop; this way none goes
    there (and none at all where the source is digital silence: ``silences``), and under the hits it is as small and
    as slow as their own level's envelope. A silent source: the Hann window. ``gate``: ``silences(source)``, if
    already made."""
    length = source.shape[-1]
    if length < 3:
        return torch.ones_like(source[..., :1, :])
    level = source.abs().amax(dim=-2, keepdim=True).double()
    width = max(1, round(SMOOTH_S * sample_rate / 2))
    for _ in range(2):  # a moving average, twice: a triangle 2 * width long (cumsum: 6x faster than avg_pool1d)
        padded = F.pad(level, (width // 2, width - width // 2))
        total = F.pad(padded.cumsum(-1), (1, 0))
        level = (total[..., width:width + length] - total[..., :length]) / width
    gate = silences(source, sample_rate) if gate is None else gate
    weight = level.clamp(min=0) * _hann(length, level) * gate.double()
    scale = weight.mean(-1, keepdim=True)
    return torch.where(scale > 1e-12, weight / scale.clamp(min=1e-12), _hann(length, level)).to(source.dtype)


def silences(source: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """[..., 1, L]: 0 where ``source`` [..., C, L] is digital silence (SILENT_DB, SILENT_S), 1 elsewhere, with a
    raised-cosine ramp over the first and last GATE_RAMP_S of each silence (inside it: the sound around it is
    untouched). The shape guide's ceiling cannot hold a gate to the sample: its 21 ms frames and +-11 ms slack let a
    variation's decay run 20-30 ms past one."""
    quiet = (source.abs().amax(dim=-2) < 10 ** (SILENT_DB / 20)).reshape(-1, source.shape[-1]).cpu().numpy()
    shortest = max(1, round(SILENT_S * sample_rate))
    ramp = max(1, round(GATE_RAMP_S * sample_rate))
    fade = 0.5 * (1 + np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp))  # from 1 to 0
    gates = np.ones(quiet.shape)
    for gate, row in zip(gates, quiet):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
        for start, stop in zip(edges[::2], edges[1::2]):
            if stop - start < max(shortest, 2 * ramp):
                continue
            gate[start:stop] = 0
            if start > 0:  # a sound before it fades out into it
                gate[start:start + ramp] = fade
            if stop < len(row):  # and the sound after it fades in
                gate[stop - ramp:stop] = fade[::-1]
    return torch.from_numpy(gates).to(source.dtype).to(source.device).reshape(*source.shape[:-2], 1, source.shape[-1])


def over_full_scale(peak: float) -> float:
    """The level a render is held under: FULL_SCALE, or a source's ``peak`` (in its file) where that is over full
    scale."""
    return peak if peak > 1.0 else FULL_SCALE


def fit_level(samples: np.ndarray, ceiling: float = FULL_SCALE) -> np.ndarray:
    """[frames, channels] at the file's rate, turned down to ``ceiling`` if over it (full scale, or a hot source's
    own peak: finish): resampling back from the model's rate can overshoot a peak that sat just under it there."""
    ceiling = max(ceiling, FULL_SCALE)
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    return (samples * (ceiling / peak)).astype(samples.dtype) if peak > ceiling else samples


def fit_new_level(kept: np.ndarray, new: np.ndarray) -> np.ndarray:
    """``kept + gain * new`` ([frames, channels] at the file's rate): a repaint's or an extension's new material
    (``new``, faded in and out already) turned down as a whole, never up, so that the sum stays under full
    scale; the kept source is never touched, so it stays exactly what it was (where the source itself is over
    full scale, that is the source's own and bounds nothing)."""
    total = kept + new
    if not new.size or np.abs(total).max() <= FULL_SCALE:
        return total.astype(np.float32)
    moving = (new != 0) & (np.abs(kept) <= FULL_SCALE)
    bounds = (FULL_SCALE - kept[moving] * np.sign(new[moving])) / np.abs(new[moving])
    gain = float(np.clip(bounds.min(), 0.0, 1.0)) if bounds.size else 1.0
    return (kept + gain * new).astype(np.float32)
