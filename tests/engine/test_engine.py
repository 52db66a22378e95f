"""The Engine on a tiny random network: the seed rule, the noise knob, batching, padding, progress and cancel."""

from __future__ import annotations

import pytest
import torch

from bridge.engine.audio import read_audio, to_model
from bridge.engine.checkpoints import LoadedModel, load_model, save_model
from bridge.engine.engine import Engine
from bridge.engine.samplers import SAMPLERS
from bridge.engine.schedules import alpha_sigma, karras_grid, step_grid
from bridge.engine.unet import DanceDiffusionUNet
from bridge.errors import Cancelled, ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")

RATE, WINDOW = 48000, 64
STEPS = 6


@pytest.fixture(scope="module")
def unet():
    from tests.conftest import TINY

    torch.manual_seed(3)
    return DanceDiffusionUNet(TINY).eval()


@pytest.fixture(scope="module")
def engine(unet):
    return Engine.from_module(unet, RATE, WINDOW, name="tiny")


@pytest.fixture
def clip():
    return torch.randn(2, 50, generator=torch.Generator().manual_seed(9)) * 0.3


class Recording:
    """Wraps the engine's network to see what the samplers ask of it."""

    def __init__(self, engine):
        self.engine, self.network, self.calls = engine, engine.network, []

    def __enter__(self):
        def network(x, t):
            self.calls.append((x.clone(), t.clone()))
            return self.network(x, t)

        self.engine.network = network
        return self

    def __exit__(self, *exc):
        self.engine.network = self.network


def test_properties(engine, unet):
    assert (engine.sample_rate, engine.window, engine.precision, engine.backend) == (RATE, WINDOW, "fp32", "torch")
    assert engine.device == torch.device("cpu")
    assert engine.card.name == "tiny" and engine.card.architecture == unet.config
    assert len(engine.model_hash) == 64


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_generate_follows_the_batch_seed_rule(engine, sampler):
    out = engine.generate(2, 50, steps=STEPS, sampler=sampler, seed=7)
    assert out.shape == (2, 2, 50) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert out.abs().max() <= 1 and out.std() > 0.05
    # The rule: diffusers' batch draw at the padded length, sampled from t = 1 to 0, trimmed and clamped.
    noise = torch.randn((2, 2, engine.padded_length(50)), generator=torch.Generator("cpu").manual_seed(7))
    if sampler in ("v-iplms", "v-ddim", "dpmpp-2m", "euler", "heun"):  # deterministic given the starting noise
        expected = SAMPLERS[sampler](engine.network, noise, step_grid(STEPS)).clamp(-1, 1)[..., :50]
        assert torch.allclose(out, expected, atol=1e-6)
    assert not torch.allclose(out, engine.generate(2, 50, steps=STEPS, sampler=sampler, seed=8))
    assert torch.equal(out, engine.generate(2, 50, steps=STEPS, sampler=sampler, seed=7))
    assert engine.last_seeds == 7


@pytest.mark.parametrize("operation", ["generate", "vary"])
def test_a_karras_sampler_walks_the_karras_grid(engine, clip, operation):
    """dpmpp-2m-sde-karras: the network is asked at the Karras grid's times (the crash grid's for dpmpp-2m-sde),
    and the two differ only there: the same seed gives other sounds."""
    render = (lambda s: engine.generate(1, 50, steps=STEPS, sampler=s, seed=4)) if operation == "generate" else \
        (lambda s: engine.vary(clip, 1, noise=0.6, steps=STEPS, sampler=s, seed=4))
    noise = 1.0 if operation == "generate" else 0.6
    for sampler, ts in (("dpmpp-2m-sde-karras", karras_grid(STEPS, noise)), ("dpmpp-2m-sde", step_grid(STEPS, noise))):
        with Recording(engine) as recording:
            render(sampler)
        asked = torch.stack([t[0] for _, t in recording.calls]).double()
        assert torch.allclose(asked, ts[:-1], rtol=0, atol=1e-6), sampler
    assert not torch.allclose(render("dpmpp-2m-sde-karras"), render("dpmpp-2m-sde"))


@pytest.mark.parametrize("sampler", ["v-iplms", "dpmpp-2m-sde"])
def test_each_output_of_a_seed_list_is_its_own_single_render(engine, sampler):
    many = engine.generate(3, 40, steps=STEPS, sampler=sampler, seed=[11, 12, 13])
    for seed, out in zip([11, 12, 13], many):
        single = engine.generate(1, 40, steps=STEPS, sampler=sampler, seed=seed)
        assert torch.allclose(single[0], out, atol=1e-6)
        assert torch.equal(single, engine.generate(1, 40, steps=STEPS, sampler=sampler, seed=[seed]))
    assert len({tuple(out.flatten()[:8].tolist()) for out in many}) == 3


