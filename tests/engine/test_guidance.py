"""Guidance: the wrapper leaves the samplers alone, and the source-shape guide removes what a model adds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bridge.engine.audio import read_audio, to_model
from bridge.engine.engine import Engine
from bridge.engine.guidance import Guided, SourceShape, band_matrix, source_shape
from bridge.engine.samplers import SAMPLERS
from bridge.engine.schedules import alpha_sigma
from bridge.engine.unet import DanceDiffusionUNet
from tests.conftest import TINY_RENDER

pytestmark = pytest.mark.usefixtures("one_thread")
RATE = 48000


def quarter_db(audio: torch.Tensor, which: int) -> float:
    """RMS in dB of quarter ``which`` (0..3) of [..., L]."""
    length = audio.shape[-1]
    part = audio[..., which * length // 4:(which + 1) * length // 4]
    return 20 * math.log10(float(part.double().pow(2).mean().sqrt()) + 1e-12)


@pytest.fixture(scope="module")
def snare(drumkits) -> torch.Tensor:
    """A real one-shot at the model's rate, [2, L]: loud attack, decay to near silence."""
    path = sorted(drumkits.glob("Millo-Drums_v.1/snare1.flac"))[0]
    return to_model(read_audio(path), RATE)  # 0.8 s; the last quarter near -46 dBFS


def test_band_matrix_is_a_partition_of_unity():
    matrix = band_matrix(RATE)
    assert torch.allclose(matrix.sum(0), torch.ones(matrix.shape[1]), atol=1e-5)
    assert (matrix >= 0).all()


def test_the_guide_leaves_its_own_source_alone(snare):
    guide = SourceShape(snare, RATE)
    out = guide.apply(snare[None])
    assert float((out - snare).abs().max()) < 1e-4


def test_hiss_over_a_decay_is_taken_down_to_the_source_envelope(snare):
    hiss = 10 ** (-32 / 20) * torch.randn(snare.shape, generator=torch.Generator().manual_seed(0))
    noisy = (snare + hiss)[None]
    before = quarter_db(noisy, 3) - quarter_db(snare, 3)
    cleaned = SourceShape(snare, RATE, margin_db=3.0).apply(noisy)
    after = quarter_db(cleaned, 3) - quarter_db(snare, 3)
    assert before > 10  # the hiss dominates the quiet tail
    assert after < 3.5, (before, after)  # within the margin (and a little for the band interpolation)
    assert abs(quarter_db(cleaned, 0) - quarter_db(snare, 0)) < 0.5  # the attack is untouched


