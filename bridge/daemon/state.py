"""What the front-end threads and the render thread share, and the one lock that guards it.

Every field of ``State`` is read and written under ``State.lock`` (a condition on a re-entrant lock: the render
thread waits on it for work), with two exceptions written down where they are: ``renderer`` is replaced by the
render thread alone, so that thread reads it without the lock; ``stopping`` only ever goes from False to True, and
the cancel hook polls it between sampler steps without the lock. The methods below are called with the lock held,
except the two that say they take it.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from bridge import constants
from bridge.daemon.config import Config
from bridge.daemon.jobqueue import JobQueue
from bridge.daemon.jobs import Job, ModelJob, PrefetchJob, VaryJob, Waiter
from bridge.daemon.prefetch import PrefetchCache, RenderKey, Source
from bridge.daemon.settings import Settings
from bridge.daemon.stats import Stats
from bridge.daemon.writer import discard
from bridge.engine.tempo import Bars, loop_label
from bridge.errors import BridgeError, ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from bridge.daemon.renderer import Renderer
    from bridge.daemon.steering import Guides


class State:
    def __init__(self, config: Config, renderer: Renderer, folder: Path, stats: Stats):
        self.lock = threading.Condition(threading.RLock())
        self.renderer = renderer
        self.settings: Settings = config.render  # replaced as a whole on every /dd/set
        self.folder = folder  # where results go unless a request names its own folder
        self.cache = PrefetchCache(config.prefetch_clips, int(config.prefetch_memory_mb * 2**20))
        self.queue = JobQueue(config.max_queue, config.max_pending, stats)
        self.running: Job | None = None  # what the render thread is rendering
        self.selected: Source | None = None
        self.select_waiter: Waiter | None = None  # who selected: hears the prefetch's progress and failure
        self.selected_loop: tuple[bool, Bars | None] = (False, None)  # /dd/select's loop=, bars= at bpm=
        self.prefetch_paused = False  # by /dd/cancel, until the next /dd/select or /dd/set
        self.stopping = False
        self.next_generate_seed: int | None = None  # with a seed setting: generate's seeds run on from it
        self.guides: Guides = ()  # the settings' guide and recipe, read and checked (bridge.daemon.steering)
        self._stats = stats

    def render_key(self, noise: float | None = None, steps: int | None = None,
                   sampler: str | None = None, guides: Guides | None = None, *,
                   kind: str = constants.OTHER) -> RenderKey:
        """The settings a render uses: a request's own where it gives them, the current ones otherwise; the sampler
        as rendered (auto: the one for the render's `kind`, constants.sampler_for), which its files name."""
        if sampler is not None:
            self.check_sampler(sampler)
        s = self.settings
        chosen = constants.sampler_for(first(sampler, s.sampler), kind=kind)
        return RenderKey(first(noise, s.noise), first(steps, s.steps), chosen, s.seed,
                         guides=first(guides, self.guides))

    def prefetch_key(self) -> RenderKey:
        """The settings prefetch renders the selected clip at: the current ones, as loops when it was selected as
        one (a press of it without loop= takes the same, bridge.daemon.service.looped)."""
        loop, bars = self.selected_loop
        return replace(self.render_key(kind=constants.vary_kind(loop)), loop=loop, bars=bars)

    def check_sampler(self, name: str) -> None:
        known = self.renderer.samplers
        if name not in known and name != constants.AUTO_SAMPLER:
            raise ConfigError(f"unknown sampler {name!r}; known: {', '.join(known)}")

    def enqueue(self, job: Job) -> None:
        """Queue a job (merged where it can be; Busy when full); a prefetch under way gives way to it."""
        if self.stopping:
            raise BridgeError("the service is stopping")
        if self.queue.add(job):
            running = self.running
            if isinstance(running, PrefetchJob) and not running.feeds(job):
                running.cancelled.set()  # the device turns to what is asked for now; prefetch resumes after
            self.lock.notify_all()
        for waiter in job.waiters:
            waiter.progress(job.kind, 0.0)  # tells a waiting client the request is in hand

    def give_back(self, job: VaryJob, count: int | None = None) -> None:
        """Return ``count`` (default: all) of the job's claimed prefetched variations to the cache."""
        count = len(job.taken) if count is None else max(0, count)
        if count == 0:
            return
        returned, job.taken = job.taken[-count:], job.taken[:-count]
        entry = self.cache.peek(job.source, job.key)
        if entry is not None:
            entry.ready.extendleft(reversed(returned))
        else:
            self.cache.dropped.extend(returned)  # stale by now: their staged files are discarded
        self._stats.count("prefetch_hits", -count)

    def detach(self, client: object, only: str | None = None) -> list[Waiter]:
        """Take ``client``'s requests (and MIDI's) out of the queued and running jobs (/dd/cancel); ``only``: just
        its request of that id (MIDI's left alone). A job left with no one waiting is dropped, or stopped between
        steps; a shared one goes on for the others."""
        def theirs(waiter: Waiter) -> bool:
            if only is not None:
                return waiter.client == client and waiter.request.request_id == only
            return waiter.client is None or waiter.client == client

        detached, left = self.queue.detach(theirs)
        for job in left:
            if isinstance(job, VaryJob):
                self.give_back(job, len(job.taken) - job.total)
        running = self.running
        if running is not None and not isinstance(running, (PrefetchJob, ModelJob)):
            # (the prefetch is no one's request; a model load cannot stop and is acknowledged once loaded)
            mine = [waiter for waiter in running.waiters if theirs(waiter)]
            running.waiters = [waiter for waiter in running.waiters if not theirs(waiter)]
            if mine and not running.waiters:
                running.cancelled.set()
            detached = mine + detached
        return detached

    def cancel_prefetch(self) -> None:
        if isinstance(self.running, PrefetchJob):
            self.running.cancelled.set()

    def snapshot(self) -> dict:
        """The status fields of the shared state, copied under the lock (takes it)."""
        with self.lock:
            running, selected = self.running, self.selected
            return {
                "folder": str(self.folder),
                "settings": dict(vars(self.settings)),
                "guides": [request.text for request in self.guides],  # recipe included, as renders use them
                "selected": selected.path if selected else None,
                "selected_region": _region_json(selected.region) if selected else None,
                "selected_loop": loop_label(*self.selected_loop) or None,
                "queue": len(self.queue),
                "queued_outputs": self.queue.outputs,
                "running": None if running is None else {"kind": running.kind, "progress": round(running.progress, 3)},
                "prefetched": self.cache.counts(),
                "prefetched_bytes": self.cache.nbytes(),
            }

    def take_dropped(self) -> list:
        """The variations the cache has dropped since last asked, whose staged files are to be deleted."""
        with self.lock:
            return self.cache.take_dropped()

    def discard_dropped(self) -> None:
        """Delete the staged files of variations the cache has dropped (takes the lock; deletes outside it): on the
        render thread, which writes into the same folders anyway."""
        for variation in self.take_dropped():
            discard(variation.staged)


def _region_json(region) -> dict | None:
    return None if region is None else {"start": region.start, "end": region.end, "tail": region.tail}


def first(*values):
    """The first value that is not None."""
    return next(value for value in values if value is not None)
