"""Descriptions of drum sounds that eval and the memorization check compare, computed with torch alone.

A mel spectrogram (the mid channel, 64 bands from 20 Hz to 20 kHz) is the common ground: its per-band mean and
spread describe timbre, and the frame energies over time describe the envelope (attack and decay), which is
what tells a drum hit from a burst of noise.

Only the audible band is described. Above 20 kHz nobody hears anything, and a recording made at 44.1 kHz (11 of
the 12 held-out Hydrogen kits) holds nothing above 22.05 kHz: with the bands running to 24 kHz, the top one read
-120 dB (the floor) in every such file, with a spread of 0.2 dB, so a render's inaudible -100 dB there stood 60
spreads off and decided the whole distance (docs/benchmarks.md, "What the measure heard").
"""

from __future__ import annotations

import math

import torch

N_FFT = 1024
HOP = 256
N_MELS = 64
F_MIN = 20.0
F_MAX = 20000.0  # the audible band: see the module's docstring
MIN_SPREAD_DB = 1.0  # a feature is scaled by its spread over real sounds, but never by less than 1 dB (standardiser)
# Every band and moment reads at least as loud as a tone 96 dB under the clip's peak sample: a 16-bit file's last
# step under full scale. Under it a real hit holds its room and quantisation noise (the Hydrogen kits, 13 of 14
# 16-bit: about 100 dB under their peak in each band and moment), a render its own faint detail or digital
# silence; nobody hears either, and read down to -120 dBFS the difference between them had decided a comparison
# (the kick guide's renders, docs/guidance.md "Drum-likeness of a class": highs flickering 100 dB under their peak
# against the kits' steady floor there were its largest features).
RANGE_DB = 96.0
ENVELOPE_POINTS = 32


def _mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0) if isinstance(f, float) else 2595.0 * torch.log10(1.0 + f / 700.0)


def mel_filterbank(sample_rate: int, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   f_max: float | None = None) -> torch.Tensor:
    """[n_mels, n_fft // 2 + 1] triangular filters evenly spaced in mel (HTK formula) from F_MIN to ``f_max``
    (None: Nyquist, as the drum classifier was trained), each summing to 1."""
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    top = sample_rate / 2 if f_max is None else min(float(f_max), sample_rate / 2)
    edges_mel = torch.linspace(_mel(F_MIN), _mel(top), n_mels + 2, dtype=torch.float64)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - low) / (centre - low)
    falling = (high - freqs) / (high - centre)
    bank = torch.clamp(torch.minimum(rising, falling), min=0)
    bank = bank / bank.sum(dim=1, keepdim=True).clamp(min=1e-12)
    return bank.float()


