"""Clicks the model added to a variation, taken out where its source has none: a restorer's declicker.

The bundled model lays lone spikes, one to a few samples wide, into a variation's decays and between a loop's hits
(crackle: `dd-bridge eval-vary` counts them). A spike is what a linear predictor cannot foresee, so it is found
and mended the way record restorers take clicks out of a transfer (Vaseghi & Rayner, "Detection and suppression
of impulsive noise in speech communication systems", IEE Proc. I 137(1), 1990; Godsill & Rayner, "Digital Audio
Restoration", Springer 1998, ch. 5):

- Detect: each block of BLOCK samples gets its own linear predictor of ORDER past samples (LPC by the
  autocorrelation method over twice the block, Hann-windowed, Levinson-Durbin). A sample whose prediction error
  stands more than SIGMAS robust deviations out (1.4826 x the block's median absolute error, the deviation of
  Gaussian noise) is part of a click. A drum's decay, tone or noise, is predictable; a spike is not.
- Keep what the source has: wherever the same detector finds anything in the source within GUARD_S (an attack, a
  hat's tick, a clap's bursts: the source's own transients), or anything over SOURCE_SIGMAS at the same place, or
  where the source is in an attack (ATTACK_S about each of its onsets), the variation is left exactly as it is.
  Only what the model added, where the source was smooth, is mended; a spike the variation's own level steps up
  after (RISE_DB) is an onset and stays too. A crackly source (vinyl, say) keeps its own ticks where they are;
  the variation's ticks elsewhere go about half the time (docs/benchmarks.md). Without a source nothing is
  touched: a new sound's transients are its own, and no source tells them apart from the model's spikes.
- Mend: the flagged samples of a click (runs closer than ORDER merged, MARGIN samples added either side), if it
  is at most MAX_CLICK_S long, are replaced by the least-squares AR interpolation (Janssen, Veldhuis & Vries,
  "Adaptive interpolation of discrete-time signals that can be modeled as autoregressive processes", IEEE Trans.
  ASSP 34(2), 1986): the values that make the block predictor's error smallest over the gap and ORDER samples
  either side, given every sample around. A decay carries on through the gap as it was going. Every other sample
  stays as it was, to the bit; the same render mends the same way every time.
"""

from __future__ import annotations

import numpy as np
import torch

BLOCK = 1024  # samples with one predictor: 21 ms at 48 kHz, short enough that a decay is steady over it
ORDER = 32  # past samples a predictor reads: resolves a kick's body and a snare's modes at 48 kHz
SIGMAS = 4.0  # a click's error stands this many robust deviations out (Gaussian error: 1 sample in 16,000)
FLOOR_DB = -70.0  # errors this far under the clip's peak are never clicks: nobody hears them
GUARD_S = 0.003  # the source's own transients within this of a click keep it
SOURCE_SIGMAS = 3.0  # ... and so does anything in the source at the same place (MARGIN + 2 samples) over this:
# a variation that is nearly its source (low noise) flags some of the source's borderline samples (3.9 deviations
# there, 4.1 here), which are the source's, not spikes
MARGIN = 2  # samples mended either side of a flagged run: a spike's skirts
MAX_CLICK_S = 0.002  # longer runs are sound, not a click: left alone
RISE_DB = 6.0  # a spike the sound steps up after (its level over RISE_S after against before) is an attack: kept
RISE_S = 0.005
ATTACK_S = (0.005, 0.03)  # the source's attacks, from this long before each onset to this long after it, ...
ONSET_DB = 10.0  # ... an onset where its 1 ms level stands this far over the loudest of the 10 ms before: kept


