"""Fixtures every suite shares: real drum one-shots and small architectures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bridge.engine.unet import UNetConfig

DRUMKITS = Path("/usr/share/hydrogen/data/drumkits")

# 4 levels (length multiple 8), attention on the inner two: builds in milliseconds, same code paths as the full model.
TINY = UNetConfig(channels=(32, 32, 64, 64), n_attn_layers=2)


@pytest.fixture(scope="session")
def drumkits() -> Path:
    if not DRUMKITS.is_dir():
        raise RuntimeError(f"{DRUMKITS} is missing: ./bootstrap.sh test installs hydrogen-drumkits")
    return DRUMKITS


@pytest.fixture(scope="session")
def drum_samples(drumkits) -> dict[str, Path]:
    """One real one-shot per format (wav, flac, aiff), smallest first so tests stay fast."""
    found = {}
    for suffix in ("wav", "flac", "aiff"):
        files = sorted(drumkits.rglob(f"*.{suffix}"), key=lambda p: (p.stat().st_size, str(p)))
        if not files:
            raise RuntimeError(f"no .{suffix} file under {drumkits}")
        found[suffix] = files[len(files) // 4]
    return found


@pytest.fixture
def tiny_config() -> UNetConfig:
    return TINY


@pytest.fixture(scope="module")
def one_thread():
    """Tiny networks run fastest on one thread; on a shared, busy CPU torch's extra threads spin: 10-100x slower.
    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


# For renders of whole clips: TINY's attention runs at a quarter of the input length (2048 samples for a 0.2 s
# one-shot: seconds per step on this CPU); here it sits at 1/32 and below, about 0.1 s per step for such a clip.
TINY_RENDER = UNetConfig(channels=(16, 16, 32, 32, 32, 32, 32, 32), n_attn_layers=1)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A tiny random model (TINY_RENDER, 48 kHz, window 8192) in the project's own format; the .safetensors path
    (its card tiny-test.yaml lies beside it). Any command's --model takes it."""
    from bridge.engine.checkpoints import LoadedModel, save_model
    from bridge.engine.unet import DanceDiffusionUNet

    with torch.random.fork_rng():
        torch.manual_seed(1234)
        network = DanceDiffusionUNet(TINY_RENDER)
    loaded = LoadedModel.from_network(network, name="tiny-test", sample_rate=48000, window=8192,
                                      provenance="random weights made by the tests")
    weights, _card = save_model(loaded, tmp_path_factory.mktemp("models") / "tiny-test")
    return weights


@pytest.fixture(scope="session")
def drum_loop(drum_samples, tmp_path_factory) -> Path:
    """A 3 s, 44.1 kHz stereo file of three real one-shots one second apart (wav, flac, aiff hits): what a DAW
    clip plays a region of. Each hit's first channel, cut or padded to 1 s; its right channel at half level."""
    import numpy as np
    import soundfile

    rate = 44100
    hits = []
    for path in drum_samples.values():
        data, _ = soundfile.read(path, dtype="float32", always_2d=True, frames=rate)
        hits.append(np.pad(data[:, 0], (0, rate - data.shape[0])))
    mono = np.concatenate(hits)
    path = tmp_path_factory.mktemp("loops") / "loop.wav"
    soundfile.write(path, np.stack([mono, 0.5 * mono], axis=1), rate, subtype="PCM_24")
    return path