def test_no_seed_picks_random_seeds_that_recreate_the_outputs(engine):
    first = engine.generate(2, 40, steps=STEPS, sampler="dpmpp-2m-sde", seed=None)
    seeds = engine.last_seeds
    assert isinstance(seeds, list) and len(seeds) == 2 and all(0 <= s < 2**31 for s in seeds)
    assert torch.allclose(first, engine.generate(2, 40, steps=STEPS, sampler="dpmpp-2m-sde", seed=seeds), atol=1e-6)
    engine.generate(2, 40, steps=STEPS, sampler="dpmpp-2m-sde", seed=None)
    assert engine.last_seeds != seeds


@pytest.mark.parametrize("sampler", ["dpmpp-2m-sde", "v-ddim"])
def test_batching_does_not_change_results(unet, sampler):
    options = {"eta": 0.5} if sampler == "v-ddim" else {}
    one = Engine.from_module(unet, RATE, WINDOW, max_batch=1).generate(5, 40, steps=STEPS, sampler=sampler,
                                                                      seed=21, **options)
    three = Engine.from_module(unet, RATE, WINDOW, max_batch=3).generate(5, 40, steps=STEPS, sampler=sampler,
                                                                        seed=21, **options)
    assert torch.allclose(one, three, atol=1e-5)


def test_cpu_runs_one_output_at_a_time_unless_told(engine, unet):
    assert engine.batch_size(WINDOW) == 1
    assert Engine.from_module(unet, RATE, WINDOW, max_batch=4).batch_size(WINDOW) == 4


def test_lengths_pad_to_the_multiple_and_trim_back(engine, clip):
    multiple = engine.length_multiple
    assert engine.padded_length(50) == 56 and engine.padded_length(56) == 56 and engine.padded_length(1) == 3 * multiple
    with Recording(engine) as recording:
        short = engine.generate(1, 50, steps=STEPS, seed=1)
    assert {x.shape[-1] for x, _ in recording.calls} == {56}
    assert torch.equal(short, engine.generate(1, 56, steps=STEPS, seed=1)[..., :50])
    assert engine.vary(clip[:, :13], 2, noise=0.5, steps=STEPS, seed=2).shape == (2, 2, 13)
    assert engine.generate(1, steps=STEPS, seed=1).shape == (1, 2, WINDOW)


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_vary_starts_at_exactly_the_noise_level(engine, clip, sampler):
    noise = 0.4
    with Recording(engine) as recording:
        engine.vary(clip, 2, noise=noise, steps=STEPS, sampler=sampler, seed=5)
    x, t = recording.calls[0]  # the first output: on a CPU the engine runs one at a time
    assert torch.allclose(t, torch.full((1,), noise), rtol=0, atol=1e-7)
    alpha, sigma = alpha_sigma(torch.tensor(noise))
    padded = torch.nn.functional.pad(clip, (0, 6))
    drawn = torch.randn((2, 2, 56), generator=torch.Generator("cpu").manual_seed(5))
    assert torch.allclose(x, (alpha * padded + sigma * drawn).float()[:1], atol=1e-5)
    assert all(t.max() <= noise + 1e-7 for _, t in recording.calls)


def test_noise_zero_returns_the_clip(engine, clip):
    with Recording(engine) as recording:
        out = engine.vary(clip, 3, noise=0, steps=STEPS, seed=1)
    assert not recording.calls
    assert torch.equal(out, clip.expand(3, -1, -1))


def test_noise_level_is_monotone_in_how_far_a_drum_moves(engine, drum_samples):
    drum = to_model(read_audio(drum_samples["wav"]), RATE)[:, :800]
    distances = []
    for noise in (0.05, 0.3, 0.6, 0.95):
        out = engine.vary(drum, 2, noise=noise, steps=5, sampler="dpmpp-2m", seed=4)
        distances.append((out - drum).pow(2).mean().sqrt().item())
    assert distances == sorted(distances), distances
    assert distances[0] < 0.2 * distances[-1], distances


def test_progress_counts_every_step_of_every_batch(unet):
    engine = Engine.from_module(unet, RATE, WINDOW, max_batch=2)
    seen = []
    engine.generate(3, 40, steps=STEPS, seed=1, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 2 * STEPS) for i in range(1, 2 * STEPS + 1)]


def test_cancel_stops_between_steps(engine):
    seen = []
    with Recording(engine) as recording, pytest.raises(Cancelled):
        engine.generate(2, 40, steps=STEPS, seed=1, progress=lambda done, total: seen.append(done),
                        cancel=lambda: len(seen) >= 2)
    assert seen == [1, 2] and len(recording.calls) == 2
    with Recording(engine) as recording, pytest.raises(Cancelled):
        engine.vary(torch.zeros(2, 40), 1, noise=0.5, steps=STEPS, cancel=lambda: True)
    assert not recording.calls
    seen.clear()
    finished = engine.generate(1, 40, steps=STEPS, seed=1, progress=lambda done, total: seen.append(done),
                               cancel=lambda: len(seen) >= STEPS)
    assert finished.shape == (1, 2, 40)