def declicked(renders: torch.Tensor, source: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """``renders`` [B, C, L] with the clicks that ``source`` ([C, <=L], or [1 or B, C, <=L]) does not have mended
    (module doc); the same dtype and device."""
    if renders.shape[-1] <= 2 * ORDER:  # no click in it has known samples on both sides to mend from
        return renders
    out = renders.detach().cpu().double().numpy().copy()
    src = source.detach().cpu().double().numpy().reshape(-1, *source.shape[-2:])
    length = out.shape[-1]
    longest = max(1, round(MAX_CLICK_S * sample_rate))
    rise = max(1, round(RISE_S * sample_rate))
    untouchable = [_left_alone(own, sample_rate, length) for own in src]  # one source for a whole batch: read once
    for b in range(out.shape[0]):
        for c in range(out.shape[1]):
            kept = untouchable[min(b, len(src) - 1)][min(c, src.shape[1] - 1)]  # a mono source: both sides
            z, predictors = surprise(out[b, c])
            out[b, c] = mended(out[b, c], (z > SIGMAS) & ~kept, predictors, longest, rise)
    return torch.from_numpy(out).to(renders.dtype).to(renders.device)


def _left_alone(source: np.ndarray, sample_rate: int, length: int) -> list[np.ndarray]:
    """Per channel of ``source`` [C, L'], where a variation [.., length] is left alone (bool [length]): near the
    source's own clicks, at its borderline samples, in its attacks."""
    source = np.pad(source[:, :length], ((0, 0), (0, max(0, length - source.shape[-1]))))
    early, late = (round(t * sample_rate) for t in ATTACK_S)
    attacks = _spread(onsets(source, sample_rate), early, late)
    guard = max(1, round(GUARD_S * sample_rate))
    kept = []
    for own in source:
        z, _ = surprise(own)
        kept.append(attacks | _spread(z > SIGMAS, guard, guard) | _spread(z > SOURCE_SIGMAS, MARGIN + 2, MARGIN + 2))
    return kept


def surprise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far each sample of ``x`` [L] lies from what its block's predictor makes of the ORDER before it, in
    robust deviations (1.4826 x the block's median absolute error; 0 where the error is under FLOOR_DB of the
    clip's peak), and the predictors [blocks, ORDER]. A click: over SIGMAS."""
    length = len(x)
    blocks = max(1, -(-length // BLOCK))
    predictors = lpc(_analysis_frames(x, blocks))
    error = np.abs(prediction_error(x, predictors))
    whole = length // BLOCK  # the full blocks in one call, a short last block alone
    medians = list(np.median(error[:whole * BLOCK].reshape(whole, BLOCK), axis=1)) if whole else []
    medians += [np.median(error[whole * BLOCK:])] if length % BLOCK else []
    deviation = np.repeat(1.4826 * np.asarray(medians), BLOCK)
    floor = np.abs(x).max(initial=0.0) * 10 ** (FLOOR_DB / 20)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(error > floor, error / deviation[:length], 0.0)
    return np.nan_to_num(z, nan=0.0, posinf=np.inf), predictors


def lpc(frames: np.ndarray) -> np.ndarray:
    """[F, N] frames -> [F, ORDER] predictors a with x[n] ~ sum_k a[k-1] x[n-k]: the autocorrelation method,
    Hann-windowed, solved by Levinson-Durbin (a silent frame: all zeros)."""
    windowed = frames * np.hanning(frames.shape[1])
    size = _fast_size(frames.shape[1] + ORDER + 1)  # enough zeros that the first ORDER + 1 lags do not wrap
    spectrum = np.fft.rfft(windowed, size)
    r = np.fft.irfft(np.abs(spectrum) ** 2, size)[:, :ORDER + 1]
    r[:, 0] *= 1 + 1e-9  # a whisker of white noise: a pure tone's predictor stays stable
    a = np.zeros((len(frames), ORDER))
    error = r[:, 0].copy()
    live = error > 1e-30
    for i in range(ORDER):
        acc = r[:, i + 1] - (a[:, :i] * r[:, i:0:-1]).sum(1)
        k = np.where(live, acc / np.where(live, error, 1.0), 0.0)
        a[:, :i] = a[:, :i] - k[:, None] * a[:, i - 1::-1] if i else a[:, :i]
        a[:, i] = k
        error = error * (1 - k ** 2)
    return a


def prediction_error(x: np.ndarray, predictors: np.ndarray) -> np.ndarray:
    """[L]: each sample less what its block's predictor makes of the ORDER samples before it (zeros before the
    start)."""
    history = np.concatenate([np.zeros(ORDER), x])
    error = np.empty_like(x)
    for f, a in enumerate(predictors):
        start, stop = f * BLOCK, min(len(x), (f + 1) * BLOCK)
        if start >= stop:
            break
        inverse = np.concatenate([[1.0], -a])
        error[start:stop] = np.convolve(history[start:stop + ORDER], inverse, mode="valid")
    return error


def mended(x: np.ndarray, flagged: np.ndarray, predictors: np.ndarray, longest: int, reach: int) -> np.ndarray:
    """``x`` [L] with each flagged click up to ``longest`` samples replaced by its least-squares AR interpolation,
    unless the sound's level over ``reach`` samples after it stands RISE_DB over the level before it (an onset)."""
    y = x.copy()
    for first, last in _runs(np.flatnonzero(flagged), len(x)):
        if last - first + 1 > longest or _rises(x, first - ORDER, last + ORDER + 1, reach):
            continue
        a = predictors[min(len(predictors) - 1, (first + last) // 2 // BLOCK)]
        y[first:last + 1] = _interpolated(y[first - ORDER:last + ORDER + 1], last - first + 1, a)
    return y


def _interpolated(segment: np.ndarray, gap: int, a: np.ndarray) -> np.ndarray:
    """The ``gap`` samples after the first ORDER of ``segment`` that minimise the predictor's squared error over
    the segment (Janssen et al. 1986), the ORDER samples either side known."""
    inverse = np.concatenate([[1.0], -a])[::-1]
    rows = len(segment) - ORDER
    system = np.zeros((rows, len(segment)))
    row = np.arange(rows)[:, None]
    system[row, row + np.arange(ORDER + 1)] = inverse  # row r: the error at sample r + ORDER
    unknown = np.zeros(len(segment), dtype=bool)
    unknown[ORDER:ORDER + gap] = True
    known = system[:, ~unknown] @ segment[~unknown]
    return np.linalg.lstsq(system[:, unknown], -known, rcond=None)[0]


def onsets(source: np.ndarray, sample_rate: int) -> np.ndarray:
    """[L] bool, True at the first sample of each 1 ms block of ``source`` [C, L] (its louder channel) whose level
    stands ONSET_DB over the loudest of the 10 blocks before it, and within 60 dB of the whole clip's loudest."""
    block = max(1, round(0.001 * sample_rate))
    count = -(-source.shape[-1] // block)
    padded = np.pad(np.abs(source).max(0), (0, count * block - source.shape[-1]))
    level = np.sqrt((padded.reshape(count, block) ** 2).mean(1))
    before = np.lib.stride_tricks.sliding_window_view(np.pad(level, (10, 0)), 10)[:count].max(1)
    loud = level.max(initial=0.0)
    starts = (level > before * 10 ** (ONSET_DB / 20)) & (level > loud * 1e-3)
    out = np.zeros(source.shape[-1], dtype=bool)
    out[np.flatnonzero(starts) * block] = True
    return out


def _rises(x: np.ndarray, start: int, stop: int, reach: int) -> bool:
    before = np.sqrt(np.mean(x[max(0, start - reach):start] ** 2)) if start > 0 else 0.0
    after = np.sqrt(np.mean(x[stop:stop + reach] ** 2)) if stop < len(x) else 0.0
    return after > before * 10 ** (RISE_DB / 20)


def _runs(flagged: np.ndarray, length: int) -> list[tuple[int, int]]:
    """Flagged sample indices as [first, last] runs: merged when closer than ORDER, MARGIN added either side,
    kept ORDER samples away from both ends (an interpolation needs known samples around it)."""
    runs: list[tuple[int, int]] = []
    for i in flagged:
        if runs and i - runs[-1][1] <= ORDER:
            runs[-1] = (runs[-1][0], int(i))
        else:
            runs.append((int(i), int(i)))
    bounded = [(max(ORDER, f - MARGIN), min(length - ORDER - 1, l + MARGIN)) for f, l in runs]
    return [(f, l) for f, l in bounded if f <= l]


def _analysis_frames(x: np.ndarray, blocks: int) -> np.ndarray:
    """[blocks, 2 * BLOCK]: each block with half a block either side (zeros beyond the ends)."""
    padded = np.pad(x, (BLOCK // 2, blocks * BLOCK - len(x) + BLOCK // 2))
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * BLOCK)[::BLOCK][:blocks]


def _spread(mask: np.ndarray, before: int, after: int) -> np.ndarray:
    """``mask`` with every True spread from ``before`` samples before it to ``after`` samples after it."""
    total = np.concatenate([[0], np.cumsum(mask)])
    at = np.arange(len(mask))
    return total[np.minimum(len(mask), at + before + 1)] > total[np.maximum(0, at - after)]


def _fast_size(least: int) -> int:
    """The smallest 2^a 3^b 5^c at least ``least``: an FFT size pocketfft does fast."""
    best = 1 << max(0, (least - 1).bit_length())
    for three in (1, 3, 9, 27):
        for five in (1, 5, 25):
            size = three * five
            while size < least:
                size *= 2
            best = min(best, size)
    return best
