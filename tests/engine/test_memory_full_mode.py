"""The memory plan knows the guide mode: a full-mode guide (a backward pass through the U-Net at every guided
step, what --guide-mode auto picks on CUDA) takes several times the memory per output that inference does, so
check_length refuses a clip it cannot hold in one line before any work, and the batch shrinks (the GPU review,
/work/s43, finding 4: such renders died with torch.cuda.OutOfMemoryError mid-render)."""

from __future__ import annotations

import pytest
import torch

from bridge.engine import clips, memory
from bridge.engine.checkpoints import load_model
from bridge.engine.engine import Engine, batch_size, full_guidance
from bridge.engine.guidance import LossGuide
from bridge.engine.guides.builtin import BRIGHTNESS
from bridge.engine.guides.registry import GuideContext
from bridge.engine.unet import DanceDiffusionUNet
from bridge.errors import ConfigError
from tests.conftest import TINY

pytestmark = pytest.mark.usefixtures("one_thread")

RATE, WINDOW = 48000, 64
LENGTH = 256


def loudness(audio):
    return audio.pow(2).mean(dim=(1, 2))


def guide(full: bool, weight: float = 1.0) -> LossGuide:
    return LossGuide(loudness, weight, full=full, name="quieter")


@pytest.fixture(scope="module")
def engine():
    torch.manual_seed(3)
    return Engine.from_module(DanceDiffusionUNet(TINY).eval(), RATE, WINDOW, name="tiny")


@pytest.fixture(scope="module")
def bundled():
    return Engine(load_model("dd-drums-small"), device="cpu")


def test_only_an_acting_full_mode_guide_counts_as_full_guidance():
    assert full_guidance([guide(True)])
    assert full_guidance([guide(False), guide(True)])
    assert not full_guidance([])
    assert not full_guidance([guide(False)])
    assert not full_guidance([guide(True, weight=0)])  # 0 is off: it never acts, no backward pass
    assert full_guidance([BRIGHTNESS.make(1.0, None, GuideContext(RATE), full=True)])
    assert not full_guidance([BRIGHTNESS.make(1.0, None, GuideContext(RATE), full=False)])


def test_the_full_mode_asks_more_memory_per_sample_than_inference():
    for channels in (TINY.channels, (8, 16, 32, 32, 64, 64) + (96,) * 8, (128, 128, 256, 256) + (512,) * 10):
        plain, full = memory.bytes_per_sample(channels), memory.bytes_per_sample(channels, full=True)
        assert plain == memory.FLOAT_BYTES * (memory.FIXED_CHANNELS + memory.ACTIVATION_FACTOR *
                                              sum(c / 2 ** level for level, c in enumerate(channels)))
        assert full > 6 * plain
    # Peak resident memory of one full-mode call measured on the CPU (memory's docstring): the bundled model
    # 7917 bytes per sample at most, the full model 60693; the estimate holds both with room to spare.
    assert memory.bytes_per_sample((8, 16, 32, 32, 64, 64) + (96,) * 8, full=True) > 1.15 * 7917
    assert memory.bytes_per_sample((128, 128, 256, 256) + (512,) * 10, full=True) > 1.3 * 60693


def test_on_a_gpu_the_full_mode_plans_more_memory_and_a_smaller_batch(bundled, monkeypatch):
    """The bundled model's plan as a GPU would make it (the plan only: nothing runs): a new sound at the window,
    as clips.generate_clips renders it (lead-in and margin), 4 outputs."""
    monkeypatch.setattr(bundled, "_device", torch.device("cuda"))
    length = clips.LEAD_IN + bundled.window + clips.EDGE_MARGIN
    assert bundled.padded_length(length) == 40960
    assert bundled.batch_size(length) == 12  # unchanged: GPU_BATCH_SAMPLES // 40960
    assert bundled.batch_size(length, full=True) == 1
    plain, full = bundled.memory_needed(length, 4), bundled.memory_needed(length, 4, full=True)
    channels = bundled.card.architecture.channels
    assert plain[0] == int(4 * 40960 * memory.bytes_per_sample(channels))  # unchanged
    assert full[0] == int(1 * 40960 * memory.bytes_per_sample(channels, full=True))
    assert full[0] > plain[0] and full[1] == plain[1]  # the host keeps the outputs, whatever the mode
    # A batch in the full mode holds no more than the unguided batch planned for (the same GPU_BATCH_SAMPLES).
    short = bundled.length_multiple * 3
    assert batch_size(torch.device("cuda"), short) == 21
    assert 1 < bundled.batch_size(short, full=True) < 21
    assert (bundled.batch_size(short, full=True) * memory.bytes_per_sample(channels, full=True)
            <= 21 * memory.bytes_per_sample(channels))
    assert batch_size(torch.device("cpu"), short, share=0.1) == 1