def test_interpolate_goes_from_a_to_b(engine, clip):
    b = torch.randn(2, 50, generator=torch.Generator().manual_seed(10)) * 0.3
    out = engine.interpolate(clip, b, 3, steps=30, sampler="v-iplms")
    assert out.shape == (3, 2, 50) and out.dtype == torch.float32
    to_a = [(y - clip).abs().mean().item() for y in out]
    to_b = [(y - b).abs().mean().item() for y in out]
    apart = (b - clip).abs().mean().item()
    assert to_a[0] < 0.05 * apart and to_b[-1] < 0.05 * apart, (to_a, to_b, apart)
    assert to_a == sorted(to_a) and to_b == sorted(to_b, reverse=True)
    assert torch.equal(out, engine.interpolate(clip, b, 3, steps=30, sampler="v-iplms"))
    sde = engine.interpolate(clip, b, 3, steps=8, sampler="dpmpp-2m-sde")
    assert torch.equal(sde, engine.interpolate(clip, b, 3, steps=8, sampler="dpmpp-2m-sde"))


def test_interpolate_reports_progress_and_cancels(engine, clip):
    seen = []
    engine.interpolate(clip, clip.flip(-1), 3, steps=4, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (3 * 5, 3 * 5)  # reverse a, reverse b, then three outputs, one at a time on the CPU
    with pytest.raises(Cancelled):
        engine.interpolate(clip, clip, 3, steps=4, cancel=lambda: True)


def test_bf16_precision_runs_close_to_fp32(unet):
    fp32 = Engine.from_module(unet, RATE, WINDOW).generate(1, 40, steps=STEPS, seed=3)
    bf16 = Engine.from_module(unet, RATE, WINDOW, precision="bf16").generate(1, 40, steps=STEPS, seed=3)
    assert torch.isfinite(bf16).all() and not torch.equal(fp32, bf16)
    assert (fp32 - bf16).abs().mean() < 0.05


def test_engine_from_a_saved_model(unet, tmp_path):
    loaded = LoadedModel.from_network(unet, name="tiny-saved", sample_rate=44100, window=128)
    weights, _card = save_model(loaded, tmp_path / "tiny-saved")
    engine = Engine(load_model(weights), device="cpu")
    assert (engine.sample_rate, engine.window, engine.model_hash) == (44100, 128, loaded.sha256)
    from_path = Engine(weights, device="cpu").generate(1, 40, steps=STEPS, seed=2)
    in_memory = Engine.from_module(unet, 44100, 128).generate(1, 40, steps=STEPS, seed=2)
    assert torch.equal(from_path, in_memory)


@pytest.mark.parametrize("call, fragment", [
    (lambda e, c: e.generate(0, 40, steps=2), "count"),
    (lambda e, c: e.generate(1, 0, steps=2), "length"),
    (lambda e, c: e.generate(1, 40, steps=0), "steps"),
    (lambda e, c: e.generate(1, 40, steps=2, sampler="ddpm"), "sampler must be one of"),
    (lambda e, c: e.generate(1, 40, steps=2, sampler="euler", eta=1.0), "euler takes the options"),
    (lambda e, c: e.generate(1, 40, steps=2, sampler="v-ddim", eta=2.0), "eta"),
    (lambda e, c: e.generate(2, 40, steps=2, seed=[1]), "one seed per output"),
    (lambda e, c: e.generate(1, 40, steps=2, seed="7"), "seed"),
    (lambda e, c: e.generate(1, 40, steps=2, seed=-1), "seeds"),
    (lambda e, c: e.vary(c, 1, noise=1.5, steps=2), "noise"),
    (lambda e, c: e.vary(c[0], 1, noise=0.5, steps=2), "stereo"),
    (lambda e, c: e.vary(c * float("nan"), 1, noise=0.5, steps=2), "NaN"),
    (lambda e, c: e.interpolate(c, c[:, :10], 3, steps=2), "same length"),
    (lambda e, c: e.interpolate(c, c, 1, steps=2), "at least 2"),
    (lambda e, c: e.interpolate(c, c, 2, steps=1), "steps"),
])
def test_bad_requests_are_one_line_config_errors(engine, clip, call, fragment):
    with pytest.raises(ConfigError) as excinfo:
        call(engine, clip)
    assert fragment in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_bad_engine_settings(unet):
    for kwargs, fragment in (({"device": "tpu"}, "device"), ({"precision": "fp8"}, "precision"),
                             ({"max_batch": 0}, "max_batch")):
        with pytest.raises(ConfigError, match=fragment):
            Engine.from_module(unet, RATE, WINDOW, **kwargs)
