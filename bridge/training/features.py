"""Descriptions of drum sounds that eval and the memorization check compare, computed with torch alone.

A mel spectrogram (the mid channel, 64 bands from 20 Hz to Nyquist) is the common ground: its per-band mean and
spread describe timbre, and the frame energies over time describe the envelope (attack and decay), which is
what tells a drum hit from a burst of noise.
"""

from __future__ import annotations

import math

import torch

N_FFT = 1024
HOP = 256
N_MELS = 64
F_MIN = 20.0
ENVELOPE_POINTS = 32


def _mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0) if isinstance(f, float) else 2595.0 * torch.log10(1.0 + f / 700.0)


def mel_filterbank(sample_rate: int, n_fft: int = N_FFT, n_mels: int = N_MELS) -> torch.Tensor:
    """[n_mels, n_fft // 2 + 1] triangular filters evenly spaced in mel (HTK formula), each summing to 1."""
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges_mel = torch.linspace(_mel(F_MIN), _mel(sample_rate / 2), n_mels + 2, dtype=torch.float64)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - low) / (centre - low)
    falling = (high - freqs) / (high - centre)
    bank = torch.clamp(torch.minimum(rising, falling), min=0)
    bank = bank / bank.sum(dim=1, keepdim=True).clamp(min=1e-12)
    return bank.float()


def mel_magnitudes(clips: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """[N, n_mels, frames] mel-band magnitudes of the mid channel of [N, 2, L] clips."""
    mid = clips.float().mean(dim=1)
    if mid.shape[-1] <= N_FFT // 2:  # too short for the STFT's reflect padding: extend with silence
        mid = torch.nn.functional.pad(mid, (0, N_FFT))
    window = torch.hann_window(N_FFT)
    spec = torch.stft(mid, N_FFT, HOP, window=window, center=True, return_complex=True).abs()
    spec = spec / (window.sum() / 2)  # a full-scale sine reads 1
    return torch.einsum("mf,nft->nmt", mel_filterbank(sample_rate), spec)


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