def test_strength_scales_the_step_and_lift_restores_a_lost_decay(snare):
    quiet_tail = snare.clone()
    quiet_tail[:, snare.shape[-1] // 2:] *= 0.05  # the decay lost: 26 dB down
    lost = quarter_db(quiet_tail, 3) - quarter_db(snare, 3)
    ceiling_only = SourceShape(snare, RATE).apply(quiet_tail[None])
    assert abs(quarter_db(ceiling_only, 3) - quarter_db(quiet_tail, 3)) < 0.5  # nothing over the source: no change
    lifted = SourceShape(snare, RATE, lift_db=12.0).apply(quiet_tail[None])
    gain = quarter_db(lifted, 3) - quarter_db(quiet_tail, 3)
    assert lost < -20 and 10 < gain < 12.5, (lost, gain)  # lifted, by at most lift_db
    half = SourceShape(snare, RATE, lift_db=12.0, strength=0.25).apply(quiet_tail[None])
    assert 3 < quarter_db(half, 3) - quarter_db(quiet_tail, 3) < gain


def test_guided_hands_back_the_v_of_the_edited_estimate():
    x = torch.randn(2, 2, 4096, generator=torch.Generator().manual_seed(1))
    model = lambda x, t: 0.5 * x  # noqa: E731 - any network
    halve = _Edit(lambda d: 0.5 * d)
    t = torch.full((2,), 0.4)
    alpha, sigma = (float(w) for w in alpha_sigma(torch.tensor(0.4)))
    v = Guided(model, [halve])(x, t)
    denoised = alpha * x - sigma * model(x, t)
    assert torch.allclose(alpha * x - sigma * v, 0.5 * denoised, atol=1e-5)
    assert torch.equal(Guided(model, [_Edit(lambda d: d, acts=False)])(x, t), model(x, t))  # inactive: untouched


class _Edit:
    def __init__(self, edit, acts=True):
        self.edit, self.acts = edit, acts

    def acts_at(self, t):
        return self.acts

    def __call__(self, denoised, t):
        return self.edit(denoised)


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_sampler_is_guided(sampler, snare):
    engine = Engine.from_module(DanceDiffusionUNet(TINY_RENDER), sample_rate=RATE, window=8192, name="guided",
                                device="cpu")
    clip = snare[:, :12000]
    free = engine.vary(clip, 1, noise=0.5, steps=4, sampler=sampler, seed=[3], clamp=False)
    again = engine.vary(clip, 1, noise=0.5, steps=4, sampler=sampler, seed=[3], clamp=False, guides=[])
    guided = engine.vary(clip, 1, noise=0.5, steps=4, sampler=sampler, seed=[3], clamp=False,
                         guides=source_shape(clip, RATE, 1.0))
    assert torch.equal(free, again)  # no guide: the very same render
    # A random network fills the tail with noise; the guide keeps it near the source's decay.
    assert quarter_db(guided, 3) < quarter_db(free, 3) - 6


def test_shape_is_checked():
    clip = torch.zeros(2, 8192)
    assert source_shape(clip, RATE, 0) == []
    for bad in (-0.1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="shape"):
            source_shape(clip, RATE, bad)


def test_a_render_equal_to_its_source_is_left_alone_even_where_it_falls_fast(drum_loop):
    """A region cut from a loop: hits and gaps, energy falling faster than the guide's time slack."""
    clip = to_model(read_audio(drum_loop), RATE)[:, 40000:80000]
    guide = source_shape(clip, RATE, 1.0)[0]
    assert float((guide.settle(clip[None])[0] - clip).abs().max()) < 1e-4


def test_a_finished_variation_keeps_its_source_s_silence_silent(drumkits):
    """finish.py swaps the variation's band under 20 Hz for the source's; where the two differ under a kick, the
    swap's filter rings on into the silence after it (a loop's gaps: -60 dBFS at 10-20 Hz). The ceiling is held
    once more after the finish (clips._finished), so the silence stays silent and the kick is left as it was."""
    from bridge.engine.clips import _finished
    from bridge.engine.finish import finish

    kick = to_model(read_audio(drumkits / "HardElectro1" / "HardHse_K_02.flac"), RATE)
    n = int(0.2 * RATE)
    kick = kick[:, :n] * torch.cat([torch.ones(n - 480), torch.linspace(1, 0, 480)])  # cut short, as a gate does
    source = torch.cat([kick, torch.zeros(2, int(0.4 * RATE))], 1)
    render = source.clone()
    render[:, :n] += 0.05 * torch.sin(2 * math.pi * 14 * torch.arange(n) / RATE) * torch.hann_window(n, periodic=False)
    guides = source_shape(source, RATE, 1.0)
    gap = slice(int(0.3 * RATE), None)  # 100 ms after the kick's end

    def db(audio):
        return 20 * math.log10(float(audio.double().pow(2).mean().sqrt()) + 1e-15)

    rung = finish(guides[0].settle(render[None]), RATE, source)[0]  # settled and finished, not trimmed
    done = _finished(render, RATE, source, guides)
    assert db(rung[:, gap]) > -95  # the swap's ringing, where the source is digital silence
    assert db(done[:, gap]) < -120  # digital silence, as in the source
    assert db((done - rung)[:, :n]) < db(rung[:, :n]) - 60  # the kick itself untouched


def test_a_gated_sources_variation_stops_where_the_gate_shuts(drumkits):
    """A hard-gated kick: the variation's decay runs 25 ms on past the gate (what the model does; the ceiling's
    21 ms frames and +-11 ms slack let it through). Finished, it stops where the source stops, to the sample, and
    its sound before the gate is kept."""
    from bridge.engine.clips import _finished
    from bridge.engine.finish import GATE_RAMP_S

    kick = to_model(read_audio(drumkits / "HardElectro1" / "HardHse_K_02.flac"), RATE)
    n, run_on = int(0.15 * RATE), int(0.025 * RATE)
    source = torch.cat([kick[:, :n], torch.zeros(2, int(0.3 * RATE))], 1)  # the gate shuts at n, no fade
    render = 0.9 * source.clone()
    render[:, n:n + run_on] = 0.9 * kick[:, n:n + run_on]  # the model's decay past the gate
    guides = source_shape(source, RATE, 1.0)

    def db(audio):
        return 20 * math.log10(float(audio.double().pow(2).mean().sqrt()) + 1e-15)

    done = _finished(render, RATE, source, guides)
    ramp = round(GATE_RAMP_S * RATE)
    assert db(render[:, n + ramp:n + run_on]) > -40  # it was loud there
    assert db(done[:, n + ramp:]) < -120  # now silent from the ramp's end, as the source is
    body = slice(int(0.01 * RATE), n - int(0.03 * RATE))
    assert db((done - render)[:, body]) < db(render[:, body]) - 30  # the kick before the gate: as the model made it
