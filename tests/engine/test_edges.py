"""A finished render's ends are the sound's, not the network's: the bundled model, real one-shots and real renders.

The network's last samples, where its zero padding meets the sound, come out as a spike: up to full scale in the
last 16 samples, 10-80 times louder than the 50 ms before, in every one of 16 new sounds of the default length
(32768 samples, a multiple of the network's 8192, so no padding). Finished renders run with clips.EDGE_MARGIN of
silence after them, so the spike lands in what is cut off. Its first samples are a spike too: finished renders
run with clips.LEAD_IN of silence before them, imposed; a loop's tie leaves both ends of its layout out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bridge.engine import clips
from bridge.engine.audio import Clip, read_audio
from bridge.engine.engine import Engine
from bridge.engine.inpaint import circular_layout
from bridge.engine.tempo import Bars
from bridge.training.data import onset
from bridge.errors import ConfigError

LAST = 16  # samples: where the spike sits
BEFORE = 2400  # 50 ms at 48 kHz


@pytest.fixture(scope="module")
def bundled(one_thread):
    return Engine("dd-drums-small", device="cpu")


def end_over_before(samples: np.ndarray) -> float:
    """[frames, channels]: the peak of the last 16 samples over the peak of the 50 ms before them."""
    level = np.abs(samples).max(axis=1)
    return float(level[-LAST:].max() / max(level[-LAST - BEFORE:-LAST].max(), 1e-6))


def test_new_sounds_of_the_network_s_own_length_end_without_a_spike(bundled):
    sounds = clips.generate_clips(bundled, 4, steps=10, seed=0)
    assert all(sound.frames == bundled.window for sound in sounds)
    ratios = [end_over_before(sound.samples) for sound in sounds]
    assert max(ratios) < 2.0, ratios  # before the margin: 7 to 80


def start_over_after(samples: np.ndarray) -> float:
    """[frames, channels]: the peak of the first 16 samples over the peak of the 50 ms after them."""
    level = np.abs(samples).max(axis=1)
    return float(level[:LAST].max() / max(level[LAST:LAST + BEFORE].max(), 1e-6))


def test_new_sounds_start_on_their_hit_not_on_a_click(bundled):
    """The network's first samples come out as a spike too: every new sound began on a click of 1 to 6 samples
    up to full scale, 5 to 50 times the body after it (first 16 samples over the next 50 ms: 2.7 in the median
    of 16 seeds). With clips.LEAD_IN of silence imposed before the sound it is gone (0.25), and the hit still
    starts the file."""
    sounds = clips.generate_clips(bundled, 4, steps=10, seed=0)
    ratios = [start_over_after(sound.samples) for sound in sounds]
    assert max(ratios) < 1.0, ratios
    assert all(onset(sound.samples.T) == 0 for sound in sounds)  # loud within the first 32 samples


def test_a_variation_of_a_clip_of_the_network_s_own_length_ends_no_louder_than_its_tail(bundled, drumkits):
    """A snare's first 32768 samples taken as 48 kHz (a multiple of 8192, and past the shortest length the network
    runs at, 24576: no padding either). Milder than a new sound's, the spike still rose over the tail (1.8 times
    the 50 ms before; with the margin 0.6)."""
    samples = read_audio(drumkits / "Millo-Drums_v.1" / "snare1.flac").samples
    samples = samples if samples.ndim == 2 else samples[:, None]
    clip = Clip(np.pad(samples, ((0, max(0, 32768 - len(samples))), (0, 0)))[:32768], 48000)
    variations = clips.vary_clip(bundled, clip, 2, noise=0.8, steps=10, seed=0)
    assert all(variation.frames == 32768 for variation in variations)
    ratios = [end_over_before(variation.samples) for variation in variations]
    assert max(ratios) < 1.0, ratios


def test_the_margin_runs_the_network_past_the_clip_and_cuts_it_off(bundled):
    seen = []
    network = bundled.network

    def spy(x, t):
        seen.append(x.shape[-1])
        return network(x, t)

    bundled.network = spy
    try:
        out = bundled.generate(1, 32768, steps=2, seed=0, margin=clips.EDGE_MARGIN)
        plain = bundled.generate(1, 32768, steps=2, seed=0)
    finally:
        bundled.network = network
    assert out.shape[-1] == plain.shape[-1] == 32768
    assert set(seen) == {40960, 32768}  # the next multiple of 8192 past 32768 + 512; without a margin, none
    seen.clear()
    bundled.network = spy
    try:
        led = bundled.generate(1, 32768 - 1000, steps=2, seed=0, margin=512, lead_in=1000)
    finally:
        bundled.network = network
    assert led.shape[-1] == 32768 - 1000 and set(seen) == {40960}  # 1000 + 31768 + 512 runs at 40960
    with pytest.raises(ConfigError, match="margin"):
        bundled.generate(1, 8192, steps=2, seed=0, margin=-1)
    with pytest.raises(ConfigError, match="lead_in"):
        bundled.vary(torch.zeros(2, 8192), 1, noise=0.5, steps=2, seed=0, lead_in=-5)
    with pytest.raises(ConfigError, match="margin"):
        bundled.vary(torch.zeros(2, 8192), 1, noise=0.5, steps=2, seed=0, margin=1.5)


def test_an_extension_s_windows_join_without_a_spike(bundled, drumkits):
    """extend renders a whole model window at a time (32768 samples: no padding) and keeps each window's new
    half whole: every window's last samples were the network's edge spike in the middle of the file (the first
    join 0.66 against 0.45 in the 50 ms before; with the margin 0.04 against 0.08)."""
    source = read_audio(drumkits / "Millo-Drums_v.1" / "snare1.flac")
    source = Clip(source.samples, 48000)  # taken as 48 kHz: no resampling, so the join is at a known sample
    (extended,) = clips.extend_clip(bundled, source, 1, 1.0, steps=10, seed=0)
    join = source.frames + bundled.window // 2  # the first window: the last half window known, then half new
    assert end_over_before(extended.samples[:join]) < 1.0


def test_a_loop_has_no_click_where_the_network_s_edges_fold_into_it(bundled):
    """A loop is rendered over a longer layout of copies of itself, tied by averaging the copies at every step
    (bridge.engine.inpaint.CircularTie). The network's first and last samples, the edge spikes, were averaged
    in: a click at the two places of the loop that map there, every cycle (4 loops of one bar at 10 steps: at
    5 of 8 places louder than anything in the 50 ms either side, one the loop's loudest sample; now none)."""
    bars = Bars(1, 120)
    period = bars.frames(bundled.sample_rate)
    layout, length = circular_layout(period, round(clips.LOOP_CONTEXT_WINDOWS * bundled.window),
                                     bundled.padded_length)
    edges = [(0 - layout.before) % period, (length - 1 - layout.before) % period]
    loops = clips.generate_loops(bundled, 4, bars, steps=10, seed=0)
    ratios = []
    for loop in loops:
        level = np.abs(loop.samples).max(axis=1)
        for place in edges:
            at = level[np.arange(place - LAST // 2, place + LAST // 2) % period].max()
            around = level[np.r_[np.arange(place - LAST // 2 - BEFORE, place - LAST // 2),
                                 np.arange(place + LAST // 2, place + LAST // 2 + BEFORE)] % period].max()
            ratios.append(at / max(around, 1e-6))
    assert max(ratios) < 1.0, ratios
