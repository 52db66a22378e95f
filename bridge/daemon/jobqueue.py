"""The queue policy: requests waiting for the render thread, bounded twice (jobs, outputs), identical key presses
merged into one job, and a client's requests taken out again by its /dd/cancel.

The queue is part of the service's shared state (bridge.daemon.state): every call is made under its lock.
(Named jobqueue, not queue, so that it never stands in for the standard library's module.)
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Iterator

from bridge.daemon.jobs import Busy, Job, Waiter
from bridge.daemon.stats import Stats


class JobQueue:
    def __init__(self, max_jobs: int, max_outputs: int, stats: Stats):
        self.max_jobs, self.max_outputs = max_jobs, max_outputs
        self._jobs: deque[Job] = deque()
        self._stats = stats

    def add(self, job: Job) -> bool:
        """Queue ``job``, merged into an identical queued one where it can be: True when it was queued as a job of
        its own, False when merged. Busy (and nothing queued) when either bound would be passed."""
        pending = self.outputs + job.to_render
        if pending > self.max_outputs:
            self._stats.count("refused")
            raise Busy(f"busy: {pending} outputs would be waiting (limit {self.max_outputs}); "
                       "wait for them or send /dd/cancel")
        merged = next((queued for queued in self._jobs if queued.merges_with(job)), None)
        if merged is not None:
            merged.waiters += job.waiters
            merged.taken += job.taken
            self._stats.count("coalesced")
            return False
        if len(self._jobs) >= self.max_jobs:
            self._stats.count("refused")
            raise Busy(f"busy: {len(self._jobs)} requests queued (limit {self.max_jobs}); "
                       "wait for them or send /dd/cancel")
        self._jobs.append(job)
        return True

    def pop(self) -> Job | None:
        return self._jobs.popleft() if self._jobs else None

    def clear(self) -> list[Job]:
        """Empty the queue; its jobs, for their waiters to be told."""
        jobs, self._jobs = list(self._jobs), deque()
        return jobs

    def detach(self, theirs: Callable[[Waiter], bool]) -> tuple[list[Waiter], list[Job]]:
        """Take the waiters ``theirs`` picks out of every queued job (a job left with no one is dropped): those
        waiters, and the jobs they left (for a vary job's surplus prefetched variations to go back)."""
        detached, left = [], []
        for job in list(self._jobs):
            mine = [waiter for waiter in job.waiters if theirs(waiter)]
            if not mine:
                continue
            detached += mine
            left.append(job)
            job.waiters = [waiter for waiter in job.waiters if not theirs(waiter)]
            if not job.waiters:
                self._jobs.remove(job)
        return detached, left

    @property
    def outputs(self) -> int:
        """Outputs still to render over all queued jobs."""
        return sum(job.to_render for job in self._jobs)

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[Job]:
        return iter(self._jobs)
