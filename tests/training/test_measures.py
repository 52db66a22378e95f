"""eval's distance and the memorization check on real drums: a copying model is caught, noise is not."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from bridge.engine.engine import Engine
from bridge.engine.samplers import SAMPLERS
from bridge.engine.schedules import alpha_sigma, step_grid
from bridge.engine.unet import DanceDiffusionUNet
from bridge.errors import BridgeError
from bridge.training import data, evaluate, features, memorization

RATE = 48000
WINDOW = 4096


@pytest.fixture(scope="module")
def kit(drumkits):
    """Real one-shots: 6 as a reference (held out), 8 others as training files."""
    files = sorted((drumkits / "rumpf_kit_z01_h2").glob("*.flac"))[::8][:14]
    shots = data.OneShots.load(files, RATE, WINDOW)
    assert len(shots) == 14
    return shots


class Memorizer(DanceDiffusionUNet):
    """The denoiser a network converges to when it learns its training set by heart: the posterior mean over
    the training clips. Whatever it is asked, it answers with (a blend collapsing onto) one of them."""

    def __init__(self, config, clips: torch.Tensor):
        super().__init__(config)
        self.register_buffer("clips", clips.clone())

    def forward(self, x, t):
        t = t.reshape(-1).expand(x.shape[0]).double()
        alpha, sigma = (w.float()[:, None, None] for w in alpha_sigma(t))
        sigma = sigma.clamp(min=1e-4)
        distance = ((x[:, None] - alpha[:, None] * self.clips[None]) ** 2).flatten(2).sum(-1)
        weights = torch.softmax(-distance / (2 * sigma[:, :, 0] ** 2), dim=1)
        x0 = torch.einsum("bn,ncl->bcl", weights, self.clips)
        return (alpha * x - x0) / sigma


def test_the_distance_ranks_noise_above_real_drums(drumkits):
    """Two halves of one kit's hits (alternate files: the same mix of drums) are close; the same hits' envelopes
    over white noise are not, and near-silence is farthest. (With the first files as the reference and the next
    as the others, the halves were different drums, and only the inaudible band over 20 kHz, since left out of
    the features, had kept the noise farther.)"""
    window = 16384
    shots = data.OneShots.load(sorted((drumkits / "rumpf_kit_z01_h2").glob("*.flac"))[::4], RATE, window)
    judge = evaluate.Judge(shots.windows[0::2], RATE)
    others = shots.windows[1::2]
    floor = judge.mmd2(others)
    noise = judge.mmd2(evaluate.noise_bursts(others, torch.Generator().manual_seed(0)))
    silence = judge.mmd2(torch.zeros(8, 2, window) + 1e-4 * torch.randn(8, 2, window))
    assert floor < 0.05 < 0.1 < noise < silence


def test_what_nobody_hears_does_not_move_the_distance(drumkits):
    """Hiss over 21 kHz at -80 dBFS (a 48 kHz render may hold such a trace; a 44.1 kHz recording holds nothing over
    22.05 kHz) leaves the distance to real hits recorded at 44.1 kHz as it was; audible hiss over 2 kHz at -40 dBFS
    moves it. (Before the features stopped at 20 kHz, the inaudible hiss moved it by 0.71: more than the gap
    between the bundled model's new sounds and noise bursts.)"""
    window = 8192
    files = data.scan([drumkits / "Millo-Drums_v.1", drumkits / "ColomboAcousticDrumkit"])[::2]
    shots = data.OneShots.load(files, RATE, window)
    judge = evaluate.Judge(shots.windows[0::2], RATE)
    hits = shots.windows[1::2]

    def hiss(above_hz: float, rms_db: float) -> torch.Tensor:
        noise = torch.randn(hits.shape, generator=torch.Generator().manual_seed(0))
        band = torch.fft.rfftfreq(window, 1 / RATE) > above_hz
        noise = torch.fft.irfft(torch.fft.rfft(noise) * band, n=window)
        return noise * (10 ** (rms_db / 20) / noise.pow(2).mean().sqrt())

    plain = judge.mmd2(hits)
    assert abs(judge.mmd2(hits + hiss(21000, -80)) - plain) < 1e-3
    assert judge.mmd2(hits + hiss(2000, -40)) > plain + 0.1


def test_quality_table_and_baselines_run_for_a_real_network(kit, tiny_config):
    engine = Engine.from_module(DanceDiffusionUNet(tiny_config), RATE, 2048, device="cpu")
    judge = evaluate.Judge(kit.windows[:6, :, :2048], RATE)
    rows = evaluate.quality_table(engine, judge, [("v-ddim", 2), ("v-iplms", 3)], count=3)
    name = engine.card.name  # each row names the model it rendered
    assert [r.label for r in rows] == [f"{name}: v-ddim, 2 steps", f"{name}: v-iplms, 3 steps"]
    assert all(r.seconds_per_sound > 0 and r.mmd2 == r.mmd2 and r.spread > 0 for r in rows)
    assert rows[0].change is None and rows[1].change_error > 0
    assert abs(rows[1].change - (rows[1].mmd2 - rows[0].mmd2)) < 1e-9
    assert rows[0].clicks_change is None and abs(rows[1].clicks_change - (rows[1].clicks - rows[0].clicks)) < 1e-9
    rows += evaluate.baselines(judge, engine, kit.windows[6:, :, :2048], sampler="v-ddim", steps=2, count=3)
    table = evaluate.format_table(rows)
    assert f"change: MMD^2 minus the first row's ({name}: v-ddim, 2 steps)" in table
    assert "floor" in table and "noise bursts" in table and "untrained" in table
    assert all(r.clicks >= 0 and r.clicks_error >= 0 for r in rows) and "clicks: lone spikes" in table
    assert all(r.rises >= 0 and r.rises_error >= 0 for r in rows) and "rises: dB a sound's level climbs" in table
    assert all(0 <= r.hits <= 100 for r in rows) and "2 hits" in table.splitlines()[0]


def test_jackknife_error_of_a_mean_is_the_textbook_standard_error():
    values = torch.randn(40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    error = evaluate.jackknife_error(lambda keep: float(values[keep].mean()), len(values))
    assert abs(error - float(values.std() / len(values) ** 0.5)) < 1e-9


def test_paired_difference_sees_a_small_change_that_single_rows_cannot(kit):
    judge = evaluate.Judge(kit.windows[:6], RATE)
    sounds = kit.windows[6:]
    nudged = sounds * 0.98 + 1e-5 * torch.randn(sounds.shape, generator=torch.Generator().manual_seed(2))
    assert judge.paired_difference(sounds, sounds) == (0.0, 0.0)
    difference, error = judge.paired_difference(nudged, sounds)
    own = judge.score("real", sounds).spread
    assert 0 < error < own / 3 and abs(difference) < own
    with pytest.raises(ValueError, match="same number"):
        judge.paired_difference(sounds[:4], sounds)


def test_a_memorizing_model_is_flagged_and_noise_is_not(kit, tiny_config):
    training = kit.windows[6:]
    files = kit.files[6:]
    # Straight through a sampler: the Engine's CPU fast path runs a U-Net's layers, not an overridden forward.
    noise = torch.randn((3, 2, WINDOW), generator=torch.Generator().manual_seed(0))
    copies = SAMPLERS["v-ddim"](Memorizer(tiny_config, training), noise, step_grid(8))
    report = memorization.check(copies, training, files, RATE)
    assert len(report.flagged) == 3, report.summary()
    assert report.matches[0].distance < 0.01

    bursts = evaluate.noise_bursts(kit.windows[:6], torch.Generator().manual_seed(1))
    clean = memorization.check(bursts, training, files, RATE)
    assert clean.flagged == [], clean.summary()
    assert "0 of 6 renders flagged" in clean.summary()


def test_copies_are_caught_despite_gain_shift_and_polarity(kit):
    training = kit.windows[6:]
    copy = -0.3 * torch.roll(training[2:3], 480, dims=-1)  # -10 dB, 10 ms late, inverted
    report = memorization.check(copy, training, kit.files[6:], RATE)
    assert report.flagged and report.matches[0].file == kit.files[8]
    assert report.matches[0].shift_seconds == pytest.approx(0.010, abs=256 / RATE)
    held_out = memorization.check(kit.windows[:6], training, kit.files[6:], RATE)
    assert len(held_out.flagged) <= 1  # distinct real files are (almost all) not copies of each other


def test_clicks_are_counted_in_a_decay_not_in_its_attack_its_noise_or_its_silence():
    """features.clicks, which eval prints beside MMD^2: white noise decaying like a hit has about two (a real
    one-shot about 2.5), ten 1-sample spikes 20 dB under the peak in its decay add ten, and neither a spike in the
    attack nor one in the silence after the decay (under -60 dB) counts; eval's rows carry the count."""
    rate, length = 48000, 24000
    t = torch.arange(length) / rate
    noise = torch.randn(16, 2, length, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    hits = noise * torch.exp(-t / 0.06)  # down 60 dB in 0.41 s: silence after
    hits = hits / hits.abs().amax(dim=(1, 2), keepdim=True)
    plain = features.clicks(hits, rate).double()
    assert plain.mean() < 4
    clicked = hits.clone()
    where = torch.linspace(0.2, 0.35, 10).mul(rate).long()
    clicked[:, :, where] += 0.1  # -20 dB under the peak: over the decay's own level there
    added = features.clicks(clicked, rate) - features.clicks(hits, rate)
    assert (added >= 9).all() and (added <= 10).all()
    early = hits.clone()
    early[:, :, round(0.02 * rate)] += 0.5  # in the attack, before the decay begins
    assert torch.equal(features.clicks(early, rate), features.clicks(hits, rate))
    silent = hits.clone()
    silent[:, :, round(0.48 * rate)] += 10 ** (-70 / 20)  # a trace in the silence: not a click
    assert torch.equal(features.clicks(silent, rate), features.clicks(hits, rate))
    judge = evaluate.Judge(hits[:8], rate)
    assert judge.score("clicked", clicked[8:]).clicks >= judge.score("plain", hits[8:]).clicks + 9
    # against the same sounds without them (a model against the one it replaces, on the same seeds): the paired
    # change is the ten added, with the pairing's error, far under the rows' own
    paired = judge.score("clicked", clicked[8:], baseline=hits[8:])
    assert 9 <= paired.clicks_change <= 10 and paired.clicks_change_error < paired.clicks_error


def test_eval_rows_carry_how_unevenly_the_sounds_fall():
    """A decay target once made toms whose level pumped by tens of dB on the way down, and MMD^2 ranked them
    nearest real toms (docs/guidance.md, "A tom at a note"): eval's rows carry builtin.rises beside it. Hits that
    fall evenly read about 0; the same hits pumped back up by 10 dB three times read over 10 dB more (the frames
    and their smoothing spread each jump)."""
    rate, length = 48000, 24000
    t = torch.arange(length) / rate
    noise = torch.randn(16, 2, length, generator=torch.Generator().manual_seed(4))
    hits = noise * torch.exp(-t / 0.1)
    pumped = hits * torch.where(t > 0.05, 10 ** (-10 / 20 * ((t * 8) % 1)), torch.ones_like(t))
    # and the same hits again 0.2 s later, 6 dB louder: a second hit, which rises (after the loudest) reads as even
    doubled = hits * 0.5 + F.pad(hits, (9600, 0))[..., :length]
    judge = evaluate.Judge(hits[:8], rate)
    even, pumping = judge.score("even", hits[8:]), judge.score("pumped", pumped[8:])
    twice = judge.score("twice", doubled[8:])
    assert even.rises < 2 and pumping.rises > even.rises + 10, (even.rises, pumping.rises)
    assert even.hits == pumping.hits == 0 and twice.hits == 100 and twice.rises < 2, (twice.hits, twice.rises)
    table = evaluate.format_table([even, pumping, twice])
    assert "rises" in table and "2 hits: the share of sounds with a second hit" in table


def test_real_kicks_are_as_drum_like_as_real_drums_when_judged_against_real_kicks(drumkits):
    """A class guide's renders are all of one class. Against a kit's whole mix, real kicks of other kits read far
    less drum-like than those kits' whole mix do; against the reference's kicks, they are as close as the mix is
    to the mix (Judge.paired_to_classes). The two sets are independent draws, so this is the expected change of a
    perfect kick guide: zero, within its error."""
    from bridge.training.labels import labelled

    window = 16384
    reference = labelled([drumkits / kit for kit in ("Millo_MultiLayered2", "BJA_Pacific", "VariBreaks")])
    shots = data.OneShots.load([item.path for item in reference], RATE, window)
    assert len(shots) == len(reference)
    judge = evaluate.Judge(shots.windows, RATE, labels=[item.label for item in reference])
    others = labelled([drumkits / kit for kit in ("ElectricEmpireKit", "The Black Pearl 1.0", "ForzeeStereo")])
    kicks = [item.path for item in others if item.label == "kick"]
    mix = [item.path for item in others][::len(others) // len(kicks)][:len(kicks)]  # every class, as many
    assert len(kicks) >= 12 and {"kick", "snare", "hat"} <= {item.label for item in others if item.path in mix}
    kicks, mix = (data.OneShots.load(files, RATE, window).windows for files in (kicks, mix))
    plain, plain_error = judge.paired_difference(kicks, mix)
    to_kicks, error = judge.paired_to_classes(kicks, mix, ["kick"])
    assert plain > 2 * plain_error  # by the whole mix: real kicks are "less drum-like"
    assert abs(to_kicks) < 2 * error and to_kicks < plain - 0.1
    assert judge.paired_to_classes(kicks, mix, ["triangle"]) is None  # no such sounds: no figure
    assert evaluate.Judge(shots.windows, RATE).paired_to_classes(kicks, mix, ["kick"]) is None  # unlabelled


def test_real_punchy_sounds_are_as_drum_like_as_real_drums_when_judged_against_real_sounds_as_punchy(drumkits):
    """A measure's guide moves all its renders one way, as a class guide makes them all one class. Against a kit's
    whole mix, the 16 punchiest real one-shots of four other kits read far less drum-like than as many of the same
    kits' sounds picked across them; against the reference's sounds whose punch lies where theirs does (their
    10th to 90th percentile: eval-guides' measure ruler, guides.evaluate._measure_likeness), as close as the mix
    is to the mix, within the error. So a punch guide that made real punchy drums would be judged within the bar."""
    from bridge.engine.guides.builtin import PUNCH
    from bridge.engine.guides.evaluate import _measure_likeness

    window = 16384
    kits = ("Millo_MultiLayered2", "BJA_Pacific", "VariBreaks")
    reference = data.OneShots.load(data.scan([drumkits / kit for kit in kits]), RATE, window).windows
    judge = evaluate.Judge(reference, RATE)
    others = data.OneShots.load(data.scan([drumkits / kit for kit in (
        "ElectricEmpireKit", "The Black Pearl 1.0", "ForzeeStereo", "ColomboAcousticDrumkit")]), RATE, window).windows
    punch = torch.tensor(PUNCH.value(others, RATE))
    punchy = others[punch.argsort(descending=True)[:16]]
    mix = others[torch.linspace(0, len(others) - 1, 16).long()]
    plain, plain_error = judge.paired_difference(punchy, mix)
    values = PUNCH.value(punchy, RATE)
    found = _measure_likeness(judge, PUNCH.value, mix, punchy, values, RATE)
    low, high, count = found["measure_range"]
    ordered = sorted(values)
    assert (low, high) == (ordered[2], ordered[14])  # the 10th and 90th percentiles of 16
    in_range = [low <= value <= high for value in PUNCH.value(reference, RATE)]
    assert count == sum(in_range) >= 8 and not all(in_range)
    like, error = found["measure_likeness"]
    assert plain > 2 * plain_error  # by the whole mix: real punchy drums are "less drum-like"
    assert abs(like) < 2 * error and like < plain - 0.1
    # renders gathered on one value (a target's): judged by the 8 real sounds nearest it, the range given theirs
    gathered = _measure_likeness(judge, PUNCH.value, mix, punchy, [values[0]] * 16, RATE)
    low, high, count = gathered["measure_range"]
    nearest = sorted(PUNCH.value(reference, RATE), key=lambda value: abs(value - values[0]))[:8]
    assert count == 8 and (low, high) == pytest.approx((min(nearest), max(nearest)), abs=1e-4)
    assert gathered["measure_likeness"] is not None
    assert _measure_likeness(judge, PUNCH.value, mix, punchy, values, RATE) == found  # enough in range: as before


def test_a_sound_shorter_than_the_reference_is_judged_in_the_reference_window(drumkits):
    """eval-guides renders 0.5 s sounds and judges them against one-shots in the model's 1.37 s window. The
    envelope is read at 32 points over the whole clip, so the short render was read 2.7 times earlier than the
    reference: its tail counted as still sounding where theirs had ended. Real hits cut to a third of the window
    are the same sounds (they have decayed by then) and must read as close as they do whole."""
    window = 49152
    shots = data.OneShots.load(sorted((drumkits / "rumpf_kit_z01_h2").glob("*.flac"))[::4], RATE, window)
    judge = evaluate.Judge(shots.windows[0::2], RATE)
    others = shots.windows[1::2]
    fade = torch.ones(window // 3)
    fade[-480:] = torch.linspace(1, 0, 480)  # 10 ms, as a render's end is
    short = others[..., : window // 3] * fade
    whole = judge.mmd2(others)
    assert abs(judge.mmd2(short) - whole) < 0.02  # read at its own length: 0.043 from it
    # What the envelope made of them read at their own length: 24 dB louder at each point, as if held.
    stretched = features.describe(short, RATE)[:, 128:160]
    assert (stretched - features.describe(others, RATE)[:, 128:160]).mean() > 10
    longer = torch.nn.functional.pad(others, (0, window))  # and a longer clip is cut to the reference's length
    assert judge.mmd2(longer) == pytest.approx(whole, abs=1e-9)


def test_what_a_16_bit_file_cannot_hold_does_not_move_the_features(monkeypatch):
    """A clean kick (a falling 55 Hz sine, as a render may make it: digital silence over 1 kHz) and the same kick
    over a recording's floor (white hiss 80 dB under its peak: each band and 5 ms reads about 102 dB under it, as
    the Hydrogen kits' floors do) are one sound to anybody; read down to -120 dBFS, the floor's bands stood 10 dB
    and more apart. Hiss 50 dB under the peak is heard, and moves them."""
    t = torch.arange(RATE // 2) / RATE
    kick = (0.9 * torch.sin(2 * math.pi * 55 * t) * torch.exp(-t / 0.06)).expand(4, 2, -1).clone()
    noise = torch.randn(kick.shape, generator=torch.Generator().manual_seed(0))

    def moved(hiss_db: float) -> float:
        return float((features.describe(kick + 0.9 * 10 ** (hiss_db / 20) * noise, RATE)
                      - features.describe(kick, RATE)).abs().max())

    assert moved(-80) < 0.5
    assert moved(-50) > 10
    monkeypatch.setattr(features, "RANGE_DB", 1000.0)  # as the features read before the floor
    assert moved(-80) > 10


def test_training_files_saved_twice_leave_the_check_its_threshold(kit):
    """A sample folder often holds one sound twice (a copy, another gain; a GM soundfont's kits share samples):
    each was the other's nearest file at distance 0, the threshold the 5 % quantile of those distances fell to 0
    and nothing could be flagged (16 of the bundled model's 339 training files, the GM kits' shared samples among
    them). A copy is now compared only with the files it is not a copy of: the threshold stays that of the distinct
    files and a render that copies one is still caught. A folder of one sound only is one line."""
    training = kit.windows[6:]
    distinct = memorization.check(kit.windows[:1], training, kit.files[6:], RATE)
    doubled = torch.cat([training, training[:4] * 0.5, -training[4:6]])  # 6 of 14 saved again, quieter or inverted
    files = kit.files[6:] + kit.files[6:12]
    copy = 0.7 * torch.roll(training[3:4], 240, dims=-1)
    report = memorization.check(torch.cat([kit.windows[:1], copy]), doubled, files, RATE)
    assert report.threshold == pytest.approx(distinct.threshold, rel=0.3) and report.threshold > 1e-3
    assert report.copies == 12 and "12 training files are copies of another one" in report.summary()
    assert [m.render for m in report.flagged] == [1], report.summary()
    with pytest.raises(BridgeError, match="all one sound"):
        memorization.check(copy, torch.cat([training[:1], 0.5 * training[:1]]), files[:2], RATE)
