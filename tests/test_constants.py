"""The seed rule of bridge/constants.py, held by every layer: what is accepted, what travels, what is drawn."""

from __future__ import annotations

import pytest
import torch

from bridge.constants import MAX_SEED, RANDOM_SEEDS
from bridge.daemon.settings import validate
from bridge.engine.engine import Engine
from bridge.errors import ConfigError
from bridge.transports.osc.packet import messages
from bridge.transports.osc.protocol import parse
from bridge.transports.osc.server import build_message


@pytest.fixture(scope="module")
def engine(tiny_model_path) -> Engine:
    return Engine(tiny_model_path, device="cpu")


def test_the_engine_takes_every_seed_the_service_and_the_cli_take_and_no_other(engine):
    assert validate("seed", MAX_SEED) == MAX_SEED  # the CLI's --seed and OSC's seed= go through validate
    one = engine.generate(1, 64, steps=1, seed=MAX_SEED)
    assert torch.equal(one, engine.generate(1, 64, steps=1, seed=[MAX_SEED]))
    for seed in (MAX_SEED + 1, 2**64 - 1):  # the engine took up to 2**64 - 1: seeds no front end can give it
        with pytest.raises(ConfigError, match=f"must be in 0..{MAX_SEED}"):
            validate("seed", seed)
        with pytest.raises(ConfigError, match=f"seeds must be integers in \\[0, {MAX_SEED}\\]"):
            engine.generate(1, 64, steps=1, seed=seed)


def test_the_seeds_drawn_are_what_a_daw_shows_and_sends_back(engine):
    engine.generate(4, 64, steps=1, seed=None)
    assert all(0 <= seed < RANDOM_SEEDS <= 2**31 for seed in engine.last_seeds)
    # The largest drawn seed is an OSC int32 (Max's integers); the largest accepted one still travels, as int64.
    for seed, tag in ((RANDOM_SEEDS - 1, "i"), (MAX_SEED, "h")):
        message = messages(build_message("/dd/set", ["seed", seed]))[0]
        assert message.dgram.split(b",")[1].startswith(b"s" + tag.encode())
        assert parse(message.address, list(message.params)).value == seed
