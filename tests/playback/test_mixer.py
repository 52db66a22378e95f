"""The output stream's mixer on its own: what a callback of any block size gets, cuts, stops, ended sounds."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.playback.mixer import Mixer
from tests.playback.signals import click_bound, held_tone, largest_step, sine

RATE = 48000
FADE = 240  # 5 ms


def run(mixer: Mixer, frames: int, block: int) -> np.ndarray:
    """frames of output rendered in callback blocks of block frames (the last one shorter)."""
    out = np.zeros((frames, mixer.channels), np.float32)
    for start in range(0, frames, block):
        mixer.render(out[start: start + block])
    return out


@pytest.mark.parametrize("block", [1, 64, 256, 1000])
def test_a_sound_plays_exactly_then_silence_whatever_the_block_size(block):
    mixer = Mixer(2, FADE)
    tone = sine(0.05, RATE)
    mixer.play(7, tone)
    out = run(mixer, len(tone) + 500, block)
    np.testing.assert_array_equal(out[: len(tone)], tone)
    assert not out[len(tone):].any()
    assert list(mixer.ended) == [7] and not mixer.playing


@pytest.mark.parametrize("block", [64, 256, 1000])
def test_a_new_sound_cuts_the_last_with_a_linear_fade_and_starts_at_once(block):
    mixer = Mixer(2, FADE)
    held, new = held_tone(1.0, RATE), sine(0.2, RATE)
    mixer.play(1, held)
    first = run(mixer, 3 * block, block)
    mixer.play(2, new)  # between two callbacks, as a press arrives
    second = run(mixer, len(new) + block, block)
    out = np.concatenate([first, second])
    cut = 3 * block
    np.testing.assert_array_equal(out[:cut], held[:cut])
    ramp = (FADE - np.arange(1, FADE + 1, dtype=np.float32)) / FADE
    np.testing.assert_allclose(out[cut: cut + FADE], held[cut: cut + FADE] * ramp[:, None] + new[:FADE], atol=1e-6)
    np.testing.assert_array_equal(out[cut + FADE: cut + len(new)], new[FADE:])
    assert largest_step(out) <= click_bound(held, new, FADE)
    assert list(mixer.ended) == [1, 2]


def test_the_click_measure_finds_a_cut_without_a_fade():
    """The bound the playback tests hold a cut to is one a hard cut breaks: the measure can fail."""
    held, new = held_tone(1.0, RATE), sine(0.2, RATE)
    hard = Mixer(2, 1)  # one frame: the old sound gone at once
    hard.play(1, held)
    first = run(hard, 4000, 256)
    hard.play(2, new)
    out = np.concatenate([first, run(hard, 1000, 256)])
    assert largest_step(out) > 5 * click_bound(held, new, FADE)


def test_stop_fades_out_whatever_plays_and_a_later_sound_plays_in_full():
    mixer = Mixer(2, FADE)
    held = held_tone(1.0, RATE)
    mixer.play(1, held)
    first = run(mixer, 1000, 100)
    mixer.stop()
    second = run(mixer, 1000, 100)
    assert largest_step(np.concatenate([first, second])) <= click_bound(held, held[:0], FADE)
    assert not second[FADE:].any() and list(mixer.ended) == [1]
    tone = sine(0.01, RATE)
    mixer.play(2, tone)
    np.testing.assert_array_equal(run(mixer, len(tone), 128), tone)


def test_presses_faster_than_the_fade_fade_every_cut_sound_and_keep_the_last():
    mixer = Mixer(2, FADE)
    sounds = [held_tone(0.5, RATE) * (1 - 0.2 * i) for i in range(4)]
    out = []
    for ident, sound in enumerate(sounds):
        mixer.play(ident, sound)
        out.append(run(mixer, 100, 50))  # 100 frames apart: earlier fades still running
    out.append(run(mixer, len(sounds[-1]), 256))
    out = np.concatenate(out)
    assert largest_step(out) <= sum(click_bound(s, s, FADE) for s in sounds)  # all four overlap at worst
    tail = out[300 + FADE:]
    np.testing.assert_array_equal(tail[: len(sounds[-1]) - FADE], sounds[-1][FADE:])
    assert sorted(mixer.ended) == [0, 1, 2, 3]


def test_a_sound_of_the_wrong_channel_count_is_refused():
    with pytest.raises(ValueError, match=r"\[frames, 2\]"):
        Mixer(2, FADE).play(1, np.zeros((10, 1), np.float32))


@pytest.mark.parametrize("block", [1, 64, 256, 1000])
def test_queued_sounds_play_one_after_another_with_their_gap_whatever_the_block_size(block):
    """A press's variations (review s39-3 #1): all handed in at once, each heard in full, in order, `after` frames
    apart, none cutting the one before."""
    mixer = Mixer(2, FADE)
    sounds = [sine(0.02, RATE, 500 * (i + 1)) for i in range(3)]
    gap = 100
    mixer.play(1, sounds[0])
    mixer.play(2, sounds[1], after=gap)
    mixer.play(3, sounds[2], after=gap)
    out = run(mixer, sum(map(len, sounds)) + 2 * gap + 300, block)
    silence = np.zeros((gap, 2), np.float32)
    expected = np.concatenate([sounds[0], silence, sounds[1], silence, sounds[2]])
    np.testing.assert_array_equal(out[: len(expected)], expected)
    assert not out[len(expected):].any()
    assert list(mixer.ended) == [1, 2, 3] and not mixer.playing


def test_a_queued_sound_with_nothing_playing_starts_at_once():
    mixer = Mixer(2, FADE)
    tone = sine(0.01, RATE)
    mixer.play(1, tone, after=500)
    np.testing.assert_array_equal(run(mixer, len(tone), 64), tone)


@pytest.mark.parametrize("cut_at", [300, 960 + 50])  # while the first plays; in the gap before the second
def test_a_new_press_cuts_what_plays_and_what_is_queued(cut_at):
    mixer = Mixer(2, FADE)
    first, second, new = held_tone(0.02, RATE), held_tone(0.02, RATE), sine(0.05, RATE)
    mixer.play(1, first)
    mixer.play(2, second, after=100)
    before = run(mixer, cut_at, 64)
    mixer.play(3, new)
    after = run(mixer, len(new) + 2000, 64)
    out = np.concatenate([before, after])
    assert largest_step(out[cut_at - 1: cut_at + FADE + 1]) <= click_bound(first, new, FADE)  # the cut: faded
    np.testing.assert_array_equal(after[FADE: len(new)], new[FADE:])  # only the new one, once the fade is over
    assert not after[len(new):].any()  # the queued one never plays
    assert sorted(mixer.ended) == [1, 2, 3]
