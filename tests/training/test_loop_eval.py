"""The held-out loop figures (`dd-bridge eval-vary --loops`): beats built from real kits, and measures that see
what they are named for."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.training import loop_eval

KITS = ("HardElectro1", "Millo-Drums_v.1")


@pytest.fixture(scope="module")
def beats(drumkits):
    return loop_eval.beats([drumkits / kit for kit in KITS], 4, bpm=120, seed=3)


def test_beats_play_each_kits_kick_snare_and_hat_on_a_pattern(beats, drumkits):
    assert [beat.name.split(" (")[0] for beat in beats] == [f"{kit} {pattern}" for pattern in ("rock", "four")
                                                           for kit in KITS]  # kits in turn, then patterns
    for beat in beats:
        assert beat.clip.sample_rate == 48000 and beat.clip.samples.shape == (96000, 2)  # one bar at 120 bpm
        assert np.abs(beat.clip.samples).max() == pytest.approx(10 ** (-3 / 20), rel=1e-4)
        pattern = loop_eval.PATTERNS[beat.name.split(" (")[0].rsplit(" ", 1)[1]]
        steps = sorted({step for positions in pattern.values() for step in positions})
        assert beat.onsets == tuple(step * 6000 for step in steps)
        # Each onset starts a hit: its level over the next 30 ms is over the 10 ms before it by 3 dB or more.
        mid = beat.clip.samples.astype(np.float64).mean(axis=1)
        before = [10 * np.log10(max(np.mean(mid[np.arange(onset - 480, onset) % len(mid)] ** 2), 1e-20))
                  for onset in beat.onsets]
        assert np.all(loop_eval.hit_levels(beat.clip.samples, beat) > np.asarray(before) + 3), beat.name
    again = loop_eval.beats([drumkits / kit for kit in KITS], 4, bpm=120, seed=3)
    assert all(np.array_equal(a.clip.samples, b.clip.samples) for a, b in zip(beats, again))  # seeded


def test_a_folder_without_a_kick_snare_and_hat_gives_no_beats(tmp_path, drumkits):
    only_kicks = tmp_path / "kicks"
    (only_kicks / "kick").mkdir(parents=True)
    (only_kicks / "kick" / "bd1.flac").symlink_to(drumkits / "Millo-Drums_v.1" / "bd1.flac")
    assert loop_eval.beats([only_kicks], 3) == []


def test_groove_and_hits_read_a_beat_moved_or_turned_down(beats):
    beat = beats[0]
    own = beat.clip.samples
    assert loop_eval.groove(own, own, 48000) == pytest.approx(1.0)
    late = np.roll(own, 3000, axis=0)  # every hit a sixteenth late: another groove
    assert loop_eval.groove(late, own, 48000) < 0.8
    quieter = own * 10 ** (-6 / 20)
    assert loop_eval.groove(quieter, own, 48000) > 0.99  # the same groove, quieter
    assert np.median(loop_eval.hit_levels(quieter, beat) - loop_eval.hit_levels(own, beat)) == pytest.approx(-6.0)


def test_clicks_count_spikes_added_to_the_decays(beats):
    beat = beats[0]
    own = beat.clip.samples
    crackled = own.copy()
    for onset in beat.onsets:  # one lone spike 120 ms into each hit's decay
        crackled[(onset + 5760) % len(own)] += 0.3
    assert loop_eval.loop_clicks(crackled, beat) >= loop_eval.loop_clicks(own, beat) + 6


def test_silent_gaps_read_what_a_variation_lays_into_the_beat_s_silence(beats):
    # HardElectro1's hits are cut short: its rock beat has digital silence between them, Millo's ring on.
    electro, millo = (beat for beat in beats if beat.name.startswith(("HardElectro1 rock", "Millo-Drums_v.1 rock")))
    own = electro.clip.samples
    assert loop_eval.gap_level(own, own, 48000) == loop_eval.FLOOR_DBFS  # silence kept reads the floor
    rung = own + 10 ** (-60 / 20) * np.sin(2 * np.pi * 15 * np.arange(len(own)) / 48000)[:, None]  # a 15 Hz hum
    assert loop_eval.gap_level(rung, own, 48000) == pytest.approx(-63.0, abs=0.5)  # a sine's RMS: 3 dB under peak
    assert loop_eval.gap_level(millo.clip.samples, millo.clip.samples, 48000) is None  # no gap to measure


def test_figures_print_the_silent_gaps_and_compare_them_loop_by_loop():
    def figures(label, gaps):
        return loop_eval.LoopFigures(label, 3, 0.9, 0.01, -3.0, 0.5, 30.0, 10.0, 5.0, 0.0, 0, 6.0,
                                     ((0.9, -3.0, 20.0),) * 3, gaps)

    trimmed, rung = figures("trimmed", (-120.0, None, -100.0)), figures("rung", (-60.0, None, -64.0))
    assert "silent gaps (2 of 3 beats have them): the variation there -110.0 dBFS" in "\n".join(trimmed.lines())
    assert "silent gaps -48.0 ± 12.0 dB" in trimmed.against(rung)
    assert "silent gaps: none in these 3 beats" in "\n".join(figures("none", (None,) * 3).lines())
