"""The queue policy on its own: both bounds, which presses merge, and what a client's /dd/cancel takes out."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge import constants
from bridge.daemon import requests as rq
from bridge.daemon.jobqueue import JobQueue
from bridge.daemon.jobs import Busy, GenerateJob, VaryJob, Waiter
from bridge.daemon.prefetch import RenderKey, Source
from bridge.daemon.stats import Stats

KEY = RenderKey(noise=0.5, steps=10, sampler="v-iplms", seed=None)
FOLDER = Path("/samples")


class Client:
    """A reply function as the OSC transport makes them: it knows its sender and records what it is told."""

    def __init__(self, sender):
        self.sender, self.heard = sender, []

    def __call__(self, *message):
        self.heard.append(message)


def press(client, count=1, path="/clips/kick.wav", seed=None) -> VaryJob:
    return VaryJob(waiters=[Waiter(client, rq.Vary(), count)], source=Source(path, 100, 1), key=KEY, seed=seed,
                   folder=FOLDER)


def test_identical_presses_merge_and_others_queue_on_their_own():
    stats, a = Stats(), Client(("127.0.0.1", 1))
    queue = JobQueue(max_jobs=8, max_outputs=100, stats=stats)
    assert queue.add(press(a)) is True
    assert queue.add(press(a, 2)) is False  # the same clip, settings, folder, format: one job, two waiters
    assert queue.add(press(a, seed=7)) is True  # its own seed: its own files
    assert queue.add(press(a, path="/clips/snare.wav")) is True
    generate = GenerateJob(waiters=[Waiter(a, rq.Generate(), 1)], key=KEY, folder=FOLDER)
    assert queue.add(generate) is True and generate.merges_with(generate) is False
    assert len(queue) == 4 and queue.outputs == 3 + 1 + 1 + 1
    assert stats.snapshot()["counters"] == {"coalesced": 1}
    # A merged job never holds more than one request may ask for.
    assert queue.add(press(a, constants.MAX_COUNT - 3)) is False
    assert queue.add(press(a, 1)) is True


@pytest.mark.parametrize("bound", ["jobs", "outputs"])
def test_either_bound_refuses_with_busy_and_queues_nothing(bound):
    stats, a = Stats(), Client(None)
    queue = JobQueue(max_jobs=2 if bound == "jobs" else 100, max_outputs=100 if bound == "jobs" else 5, stats=stats)
    queue.add(press(a, 2, path="/clips/a.wav"))
    queue.add(press(a, 2, path="/clips/b.wav"))
    with pytest.raises(Busy, match=f"busy: .*limit {2 if bound == 'jobs' else 5}"):
        queue.add(press(a, 2, path="/clips/c.wav"))
    assert len(queue) == 2 and stats.snapshot()["counters"] == {"refused": 1}


def test_detach_takes_out_one_clients_waiters_and_drops_the_jobs_left_empty():
    a, b = Client(("127.0.0.1", 1)), Client(("127.0.0.1", 2))
    queue = JobQueue(max_jobs=8, max_outputs=100, stats=Stats())
    shared, alone, theirs = press(a), press(b, seed=3), press(a, seed=4)
    for job in (shared, press(b), alone, theirs):
        queue.add(job)  # b's plain press merges into a's
    detached, left = queue.detach(lambda waiter: waiter.client == b.sender)
    assert [waiter.reply for waiter in detached] == [b, b] and left == [shared, alone]
    assert list(queue) == [shared, theirs] and [waiter.reply for waiter in shared.waiters] == [a]
    assert queue.clear() == [shared, theirs] and len(queue) == 0
