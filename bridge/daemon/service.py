"""The service: one warm model, a bounded queue of jobs, variations of the selected clip rendered ahead.

Front ends (OSC, MIDI) call ``handle(request, reply)`` from their own threads; it validates, answers what needs no
model at once, and queues the rest for the one render thread, so it never waits on the model. ``reply(address,
*args)`` sends one reply to whoever asked (the transport adds the request id). The render thread takes queued
requests first; when there are none it keeps the selected clip's prefetch full. A render that stops being wanted
(new selection, changed settings, /dd/cancel, shutdown) is cancelled between sampler steps.

Threads and what they own:
- front-end threads (the OSC network thread, MIDI's callback thread) run ``handle``: they validate, change the
  shared state below under the lock, and never wait on the model or write a file;
- the render thread (``_work``) is the only one that calls the model (``renderer``); it runs the queued jobs and
  the prefetch, stages prefetched variations and writes the files of the jobs it rendered;
- the writer thread (``_writer``, one worker) names or writes the files of a press answered wholly from prefetch,
  so that a press which must rewrite its files (another format, another disk) never holds up the OSC thread;
- ``stop`` runs on whichever thread stops the service (the main thread of `dd-bridge serve`, on a signal).

The lock (``_cond``, a condition on a re-entrant lock) guards: ``queue``, ``running``, ``selected``,
``select_waiter``, ``prefetch_paused``, ``settings``, ``folder``, ``renderer`` (replaced under it), the prefetch
``cache`` with its entries (``ready``, ``clip``, ``failed``, seeds), ``counters``, ``recent``, ``last_error``,
``_next_generate_seed``, ``_stopping``, and the ``waiters`` and ``taken`` of queued and running jobs. Outside it:
``progress`` (one float the render thread writes and ``status`` reads) and ``Job.cancelled`` (an Event).
``_write_lock`` is held around every file written into the sample or staging folder: ``stop`` takes it and keeps
it, so a file being written is finished and none is started after the service has stopped, even while the render
thread is still inside a model call that cannot be interrupted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Callable

from bridge import __version__, constants
from bridge.daemon import requests as rq
from bridge.daemon.config import Config
from bridge.daemon.jobs import Busy, Job, Reply, Waiter, client_of
from bridge.daemon.prefetch import Entry, PrefetchCache, RenderKey, Source, Variation, open_source
from bridge.daemon.renderer import Renderer
from bridge.daemon.writer import SampleFolder, discard
from bridge.errors import AudioError, BridgeError, Cancelled, ConfigError

log = logging.getLogger(__name__)

RECENT = 10
RENDER_KEYS = ("noise", "steps", "sampler", "seed")  # settings that change the audio: prefetch goes stale


class Service:
    def __init__(self, config: Config, renderer: Renderer):
        self.config = config
        self.renderer = renderer
        self.settings = config.render
        self.folders = SampleFolder(config.folder, config.writable_folders)
        self.folder = self.folders.default
        self.cache = PrefetchCache(config.prefetch_clips, int(config.prefetch_memory_mb * 2**20))
        self.queue: deque[Job] = deque()
        self.selected: Source | None = None
        self.select_waiter: Waiter | None = None
        self.running: Job | None = None
        self.progress = 0.0
        self.prefetch_paused = False
        self.counters: Counter = Counter()
        self.recent: deque = deque(maxlen=RECENT)
        self.last_error: str | None = None
        self.status_extras: dict[str, Callable[[], object]] = {}
        self.started = time.time()
        self._next_generate_seed: int | None = None
        self._cond = threading.Condition(threading.RLock())
        self._stopping = False
        self._stopped = False
        self._write_lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="render", daemon=True)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="writer")
        self._handlers = {
            rq.Ping: self._on_ping, rq.Hello: self._on_hello, rq.Status: self._on_status,
            rq.Select: self._on_select, rq.Vary: self._on_vary, rq.Generate: self._on_generate,
            rq.Interpolate: self._on_interpolate, rq.Set: self._on_set, rq.Cancel: self._on_cancel,
        }

    # -- life ------------------------------------------------------------------------------------------------
    def start(self) -> "Service":
        self.folders.clear_leftovers()
        self._worker.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop rendering (between steps), refuse what is queued, let a file being written finish, then return.

        A render stops at its next sampler step; one model call cannot be cut short (a long clip's takes minutes on
        a CPU), so after ``timeout`` seconds the render thread is left to the process's exit: its requests are told
        the service is stopping, and it writes nothing more."""
        with self._cond:
            if self._stopped:
                return
            self._stopped = self._stopping = True
            if self.running is not None:
                self.running.cancelled.set()
            dropped = list(self.queue)
            self.queue.clear()
            self._cond.notify_all()
        for job in dropped:
            self._fail(job, "the service is stopping")
        if self._worker.is_alive():
            self._worker.join(timeout)
        self._writer.shutdown(wait=True)  # presses already answered from prefetch get their files
        self._write_lock.acquire()  # waits for a file being written; kept: nothing is written from now on
        with self._cond:
            running = self.running if self._worker.is_alive() else None
            stuck = running if running is not None and running.kind != "prefetch" else None  # prefetch: no one asked
            waiters = stuck.waiters if stuck is not None else []
            if stuck is not None:
                stuck.waiters = []  # answered here; the render thread, should it return, answers no one
        for waiter in waiters:
            waiter.error("the service is stopping")
        with self._cond:
            staged = self.cache.all_variations() + self.cache.take_dropped()
        for variation in staged:
            discard(variation.staged)
        self.folders.clear_staging()

    @property
    def still_rendering(self) -> bool:
        """After ``stop``: whether the render thread is still inside a model call (it will write nothing)."""
        return self._worker.is_alive()

    # -- requests (front-end threads; never wait on the model) -------------------------------------------------
    def handle(self, request: rq.Request, reply: Reply) -> None:
        self._count("requests")
        try:
            self._handlers[type(request)](request, reply)
        except BridgeError as error:
            self.note_error(request.address, str(error), quiet=isinstance(error, Busy))
            reply("/dd/error", request.address, str(error))
        finally:
            self._discard_dropped()

    def _on_ping(self, request, reply):
        reply("/dd/pong", __version__)

    def _on_hello(self, request, reply):
        reply("/dd/hello", __version__)

    def _on_status(self, request, reply):
        reply("/dd/status", json.dumps(self.status(), separators=(",", ":")))

    def _on_select(self, request: rq.Select, reply: Reply):
        source = open_source(request.path, request.region)
        with self._cond:
            if self.selected != source:
                self._cancel_prefetch()
            self.selected = source
            self.select_waiter = Waiter(reply, request, 0)
            self.prefetch_paused = False
            self.cache.entry(source, self._render_key()).failed = None
            self._cond.notify_all()
        reply("/dd/ack", "select", request.path)

    def _on_vary(self, request: rq.Vary, reply: Reply):
        options = request.options
        if request.path:
            source = open_source(request.path, options.region)
        else:
            with self._cond:
                selected = self.selected
            if selected is None:
                raise ConfigError("no clip selected: send /dd/select <path> first, or give the path")
            source = self._as_on_disk(selected)
            if options.region is not None:  # a key press with its own region of the selected file
                source = open_source(source.path, options.region)
        count = _first(request.count, options.count, self.settings.count)
        key = self._render_key(request.noise if request.noise is not None else options.noise,
                               options.steps, options.sampler)
        job = Job("vary", [Waiter(reply, request, count)], source=source, key=key, seed=options.seed,
                  folder=self._folder(options), format=options.format or self.settings.format)
        with self._cond:
            if self._stopping:
                raise BridgeError("the service is stopping")
            if job.seed is None:
                job.taken = self.cache.take(source, key, count)
                self._count("prefetch_hits", len(job.taken))
            if job.to_render > 0:
                self._count("prefetch_misses")
                try:
                    self._enqueue(job)
                except Busy:
                    self._give_back(job)
                    raise
            else:  # already rendered: named on the writer thread at once, whatever the render thread is doing
                try:
                    self._writer.submit(self._answer_from_prefetch, job)
                except RuntimeError:  # the writer has shut down: the service is stopping
                    self._give_back(job)
                    raise BridgeError("the service is stopping") from None

    def _answer_from_prefetch(self, job: Job) -> None:
        try:
            self._answer_vary(job, list(job.taken))
        except Exception as error:  # one bad request never takes the writer down
            log.exception("answering a press from prefetch failed")
            self._fail(job, f"internal error: {type(error).__name__}: {error}")
        finally:
            with self._cond:
                self._cond.notify_all()  # refill what was taken, once the answer is out

    def _as_on_disk(self, selected: Source) -> Source:
        """The selected clip as it is on disk now. Replaced or edited since it was selected, it is selected anew:
        its prefetched variations and decoded audio are of the old sound, so they are dropped and the file is read
        again (else the files would name a source their recreate command no longer reproduces). Gone: an error."""
        try:
            current = replace(Source.of(selected.path), region=selected.region)
        except AudioError as error:
            raise AudioError(f"{error} (the selected clip changed since /dd/select)") from None
        if current == selected:
            return selected
        source = open_source(selected.path, selected.region)  # probed; its region checked against the new file
        with self._cond:
            if self.selected == selected:
                self.selected = source
                self._cancel_prefetch()
                self._cond.notify_all()
            self.cache.forget_stale(source)
        log.info("%s changed on disk since it was selected: its variations start afresh", source.path)
        return source

    def _on_generate(self, request: rq.Generate, reply: Reply):
        options = request.options
        count = _first(request.count, options.count, self.settings.count)
        key = self._render_key(None, options.steps, options.sampler)
        job = Job("generate", [Waiter(reply, request, count)], key=key, seed=options.seed,
                  folder=self._folder(options), format=options.format or self.settings.format,
                  seconds=request.seconds)
        with self._cond:
            self._enqueue(job)

    def _on_interpolate(self, request: rq.Interpolate, reply: Reply):
        options = request.options
        a, b = open_source(request.a, options.region), open_source(request.b, options.region_b)
        count = _first(request.count, options.count, 5)
        if count < 2:
            raise ConfigError(f"count must be in 2..{constants.MAX_COUNT} for an interpolation (it includes a and b)")
        key = self._render_key(None, options.steps, options.sampler)
        job = Job("interpolate", [Waiter(reply, request, count)], source=a, source_b=b, key=key,
                  folder=self._folder(options), format=options.format or self.settings.format)
        with self._cond:
            self._enqueue(job)

    def _on_set(self, request: rq.Set, reply: Reply):
        key, value = request.key, request.value
        shown = "random" if value is None else value
        if key == "model":
            with self._cond:
                self._enqueue(Job("model", [Waiter(reply, request, 0)], model=value))
            return  # acknowledged once loaded
        if key == "folder":
            folder = self.folders.resolve(value)
            with self._cond:
                self.folder = folder
            reply("/dd/ack", "set", key, str(folder))
            return
        if key == "sampler":
            self._check_sampler(value)
        with self._cond:
            self.settings = replace(self.settings, **{key: value})
            if key in RENDER_KEYS:
                self.cache.drop_variations()
                self._cancel_prefetch()
                self._next_generate_seed = None
            self.prefetch_paused = False
            self._cond.notify_all()
        reply("/dd/ack", "set", key, shown)

    def _on_cancel(self, request, reply):
        """Drops the sender's own requests (and MIDI's, which have no sender), queued or rendering; other clients'
        work goes on. The prefetch is no one's request: any /dd/cancel drops it and pauses it."""
        with self._cond:
            cancelled = self._detach(client_of(reply))
            self._cancel_prefetch()
            self.cache.drop_variations()
            self.prefetch_paused = True  # until the next /dd/select or /dd/set
        for waiter in cancelled:
            self.note_error(waiter.request.address, "cancelled by /dd/cancel")
            waiter.error("cancelled by /dd/cancel")
        reply("/dd/ack", "cancel")

    def _detach(self, client) -> list[Waiter]:
        """Take ``client``'s requests (and MIDI's) out of the queued and running jobs (under the lock). A job left
        with no one waiting is dropped, or stopped between steps; a shared one goes on for the others."""
        def theirs(waiter: Waiter) -> bool:
            return waiter.client is None or waiter.client == client

        detached = []
        running = self.running
        if running is not None and running.kind in ("prefetch", "model"):
            running = None  # the prefetch is no one's request; a model load cannot stop and is acknowledged
        for job in [running, *self.queue] if running is not None else list(self.queue):
            mine = [waiter for waiter in job.waiters if theirs(waiter)]
            if not mine:
                continue
            detached += mine
            job.waiters = [waiter for waiter in job.waiters if not theirs(waiter)]
            if job is running:
                if not job.waiters:
                    job.cancelled.set()
                continue
            if not job.waiters:
                self.queue.remove(job)
            self._give_back(job, len(job.taken) - job.total)
        return detached

    # -- helpers for requests ----------------------------------------------------------------------------------
    def _render_key(self, noise=None, steps=None, sampler=None) -> RenderKey:
        if sampler is not None:
            self._check_sampler(sampler)
        s = self.settings
        return RenderKey(_first(noise, s.noise), _first(steps, s.steps), _first(sampler, s.sampler), s.seed)

    def _check_sampler(self, name: str) -> None:
        known = self.renderer.samplers
        if name not in known:
            raise ConfigError(f"unknown sampler {name!r}; known: {', '.join(known)}")

    def _folder(self, options: rq.Options) -> Path:
        return self.folders.resolve(options.folder) if options.folder else self.folder

    def _enqueue(self, job: Job) -> None:
        """Queue a job (under the lock), merged into an identical queued one where it can be; Busy when full."""
        if self._stopping:
            raise BridgeError("the service is stopping")
        pending = sum(queued.to_render for queued in self.queue) + job.to_render
        if pending > self.config.max_pending:
            self.counters["refused"] += 1
            raise Busy(f"busy: {pending} outputs would be waiting (limit {self.config.max_pending}); "
                       "wait for them or send /dd/cancel")
        merged = next((queued for queued in self.queue if queued.merges_with(job)), None)
        if merged is not None:
            merged.waiters += job.waiters
            merged.taken += job.taken
            self.counters["coalesced"] += 1
        elif len(self.queue) >= self.config.max_queue:
            self.counters["refused"] += 1
            raise Busy(f"busy: {len(self.queue)} requests queued (limit {self.config.max_queue}); "
                       "wait for them or send /dd/cancel")
        else:
            self.queue.append(job)
            running = self.running
            if running is not None and running.kind == "prefetch" and not (
                    job.kind == "vary" and job.seed is None and (job.source, job.key) == (running.source, running.key)):
                running.cancelled.set()  # the device turns to what is asked for now; prefetch resumes after
            self._cond.notify_all()
        for waiter in job.waiters:
            waiter.progress(job.kind, 0.0)  # tells a waiting client the request is in hand

    def _give_back(self, job: Job, count: int | None = None) -> None:
        """Return ``count`` (default: all) of the job's claimed prefetched variations to the cache (under the lock)."""
        count = len(job.taken) if count is None else max(0, count)
        if count == 0:
            return
        returned, job.taken = job.taken[-count:], job.taken[:-count]
        entry = self.cache.peek(job.source, job.key)
        if entry is not None:
            entry.ready.extendleft(reversed(returned))
        else:
            self.cache.dropped.extend(returned)  # stale by now: their staged files are discarded
        self._count("prefetch_hits", -count)

    def _discard_dropped(self) -> None:
        with self._cond:
            dropped = self.cache.take_dropped()
        for variation in dropped:
            discard(variation.staged)

    def _cancel_prefetch(self) -> None:
        if self.running is not None and self.running.kind == "prefetch":
            self.running.cancelled.set()

    def _count(self, name: str, amount: int = 1) -> None:
        with self._cond:  # front ends, the render and the writer thread all count: += alone can lose counts
            self.counters[name] += amount

    def note_error(self, address: str, message: str, quiet: bool = False) -> None:
        with self._cond:
            self.last_error = f"{address}: {message}"
            self.counters["errors"] += 1
        log.log(logging.DEBUG if quiet else logging.WARNING, "%s: %s", address, message)  # a flood: counted, not logged

    def _fail(self, job: Job, message: str) -> None:
        with self._cond:
            waiters = list(job.waiters)
        for waiter in waiters:
            self.note_error(waiter.request.address, message)
            waiter.error(message)

    # -- status ----------------------------------------------------------------------------------------------
    def status(self) -> dict:
        info = self.renderer.info
        # the longest clip the memory free now allows (docs/osc.md, Limits); read outside the lock the worker uses
        longest = round(self.renderer.engine.longest_length() / info.sample_rate, 1)
        with self._cond:
            running = self.running
            data = {
                "version": __version__,
                "model": info.name, "model_ref": info.reference, "model_hash": info.hash,
                "model_recreatable": info.recreatable,
                "device": info.device, "precision": info.precision,
                "sample_rate": info.sample_rate, "window": info.window,
                "longest_seconds": longest,
                "folder": str(self.folder),
                "settings": dict(vars(self.settings)),
                "selected": self.selected.path if self.selected else None,
                "selected_region": _region_json(self.selected.region) if self.selected else None,
                "queue": len(self.queue),
                "queued_outputs": sum(job.to_render for job in self.queue),
                "running": None if running is None else {"kind": running.kind, "progress": round(self.progress, 3)},
                "prefetched": self.cache.counts(),
                "prefetched_bytes": self.cache.nbytes(),
                "last_error": self.last_error,
                "recent": list(self.recent),
                "counters": dict(self.counters),
                "uptime_s": round(time.time() - self.started, 1),
            }
        for name, value in self.status_extras.items():
            data[name] = value()
        return data

    # -- the render thread -------------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                job = self._next_job()
                if job is None:
                    return
                self.running, self.progress = job, 0.0
            try:
                getattr(self, f"_run_{job.kind}")(job)
            except Cancelled:
                self._count("cancelled")
                log.debug("%s cancelled", job.kind)
                if job.kind != "prefetch":
                    self._fail(job, "the service is stopping" if self._stopping else "cancelled")
            except BridgeError as error:
                self._fail(job, str(error))
            except Exception as error:  # one bad request never takes the service down
                log.exception("%s failed", job.kind)
                self._fail(job, f"internal error: {type(error).__name__}: {error}")
            finally:
                with self._cond:
                    self.running = None
                    self._cond.notify_all()
                self._discard_dropped()

    def _next_job(self) -> Job | None:
        while not self._stopping:
            if self.queue:
                return self.queue.popleft()
            job = self._prefetch_job()
            if job is not None:
                return job
            self._cond.wait()
        return None

    def _prefetch_job(self) -> Job | None:
        if self.prefetch_paused or self.selected is None or self.settings.prefetch == 0:
            return None
        key = self._render_key()
        entry = self.cache.entry(self.selected, key)
        # One device batch at a time: a press that comes meanwhile waits for that batch only. The first of an empty
        # prefetch is rendered alone: a press soon after the selection waits for one render, not a batch.
        missing = min(self.settings.prefetch - len(entry.ready), self.renderer.batch_size if entry.ready else 1)
        if entry.clip is not None and missing > 0:
            missing = self.cache.room(self.selected, missing)  # what the memory bound leaves room for
        if entry.failed or missing <= 0:
            return None
        waiters = [replace(self.select_waiter, count=missing)] if self.select_waiter else []
        return Job("prefetch", waiters, source=self.selected, key=key)

    def _cancel_hook(self, job: Job) -> Callable[[], bool]:
        return lambda: job.cancelled.is_set() or self._stopping

    def _progress_hook(self, job: Job, part: tuple[float, float] = (0.0, 1.0)) -> Callable[[int, int], None]:
        """Progress of a render that is ``part`` (from, to) of the job's whole work, to the waiters not answered."""
        last = [part[0]]

        def progress(done: int, total: int) -> None:
            fraction = part[0] + (part[1] - part[0]) * done / max(total, 1)
            self.progress = fraction
            if fraction - last[0] >= 0.05 or done >= total:
                last[0] = fraction
                with self._cond:
                    waiters = list(job.waiters)  # a cancelling client leaves the job: it hears no more of it
                for waiter in waiters:
                    waiter.progress(job.kind, fraction)
        return progress

    def _source_clip(self, source: Source, entry=None):
        with self._cond:
            if entry is not None and entry.clip is not None:
                return entry.clip
        clip = self.renderer.read(source.path, source.region)
        if entry is not None and self._not_prefetched(clip) is None:
            with self._cond:
                entry.clip = clip
                self.cache.trim(keep=source)  # older clips make room for this one's decoded audio
        return clip

    def _not_prefetched(self, clip) -> str | None:
        """Why a clip is not prefetched (too long, or too large for the memory bound), or None."""
        if clip.seconds > self.config.prefetch_seconds:
            return f"longer than {self.config.prefetch_seconds:g} s: not prefetched"
        if not self.cache.fits(clip):
            return (f"{clip.samples.nbytes / 2**20:.0f} MB decoded: too large to prefetch within "
                    f"limits.prefetch_memory_mb ({self.config.prefetch_memory_mb:g})")
        return None

    def _render_variations(self, job: Job, clip, seeds: list[int],
                           part: tuple[float, float] = (0.0, 1.0)) -> list[Variation]:
        renderer, key = self.renderer, job.key
        began = time.perf_counter()
        clips = renderer.vary(clip, seeds, noise=key.noise, steps=key.steps, sampler=key.sampler,
                              progress=self._progress_hook(job, part), cancel=self._cancel_hook(job))
        each = (time.perf_counter() - began) / max(len(seeds), 1)
        self._count("rendered", len(clips))
        return [Variation(c, seed, each, renderer) for c, seed in zip(clips, seeds)]

    def _run_prefetch(self, job: Job) -> None:
        with self._cond:
            entry = self.cache.peek(job.source, job.key)
        if entry is None or job.cancelled.is_set():
            return
        try:
            clip = self._source_clip(job.source, entry)
            why = self._not_prefetched(clip)
            with self._cond:
                entry.failed = why
                wanted = self.cache.room(job.source, job.to_render) if self.cache.peek(job.source, job.key) is entry else 0
                seeds = entry.seeds(wanted) if why is None else []
            if why is not None:
                log.info("%s is %s", job.source.path, why)
            if not seeds:
                return
            variations = [self._stage(job, variation) for variation in self._render_variations(job, clip, seeds)]
        except Cancelled:
            raise
        except Exception as error:  # said once; not tried again until the clip is selected anew
            with self._cond:
                entry.failed = str(error) or type(error).__name__
            raise
        with self._cond:
            wanted = self.cache.peek(job.source, job.key) is entry and not job.cancelled.is_set()
            if wanted:
                entry.ready.extend(variations)
                self._count("prefetched", len(variations))
                self._cond.notify_all()
        if not wanted:
            for variation in variations:
                discard(variation.staged)

    def _stage(self, job: Job, variation: Variation) -> Variation:
        """Write a prefetched variation ahead, so that a key press only has to name it."""
        fmt = self.settings.format
        metadata = variation.renderer.metadata("vary", [job.source.path], self._vary_options(job, variation, fmt),
                                               regions=[job.source.region])
        try:
            with self._write_lock:
                staged = self.folders.stage(variation.clip, fmt, metadata)
        except (BridgeError, OSError) as error:
            log.warning("could not write a variation ahead (%s); it will be written when asked for", error)
            return variation
        return replace(variation, staged=staged, staged_format=fmt)

    @staticmethod
    def _vary_options(job: Job, variation: Variation, fmt: str) -> dict:
        key = job.key
        # The service renders at the default shape (bridge.engine.clips.vary_clip); named so the command recreates it.
        return {"count": 1, "seed": variation.seed, "noise": key.noise, "shape": constants.DEFAULT_SHAPE,
                "steps": key.steps, "sampler": key.sampler, "format": fmt}

    def _run_vary(self, job: Job) -> None:
        """Render what the prefetch did not hold, one device batch at a time, answering each waiter (merged
        presses included) the moment its own variations are written, not when the whole job is done."""
        with self._cond:
            entry = self.cache.peek(job.source, job.key)
            if job.seed is None and job.to_render > 0:  # prefetch may have landed while this waited
                more = self.cache.take(job.source, job.key, job.to_render)
                job.taken += more
                self._count("prefetch_hits", len(more))
            to_render, waiters = job.to_render, list(job.waiters)
        try:
            self._answer_vary(job, list(job.taken))
            if to_render <= 0:
                return
            for waiter in waiters:
                waiter.progress(job.kind, 0.0)
            clip = self._source_clip(job.source, entry)
            with self._cond:
                if job.seed is not None:
                    seeds = list(range(job.seed, job.seed + to_render))
                else:
                    seeds = (entry or Entry(job.key)).seeds(to_render)
            batch = max(1, self.renderer.batch_size)
            for first in range(0, len(seeds), batch):
                with self._cond:
                    if not job.waiters:  # all answered, or the rest cancelled: no one wants more
                        break
                part = (first / len(seeds), min(first + batch, len(seeds)) / len(seeds))
                self._answer_vary(job, self._render_variations(job, clip, seeds[first:first + batch], part))
        finally:
            with self._cond:
                unsent, job.unsent = job.unsent, []
            for variation in unsent:
                discard(variation.staged)  # claimed for a request that left or failed: of no use now

    def _answer_vary(self, job: Job, fresh: list[Variation]) -> None:
        """Add ``fresh`` variations to the job's unsent ones; write and announce each waiter's (in the order they
        came) as soon as all of its variations are there. An answered waiter leaves the job: a later failure or
        cancellation is not its concern."""
        while True:
            with self._cond:
                job.unsent += fresh
                fresh = []
                if not job.waiters or len(job.unsent) < job.waiters[0].count:
                    return
                waiter = job.waiters.pop(0)
                mine, job.unsent = job.unsent[:waiter.count], job.unsent[waiter.count:]
            try:
                paths = [self._write_variation(job, variation) for variation in mine]
            except BridgeError as error:
                self.note_error(waiter.request.address, str(error))
                waiter.error(str(error))
                continue
            finally:
                for variation in mine:
                    discard(variation.staged)  # published ones are gone already; the rest are of no use now
            for path, variation in zip(paths, mine):
                self._note_render("vary", path, variation.seed, variation.seconds, variation in job.taken)
            waiter.reply("/dd/done", job.kind, *map(str, paths))

    def _write_variation(self, job: Job, variation: Variation) -> Path:
        sources, regions = (job.source.path,), (job.source.region,)
        with self._write_lock:
            if variation.staged is not None and variation.staged_format == job.format:
                try:
                    return self.folders.publish(variation.staged, job.folder, operation="vary", sources=sources,
                                                regions=regions)
                except OSError as error:  # e.g. the folder is on another disk: write it out instead
                    log.debug("could not link %s: %s", variation.staged, error)
            metadata = variation.renderer.metadata("vary", list(sources),
                                                   self._vary_options(job, variation, job.format), regions=regions)
            return self.folders.write(job.folder, variation.clip, job.format, metadata, operation="vary",
                                      sources=sources, regions=regions)

    def _run_generate(self, job: Job) -> None:
        key, renderer = job.key, self.renderer
        with self._cond:
            seeds = self._generate_seeds(job)
        began = time.perf_counter()
        clips = renderer.generate(seeds, job.seconds, steps=key.steps, sampler=key.sampler,
                                  progress=self._progress_hook(job), cancel=self._cancel_hook(job))
        each = (time.perf_counter() - began) / len(seeds)
        self._count("rendered", len(clips))
        paths = []
        for clip, seed in zip(clips, seeds):
            options = {"count": 1, "seed": seed, "seconds": job.seconds, "steps": key.steps, "sampler": key.sampler,
                       "format": job.format}
            metadata = renderer.metadata("generate", [], options)
            with self._write_lock:
                paths.append(self.folders.write(job.folder, clip, job.format, metadata, operation="generate",
                                                model=renderer.info.name))
            self._note_render("generate", paths[-1], seed, each, False)
        self._deliver(job, paths)

    def _generate_seeds(self, job: Job) -> list[int]:
        if job.seed is not None:
            return list(range(job.seed, job.seed + job.total))
        if self.settings.seed is None:
            return Entry(job.key).seeds(job.total)
        first = self._next_generate_seed if self._next_generate_seed is not None else self.settings.seed
        self._next_generate_seed = first + job.total
        return list(range(first, first + job.total))

    def _run_interpolate(self, job: Job) -> None:
        key, renderer = job.key, self.renderer
        a = renderer.read(job.source.path, job.source.region)
        b = renderer.read(job.source_b.path, job.source_b.region)
        began = time.perf_counter()
        clips = renderer.interpolate(a, b, job.total, steps=key.steps, sampler=key.sampler,
                                     progress=self._progress_hook(job), cancel=self._cancel_hook(job))
        each = (time.perf_counter() - began) / len(clips)
        sources, regions = (job.source.path, job.source_b.path), (job.source.region, job.source_b.region)
        paths = []
        for index, clip in enumerate(clips, 1):
            options = {"count": job.total, "steps": key.steps, "sampler": key.sampler, "format": job.format}
            metadata = renderer.metadata("interpolate", list(sources), options, regions=regions, index=index)
            with self._write_lock:
                paths.append(self.folders.write(job.folder, clip, job.format, metadata, operation="interpolate",
                                                sources=sources, regions=regions))
            self._note_render("interpolate", paths[-1], None, each, False)
        self._deliver(job, paths)

    def _run_model(self, job: Job) -> None:
        renderer = Renderer.load(job.model, self.config.device, self.config.precision, self.config.backend)
        with self._cond:
            self.renderer = renderer
            self.cache.drop_variations()
            self._cond.notify_all()
        log.info("model: %s on %s (%s)", renderer.info.name, renderer.info.device, renderer.info.precision)
        for waiter in job.waiters:
            waiter.reply("/dd/ack", "set", "model", renderer.info.reference)

    def _deliver(self, job: Job, paths: list[Path]) -> None:
        start = 0
        with self._cond:
            waiters = list(job.waiters)
        for waiter in waiters:
            mine = paths[start:start + waiter.count]
            start += waiter.count
            waiter.reply("/dd/done", job.kind, *map(str, mine))

    def _note_render(self, kind: str, path: Path, seed, seconds: float, prefetched: bool) -> None:
        with self._cond:  # status copies it under the lock: a deque changed while copied raises
            self.recent.appendleft({"kind": kind, "path": str(path), "seed": seed, "render_s": round(seconds, 3),
                                    "prefetched": prefetched, "at": round(time.time(), 3)})
        log.info("%s %s", kind, path)


def _first(*values):
    return next(value for value in values if value is not None)


def _region_json(region) -> dict | None:
    return None if region is None else {"start": region.start, "end": region.end, "tail": region.tail}

