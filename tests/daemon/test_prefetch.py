"""The prefetch cache on its own: keys, bounds, seeds, and what it hands back for discarding."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bridge.daemon.prefetch import PrefetchCache, RenderKey, Source, Variation
from bridge.engine.audio import Clip
from bridge.engine.regions import Region
from bridge.errors import AudioError

KEY = RenderKey(noise=0.5, steps=10, sampler="v-iplms", seed=None)


def source(name: str) -> Source:
    return Source(f"/clips/{name}.wav", 100, 1)


def variation(seed: int) -> Variation:
    return Variation(Clip(np.zeros((4, 1)), 48000), seed, 0.1, None)


def test_another_key_replaces_the_entry_and_hands_back_its_variations():
    cache = PrefetchCache(max_clips=4)
    cache.entry(source("a"), KEY).ready.extend([variation(1), variation(2)])
    assert [v.seed for v in cache.take(source("a"), KEY, 1)] == [1]
    assert cache.take(source("a"), RenderKey(0.6, 10, "v-iplms", None), 1) == []  # other settings: nothing
    cache.entry(source("a"), RenderKey(0.6, 10, "v-iplms", None))
    assert [v.seed for v in cache.take_dropped()] == [2] and cache.counts() == {"/clips/a.wav": 0}


def test_clips_are_bounded_least_recently_used_first():
    cache = PrefetchCache(max_clips=2)
    for name in "abc":
        cache.entry(source(name), KEY).ready.append(variation(ord(name)))
    assert list(cache.counts()) == ["/clips/b.wav", "/clips/c.wav"]
    assert [v.seed for v in cache.take_dropped()] == [ord("a")]
    cache.drop_variations()
    assert len(cache) == 0 and len(cache.take_dropped()) == 2


def test_another_region_of_the_same_file_drops_the_old_prefetch():
    cache = PrefetchCache(max_clips=4)
    first = Source("/clips/loop.wav", 100, 1, Region(1.0, 1.2))
    cache.entry(first, KEY).ready.extend([variation(1), variation(2)])
    cache.entry(source("other"), KEY).ready.append(variation(3))
    second = Source("/clips/loop.wav", 100, 1, Region(2.0, 2.2))
    assert cache.take(second, KEY, 1) == []  # another region's variations are never served
    cache.entry(second, KEY)
    assert sorted(v.seed for v in cache.take_dropped()) == [1, 2]
    assert cache.counts() == {"/clips/other.wav": 1, "/clips/loop.wav": 0}  # other files keep theirs


def test_seeds_are_consecutive_from_a_set_seed_and_random_otherwise():
    cache = PrefetchCache(max_clips=2)
    fixed = cache.entry(source("a"), RenderKey(0.5, 10, "v-iplms", 40))
    assert fixed.seeds(3) == [40, 41, 42] and fixed.seeds(1) == [43]
    random = cache.entry(source("b"), KEY).seeds(8)
    assert len(set(random)) == 8 and all(0 <= s < 2**31 for s in random)


def test_a_source_is_the_file_as_it_is_now(tmp_path):
    path = tmp_path / "kick.wav"
    path.write_bytes(b"RIFF....")
    before = Source.of(str(path))
    path.write_bytes(b"RIFF.....")
    assert Source.of(str(path)) != before  # edited since: its prefetch is not served
    with pytest.raises(AudioError, match="give the full path"):
        Source.of("kick.wav")


def sized(seed: int, frames: int) -> Variation:
    return Variation(Clip(np.zeros((frames, 2)), 48000), seed, 0.1, None)


def test_the_cache_is_bounded_in_bytes_older_clips_first():
    each = 1000 * 2 * 4  # a variation is as large as its decoded source
    cache = PrefetchCache(max_clips=4, max_bytes=6 * each)
    old = cache.entry(source("old"), KEY)
    old.clip = sized(0, 1000).clip
    old.ready.append(sized(1, 1000))
    new = cache.entry(source("new"), KEY)
    new.clip = sized(0, 1000).clip
    assert cache.nbytes() == 3 * each
    assert cache.room(source("new"), 3) == 3  # fits beside the old clip
    assert cache.room(source("new"), 5) == 5 and cache.counts() == {"/clips/new.wav": 0}  # the old one made room
    assert [v.seed for v in cache.take_dropped()] == [1]
    new.ready.extend(sized(s, 1000) for s in range(5))
    assert cache.room(source("new"), 2) == 0 and cache.nbytes() == 6 * each
    assert cache.fits(sized(0, 3000).clip) and not cache.fits(sized(0, 3001).clip)


def test_a_file_replaced_with_the_same_size_and_time_is_another_source(tmp_path):
    path, other = tmp_path / "kick.wav", tmp_path / "other.wav"
    path.write_bytes(b"RIFF1234")
    other.write_bytes(b"RIFF5678")
    before = Source.of(str(path))
    os.utime(other, ns=(before.mtime_ns, before.mtime_ns))
    os.replace(other, path)
    assert Source.of(str(path)) != before