def mel_magnitudes(clips: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """[N, n_mels, frames] mel-band magnitudes (F_MIN to F_MAX) of the mid channel of [N, 2, L] clips, none under
    RANGE_DB below the mid channel's peak sample."""
    mid = clips.float().mean(dim=1)
    floor = mid.abs().amax(dim=-1)[:, None, None] * 10 ** (-RANGE_DB / 20)
    if mid.shape[-1] <= N_FFT // 2:  # too short for the STFT's reflect padding: extend with silence
        mid = torch.nn.functional.pad(mid, (0, N_FFT))
    window = torch.hann_window(N_FFT)
    spec = torch.stft(mid, N_FFT, HOP, window=window, center=True, return_complex=True).abs()
    spec = spec / (window.sum() / 2)  # a full-scale sine reads 1
    return torch.maximum(torch.einsum("mf,nft->nmt", mel_filterbank(sample_rate, f_max=F_MAX), spec), floor)


def envelope_db(magnitudes: torch.Tensor, points: int = ENVELOPE_POINTS) -> torch.Tensor:
    """[N, points]: frame energy in dB, relative to the clip's loudest frame, resampled to a fixed length."""
    energy = magnitudes.pow(2).sum(dim=1).clamp(min=1e-12)
    db = 10 * torch.log10(energy)
    db = (db - db.amax(dim=1, keepdim=True)).clamp(min=-80)
    return torch.nn.functional.adaptive_avg_pool1d(db[:, None], points)[:, 0]


def describe(clips: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """[N, 2 * n_mels + points + 1] per clip: log-mel mean and spread over the sounding frames, envelope, level.

    Only frames within 60 dB of the clip's peak frame count for the spectral statistics, so the silence padding
    after a short hit does not dilute its timbre.
    """
    mags = mel_magnitudes(clips, sample_rate)
    log_mel = 20 * torch.log10(mags.clamp(min=1e-6))
    energy = 10 * torch.log10(mags.pow(2).sum(dim=1).clamp(min=1e-12))
    sounding = (energy >= energy.amax(dim=1, keepdim=True) - 60).float()[:, None, :]
    count = sounding.sum(dim=2).clamp(min=1)
    mean = (log_mel * sounding).sum(dim=2) / count
    spread = (((log_mel - mean[..., None]) ** 2 * sounding).sum(dim=2) / count).sqrt()
    level = energy.amax(dim=1, keepdim=True)
    return torch.cat([mean, spread, envelope_db(mags), level], dim=1)


def standardiser(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, scale) that put ``describe``'s features of a real set [N, D] on one footing: the spread of each over
    the set, never under MIN_SPREAD_DB. Every feature is in dB; one that real sounds hold within a fraction of a
    dB (a floor) would otherwise let a difference nobody hears outweigh all the others."""
    return features.mean(0), features.std(0).clamp(min=MIN_SPREAD_DB)


# Clicks: what the distance weighs little. describe() averages over 21 ms frames and whole bands, so a lone spike
# of 1 ms in a decay moves it little beside the envelope and timbre; the ear hears it as a click, and crackle is
# many of them. Lowering the SDE's noise per step brought new sounds closer by the distance while their decays
# gained a third more clicks (docs/benchmarks.md, "The SDE's eta on the audible features, and the clicks ..."):
# eval prints both.
CLICK_BLOCK_S = 0.001  # a click is a spike of about a millisecond
CLICK_CONTEXT_S = 0.025  # ... against the level of the 25 ms on either side
CLICK_OVER_DB = 12.0  # ... when its peak stands this far over their median RMS (white noise: about 1 in 300 blocks)
CLICK_FLOOR_DB = -60.0  # blocks this far under the sound's peak are silence, not clicks
CLICK_AFTER_PEAK_S = 0.05  # the decay: from this long after the loudest block (an attack is not a click)


def clicks(clips: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """[N]: how many lone spikes each clip's decay holds. Mid channel, 1 ms blocks; a block counts when its peak is
    more than CLICK_OVER_DB over the median RMS of the blocks within CLICK_CONTEXT_S of it and within
    CLICK_FLOOR_DB of the clip's peak, from CLICK_AFTER_PEAK_S after the clip's loudest block to its end. Real
    one-shots of the six held-out kits: 2.5 a clip on average; white noise decaying exponentially: 2.4."""
    mid = clips.double().mean(1)
    size = max(1, round(CLICK_BLOCK_S * sample_rate))
    count = mid.shape[-1] // size
    blocks = mid[:, : count * size].reshape(len(mid), count, size)
    peaks = blocks.abs().amax(-1)
    rms = blocks.pow(2).mean(-1).sqrt()
    reach = max(1, round(CLICK_CONTEXT_S / CLICK_BLOCK_S))
    padded = torch.nn.functional.pad(rms[:, None], (reach, reach), mode="replicate")[:, 0]
    local = padded.unfold(-1, 2 * reach + 1, 1).median(-1).values
    loudest = peaks.amax(-1, keepdim=True)
    after = torch.arange(count)[None] >= peaks.argmax(-1, keepdim=True) + round(CLICK_AFTER_PEAK_S / CLICK_BLOCK_S)
    spikes = (peaks > local * 10 ** (CLICK_OVER_DB / 20)) & (peaks > loudest * 10 ** (CLICK_FLOOR_DB / 20)) & after
    return spikes.sum(-1)