def test_a_given_max_batch_shrinks_in_the_full_mode_only(engine):
    batched = Engine.from_module(engine._module, RATE, WINDOW, max_batch=8)
    assert batched.batch_size(LENGTH) == 8
    assert batched.batch_size(LENGTH, full=True) == 1  # TINY: 12 times the memory per output
    assert engine.batch_size(LENGTH) == engine.batch_size(LENGTH, full=True) == 1  # the CPU's rule


@pytest.fixture
def room_for_unguided_only(engine, monkeypatch):
    """The memory free: twice what an unguided LENGTH needs, less than a full-mode one."""
    per_sample = sum(engine.memory_needed(engine.length_multiple * 1024, 1)) / (engine.length_multiple * 1024)
    free = int(2 * LENGTH * per_sample / memory.USABLE_FRACTION)
    monkeypatch.setattr(memory, "host_free_bytes", lambda: free)
    assert engine.longest_length() >= 2 * LENGTH - engine.length_multiple
    assert engine.longest_length(full=True) < LENGTH
    return free


def test_a_clip_that_fits_unguided_but_not_in_the_full_mode_is_refused_in_one_line(engine, room_for_unguided_only):
    steps = []
    counted = lambda done, total: steps.append(done)  # noqa: E731
    for call in (lambda: engine.generate(1, LENGTH, steps=3, sampler="v-ddim", seed=1, guides=[guide(True)],
                                         progress=counted),
                 lambda: engine.vary(torch.zeros(2, LENGTH), 1, noise=0.5, steps=3, sampler="v-ddim", seed=1,
                                     guides=[guide(False), guide(True)], progress=counted),
                 lambda: engine.check_length(LENGTH, full=True)):
        with pytest.raises(ConfigError) as caught:
            call()
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith(f"{LENGTH / RATE:.1f} s at {RATE} Hz is longer than tiny can render on cpu in the "
                                  "full guide mode")
        assert "--guide-mode cheap: up to" in message
    assert steps == []  # refused before any work
    engine.check_length(LENGTH)  # the same clip, unguided or cheap: fits, and renders
    for guides in ([], [guide(False)], [guide(True, weight=0)]):
        out = engine.generate(1, LENGTH, steps=2, sampler="v-ddim", seed=1, guides=guides)
        assert out.shape == (1, 2, LENGTH)


def test_unguided_and_cheap_mode_messages_are_unchanged(engine, monkeypatch):
    monkeypatch.setattr(memory, "host_free_bytes", lambda: 1 << 20)
    with pytest.raises(ConfigError) as caught:
        engine.generate(1, 8192, steps=2, sampler="v-ddim", seed=1, guides=[guide(False)])
    message = str(caught.value)
    assert "guide mode" not in message and "--guide-mode" not in message
    assert message.startswith(f"{8192 / RATE:.1f} s at {RATE} Hz is longer than tiny can render on cpu with the "
                              "memory free now (0.0 GiB): the longest is")


def test_the_full_mode_runs_in_smaller_batches_with_the_same_results(engine):
    """max_batch 4: an unguided or cheap render of 4 runs as one batch, a full-mode one output at a time; the
    outputs are those of a render one at a time either way (the seed rule)."""
    batched = Engine.from_module(engine._module, RATE, WINDOW, max_batch=4)
    single = Engine.from_module(engine._module, RATE, WINDOW, max_batch=1)
    for guides, batches in (([], 1), ([guide(False)], 1), ([guide(True)], 4)):
        totals = set()
        out = batched.generate(4, 64, steps=2, sampler="v-ddim", seed=5, guides=guides,
                               progress=lambda done, total: totals.add(total))
        assert totals == {2 * batches}
        one = single.generate(4, 64, steps=2, sampler="v-ddim", seed=5, guides=guides)
        assert torch.allclose(out, one, atol=1e-5)


def test_interpolate_counts_the_full_modes_batches(engine):
    batched = Engine.from_module(engine._module, RATE, WINDOW, max_batch=4)
    a, b = torch.zeros(2, 64), torch.full((2, 64), 0.1)
    totals, done = set(), []

    def progress(step, total):
        totals.add(total)
        done.append(step)
    batched.interpolate(a, b, 3, steps=3, sampler="v-ddim", guides=[guide(True)], progress=progress)
    assert totals == {len(done)}  # every step of every batch counted, none over the total
