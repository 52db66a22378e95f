"""Pictures a producer looks at while a model trains: spectrograms of demo renders and the loss curve.

PNGs are written directly (zlib + the PNG chunk layout): two small pictures do not earn a plotting library.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

# Anchor colours of a dark-to-bright map (black, purple, red, orange, pale yellow): loud is bright.
_COLOURS = np.array([[0, 0, 4], [80, 18, 123], [183, 55, 121], [252, 137, 97], [252, 253, 191]], dtype=np.float32)
FLOOR_DB = -100.0  # dBFS shown as black


def write_png(path, rgb: np.ndarray) -> Path:
    """Writes an [H, W, 3] uint8 image as an 8-bit RGB PNG, atomically."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width, _ = rgb.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), rgb.reshape(height, width * 3)], axis=1)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def colour(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> RGB through the colour map."""
    x = np.clip(values, 0, 1) * (len(_COLOURS) - 1)
    low = np.floor(x).astype(int).clip(0, len(_COLOURS) - 2)
    frac = (x - low)[..., None]
    return (_COLOURS[low] * (1 - frac) + _COLOURS[low + 1] * frac).astype(np.uint8)


def spectrogram(audio: torch.Tensor, sample_rate: int, height: int = 256, n_fft: int = 1024,
                hop: int = 256) -> np.ndarray:
    """[H, W] in [0, 1]: dBFS of the mid channel on a log-frequency axis (20 Hz at the bottom to Nyquist)."""
    mid = audio.float().mean(0) if audio.ndim == 2 else audio.float()
    if mid.shape[-1] <= n_fft // 2:  # too short for the STFT's reflect padding: extend with silence
        mid = torch.nn.functional.pad(mid, (0, n_fft))
    window = torch.hann_window(n_fft)
    spec = torch.stft(mid, n_fft, hop, window=window, return_complex=True, center=True).abs()
    db = 20 * torch.log10(spec / (window.sum() / 2) + 1e-10)  # a full-scale sine reads 0 dBFS
    freqs = np.linspace(0, sample_rate / 2, spec.shape[0])
    wanted = np.geomspace(20, sample_rate / 2, height)
    rows = np.stack([np.interp(wanted, freqs, column) for column in db.T.numpy()], axis=1)
    return ((rows - FLOOR_DB) / -FLOOR_DB)[::-1]


def spectrogram_png(path, clips: list[torch.Tensor], sample_rate: int) -> Path:
    """The clips' spectrograms side by side, split by thin white lines."""
    parts = []
    for clip in clips:
        if parts:
            parts.append(np.full((256, 2, 3), 255, np.uint8))
        parts.append(colour(spectrogram(clip, sample_rate)))
    return write_png(path, np.concatenate(parts, axis=1))


def loss_png(path, steps: list[int], losses: list[float], width: int = 640, height: int = 320) -> Path:
    """Loss per step on a log scale: raw values as grey dots, a smoothed curve in red, a line at each decade."""
    image = np.full((height, width, 3), 255, np.uint8)
    if len(losses) < 2:
        return write_png(path, image)
    x = np.asarray(steps, dtype=np.float64)
    y = np.log10(np.maximum(np.asarray(losses, dtype=np.float64), 1e-6))
    smooth = np.copy(y)
    for i in range(1, len(y)):
        smooth[i] = 0.95 * smooth[i - 1] + 0.05 * y[i]
    low, high = np.floor(y.min()), np.ceil(y.max())
    high = max(high, low + 1)

    def px(step, value):
        col = ((step - x[0]) / max(x[-1] - x[0], 1) * (width - 1)).astype(int)
        row = ((high - value) / (high - low) * (height - 1)).astype(int)
        return col.clip(0, width - 1), row.clip(0, height - 1)

    for decade in np.arange(low, high + 1):
        image[px(x[:1], np.array([decade]))[1][0], :] = (200, 200, 200)
    cols, rows = px(x, y)
    image[rows, cols] = (150, 150, 150)
    cols, rows = px(x, smooth)
    for i in range(1, len(cols)):  # vertical runs between neighbours keep the curve unbroken
        a, b = sorted((rows[i - 1], rows[i]))
        image[a:b + 1, cols[i]] = (200, 30, 30)
    return write_png(path, image)
