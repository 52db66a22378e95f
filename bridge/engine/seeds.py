"""Seeds: what a request's ``seed`` means, the starting noise it draws, and the noise stochastic samplers add.

An int draws the starting noise of the whole request as diffusers does,
``torch.randn((count, 2, L), generator=torch.Generator("cpu").manual_seed(seed))``; a list draws each output as a
batch of one with its own seed, so any output can be made again alone; None picks random seeds, one per output
(below RANDOM_SEEDS: what a DAW shows and sends back). Noise that stochastic samplers add along the way comes from
CPU generators too, one per output, so results depend on neither the device nor how the request is cut into
batches. docs/architecture.md has the rule as the API states it.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import torch

from bridge.constants import MAX_SEED, RANDOM_SEEDS
from bridge.errors import ConfigError

Seed = int | Sequence[int] | None

INTERPOLATION_SEED = 0  # interpolations are reproducible: their stochastic samplers' noise comes from this
_MASK64 = 2**64 - 1


def resolve(count: int, seed: Seed) -> int | list[int]:
    """``seed`` checked against ``count`` outputs: the int itself, or one seed per output (drawn for None)."""
    if seed is None:
        return [secrets.randbelow(RANDOM_SEEDS) for _ in range(count)]
    if isinstance(seed, int) and not isinstance(seed, bool):
        _check_seed(seed)
        return seed
    if isinstance(seed, Sequence) and not isinstance(seed, str):
        seeds = list(seed)
        if len(seeds) != count:
            raise ConfigError(f"give one seed per output: {count} outputs, {len(seeds)} seeds")
        for s in seeds:
            _check_seed(s)
        return seeds
    raise ConfigError(f"seed must be an integer, a list of integers or None, got {seed!r}")


def starting_noise(count: int, length: int, seeds: int | list[int]) -> torch.Tensor:
    """[count, 2, length] standard normal noise on the CPU, drawn as the seeds say."""
    if isinstance(seeds, int):
        return torch.randn((count, 2, length), generator=torch.Generator("cpu").manual_seed(seeds))
    return torch.cat([torch.randn((1, 2, length), generator=torch.Generator("cpu").manual_seed(s))
                      for s in seeds])


class NoiseSampler:
    """Standard normal noise for stochastic samplers: one CPU generator per output, so neither the device nor the
    batching changes it."""

    def __init__(self, seeds: list[int], like: torch.Tensor):
        self.generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        self.shape, self.device = (1, *like.shape[1:]), like.device

    def __call__(self, t: float, t_next: float) -> torch.Tensor:
        return torch.cat([torch.randn(self.shape, generator=g) for g in self.generators]).to(self.device)


def noise_seeds(seeds: Seed, rows: slice) -> list[int] | None:
    """Seeds for the noise added while sampling, one per output: derived from, and independent of, the seed of
    its starting noise. Output i of an int seed S and output 0 of a seed list [S] share theirs (count 1 = list)."""
    if seeds is None:
        return None
    if isinstance(seeds, int):
        pairs = [(seeds, i) for i in range(rows.start, rows.stop)]
    else:
        pairs = [(s, 0) for s in seeds[rows]]
    return [_mix(seed, index) for seed, index in pairs]


def series(base: int, count: int, start: int = 0) -> list[int]:
    """Seeds base+start, base+start+1, ... (wrapping within the seeds a render accepts): one per output of a sheet or
    a pack, each output made again alone by ``--seed S --count 1``."""
    return [(base + start + i) % (MAX_SEED + 1) for i in range(count)]


def _mix(seed: int, index: int) -> int:
    # splitmix64's finaliser: nearby (seed, index) pairs give unrelated generator streams.
    z = (seed * 0x9E3779B97F4A7C15 + (index + 1) * 0xD1B54A32D192ED03) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seeds must be integers in [0, {MAX_SEED}], got {seed!r}")
