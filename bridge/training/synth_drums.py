"""Drum one-shots synthesised here, labelled by construction: training data for the class guide's classifier
that no licence restricts (`dd-bridge make-drums synth`).

Every shippable recorded set here is acoustic or a General MIDI rendering of one, and the held-out kits the
classifier did worst on are electronic (HardElectro1, ElectricEmpireKit). Analogue drum machines make their
sounds from a few simple parts, and those parts are what each voice below draws with random settings:
- kick: a sine whose pitch falls fast from 90-320 Hz to 38-75 Hz, a decay of 60-450 ms, a click of filtered
  noise on the attack, sometimes driven into a soft clip;
- snare: two sine modes (150-260 Hz and 1.45-1.9 times that) decaying in 20-90 ms under band-passed noise
  decaying in 60-250 ms;
- hat: six square waves at the inharmonic ratios of a TR-808's hat (or noise), high-passed at 5-9 kHz;
  closed (10-60 ms) or open (120-450 ms);
- cymbal: the same metal with more noise, band-passed 2.5-20 kHz, decaying over 0.5-2 s, sometimes a ride's ping;
- tom: a sine falling a little (1.2-1.7 times) to 80-320 Hz, decaying in 120-450 ms, with a short skin noise;
- clap: three to five bursts of band-passed noise 6-14 ms apart, then a tail of 40-200 ms;
- perc: a cowbell (two square waves at a 1.48 ratio, band-passed), claves or a woodblock (a high sine, 15-60 ms),
  a conga or bongo (a sine bending down onto 180-500 Hz), a shaker (high noise with a soft attack), or a
  triangle-like ring (two inharmonic sines, 0.2-0.6 s).
Each is mono made stereo by a delay of 0-20 samples and a level difference of up to 15 % on the right, faded at
its end, levelled to make-drums' peak.

Measured (docs/guidance.md, "The classifier's figures"): 40 a class added to the shippable training set raised
held-out accuracy by 2.1 points over three seeds (every seed up); 120 a class did less.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bridge.engine.audio import write_audio
from bridge.errors import BridgeError
from bridge.training import drums

RATE = drums.SAMPLE_RATE
COUNT = 40  # a class, by default: the measured dose (120 a class did less)
HAT_RATIOS = np.array([1.0, 1.4828, 1.8, 2.5464, 2.6298, 3.8964])  # a TR-808 hat's six oscillators, over the lowest
END_FADE = 480  # 10 ms at the end of every sound
LICENCE = drums.Licence("CC0-1.0", "none: synthesised by DD Bridge's own code (bridge/training/synth_drums.py)", True)


def _times(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * RATE)) / RATE


def _filtered(x: np.ndarray, low: float | None = None, high: float | None = None, order: float = 2.0) -> np.ndarray:
    """x high-passed at ``low`` and low-passed at ``high`` (Butterworth-shaped magnitudes of ``order``, zero phase)."""
    spectrum = np.fft.rfft(x)
    freqs = np.maximum(np.fft.rfftfreq(len(x), 1 / RATE), 1e-3)
    gain = np.ones_like(freqs)
    if low:
        gain /= np.sqrt(1 + (low / freqs) ** (2 * order))
    if high:
        gain /= np.sqrt(1 + (freqs / high) ** (2 * order))
    return np.fft.irfft(spectrum * gain, n=len(x))


def _envelope(t: np.ndarray, attack: float, decay: float) -> np.ndarray:
    """A linear rise over ``attack`` seconds into an exponential decay with time constant ``decay``."""
    return np.minimum(t / max(attack, 1e-4), 1.0) * np.exp(-t / decay)


def _falling(t: np.ndarray, start: float, end: float, fall: float) -> np.ndarray:
    """A sine whose frequency falls from ``start`` to ``end`` Hz with time constant ``fall``."""
    frequency = end + (start - end) * np.exp(-t / fall)
    return np.sin(2 * np.pi * np.cumsum(frequency) / RATE)


def _metal(t: np.ndarray, rng: np.random.Generator, lowest: float) -> np.ndarray:
    ratios = HAT_RATIOS * lowest * rng.uniform(0.9, 1.1, len(HAT_RATIOS))
    return sum(np.sign(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))) for f in ratios)


def kick(rng: np.random.Generator) -> np.ndarray:
    t = _times(rng.uniform(0.3, 0.75))
    body = _falling(t, rng.uniform(90, 320), rng.uniform(38, 75), rng.uniform(0.008, 0.06))
    body *= _envelope(t, 0.001, rng.uniform(0.06, 0.45))
    click = _filtered(rng.standard_normal(len(t)), 1500, 9000) * _envelope(t, 0.0003, rng.uniform(0.002, 0.008))
    x = body + rng.uniform(0.05, 0.5) * click
    return np.tanh(x * rng.uniform(1, 4)) if rng.random() < 0.5 else x


def snare(rng: np.random.Generator) -> np.ndarray:
    t = _times(rng.uniform(0.25, 0.6))
    f = rng.uniform(150, 260)
    modes = np.sin(2 * np.pi * f * t) + 0.6 * np.sin(2 * np.pi * f * rng.uniform(1.45, 1.9) * t)
    modes *= _envelope(t, 0.001, rng.uniform(0.02, 0.09))
    wires = _filtered(rng.standard_normal(len(t)), rng.uniform(400, 1500), rng.uniform(5000, 14000))
    wires *= _envelope(t, 0.001, rng.uniform(0.06, 0.25)) / (np.abs(wires).max() + 1e-9)
    return rng.uniform(0.3, 1.0) * modes + rng.uniform(0.5, 1.2) * wires


def hat(rng: np.random.Generator) -> np.ndarray:
    opened = rng.random() < 0.35
    t = _times(rng.uniform(0.3, 0.7) if opened else rng.uniform(0.1, 0.3))
    source = _metal(t, rng, rng.uniform(300, 560)) if rng.random() < 0.6 else rng.standard_normal(len(t))
    decay = rng.uniform(0.12, 0.45) if opened else rng.uniform(0.01, 0.06)
    return _filtered(source, rng.uniform(5000, 9000), None, 3.0) * _envelope(t, 0.0005, decay)


def cymbal(rng: np.random.Generator) -> np.ndarray:
    t = _times(drums.MAX_HIT_SECONDS)
    source = rng.uniform(0.2, 1) * _metal(t, rng, rng.uniform(250, 450)) + rng.uniform(0.5, 2) * rng.standard_normal(len(t))
    x = _filtered(source, rng.uniform(2500, 6000), rng.uniform(12000, 20000))
    x *= _envelope(t, rng.uniform(0.0005, 0.01), rng.uniform(0.5, 2.0))
    if rng.random() < 0.3:  # a ride's ping
        x += 0.3 * np.abs(x).max() * np.sin(2 * np.pi * rng.uniform(2500, 5000) * t) * _envelope(t, 0.0005, 0.3)
    return x


def tom(rng: np.random.Generator) -> np.ndarray:
    t = _times(rng.uniform(0.35, 0.75))
    f = rng.uniform(80, 320)
    body = _falling(t, f * rng.uniform(1.2, 1.7), f, rng.uniform(0.02, 0.1)) * _envelope(t, 0.001, rng.uniform(0.12, 0.45))
    skin = _filtered(rng.standard_normal(len(t)), 300, 4000) * _envelope(t, 0.0005, rng.uniform(0.005, 0.02))
    return body + rng.uniform(0.05, 0.3) * skin


def clap(rng: np.random.Generator) -> np.ndarray:
    t = _times(rng.uniform(0.25, 0.5))
    bursts, gap = int(rng.integers(3, 6)), rng.uniform(0.006, 0.014)
    shape = np.zeros(len(t))
    for k in range(bursts):
        since = t - k * gap
        shape += np.where(since >= 0, np.exp(-np.maximum(since, 0) / 0.004), 0) * rng.uniform(0.7, 1.0)
    since = t - (bursts - 1) * gap
    shape += np.where(since >= 0, np.exp(-np.maximum(since, 0) / rng.uniform(0.04, 0.2)), 0)
    return _filtered(rng.standard_normal(len(t)), rng.uniform(700, 1300), rng.uniform(2500, 6000)) * shape


def perc(rng: np.random.Generator) -> np.ndarray:
    kind = int(rng.integers(0, 5))
    t = _times(rng.uniform(0.15, 0.5))
    if kind == 0:  # cowbell
        f = rng.uniform(450, 620)
        bell = np.sign(np.sin(2 * np.pi * f * t)) + np.sign(np.sin(2 * np.pi * f * 1.48 * t))
        return _filtered(bell, 400, 4000) * _envelope(t, 0.0005, rng.uniform(0.04, 0.25))
    if kind == 1:  # claves, woodblock
        return np.sin(2 * np.pi * rng.uniform(700, 2800) * t) * _envelope(t, 0.0003, rng.uniform(0.015, 0.06))
    if kind == 2:  # conga, bongo
        f = rng.uniform(180, 500)
        slap = _filtered(rng.standard_normal(len(t)), 1000, 6000) * _envelope(t, 0.0003, 0.005)
        return _falling(t, f * 1.15, f, 0.01) * _envelope(t, 0.0005, rng.uniform(0.06, 0.2)) + 0.3 * slap
    if kind == 3:  # shaker, maracas
        grains = _filtered(rng.standard_normal(len(t)), rng.uniform(4000, 8000), 16000)
        return grains * _envelope(t, rng.uniform(0.01, 0.05), rng.uniform(0.03, 0.1))
    f = rng.uniform(2000, 5000)  # a triangle's ring
    return (np.sin(2 * np.pi * f * t) + 0.4 * np.sin(2 * np.pi * f * 2.76 * t)) * _envelope(t, 0.0005, rng.uniform(0.2, 0.6))


VOICES = {"kick": kick, "snare": snare, "hat": hat, "tom": tom, "cymbal": cymbal, "clap": clap, "perc": perc}


def one_shot(voice, rng: np.random.Generator) -> np.ndarray:
    """[2, L] at RATE: the voice's sound, faded at its end, made stereo, at make-drums' peak."""
    x = voice(rng)
    fade = min(END_FADE, len(x) // 4)
    x[-fade:] *= np.linspace(1, 0, fade)
    right = np.roll(x, int(rng.integers(0, 20))) * rng.uniform(0.85, 1.0)
    return np.stack([x, right]) * (10 ** (drums.PEAK_DB / 20) / (np.abs(x).max() + 1e-12))


def out_name(label: str, number: int) -> str:
    return f"{label}/synth {label} {number:03d}.wav"


def licence_text(count: int, seed: int) -> str:
    entry = {"kit": f"DD Bridge synthesised drums ({count} a class, seed {seed})", "author": LICENCE.holders,
             "licence": LICENCE.licence, "source": f"dd-bridge make-drums synth --count {count} --seed {seed}",
             "format": f"{RATE // 1000} kHz 16-bit WAV, stereo, at most {drums.MAX_HIT_SECONDS:g} s"}
    lines = ["# Where these one-shots come from", "",
             f"Made by `dd-bridge make-drums synth --count {count} --seed {seed}`: {count} one-shots of each of "
             f"{', '.join(VOICES)}, synthesised by bridge/training/synth_drums.py from sines, square waves and "
             "noise with random settings (its docstring says how each class is made). No recording went into "
             "them; the same command makes the same files again.", ""]
    return "\n".join(lines + drums.licence_lines(LICENCE, entry))


def make(out, *, count: int = COUNT, seed: int = 0, progress=None) -> drums.Made:
    """``count`` one-shots of every class into out/<class>/ (created if needed); files already there are kept."""
    out = Path(out)
    if not 1 <= count <= 10000:
        raise BridgeError(f"--count must be 1 to 10000 sounds a class, got {count}")
    rng = np.random.default_rng(seed)
    made = drums.Made([], [], 0, 0, [])
    drums.folder(out)
    drums.write_licence(out, licence_text(count, seed))
    for index, (label, voice) in enumerate(VOICES.items()):
        drums.folder(out / label)
        if progress:
            progress(index + 1, len(VOICES), label)
        for number in range(1, count + 1):
            hit = one_shot(voice, rng)  # drawn whether or not the file exists: the same seed, the same sounds
            path = out / out_name(label, number)
            if path.exists():
                made.existing.append(path)
            else:
                made.written.append(write_audio(path, drums.to_clip(hit), "pcm16"))
    return made

