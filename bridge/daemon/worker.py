"""The render thread: runs the queued jobs, one handler per job type, and keeps the selected clip's prefetch full
when nothing is queued (the prefetch policy).

It is the only thread that calls the model. A render that stops being wanted (new selection, changed settings,
/dd/cancel, shutdown) is cancelled between sampler steps. Shared state is read and changed under ``state.lock``
(bridge.daemon.state); files and the replies that announce them go out through bridge.daemon.output. A source is
decoded only once its header said it is worth it (bridge.engine.audio.read_audio's ``fits``): a clip too long to
prefetch is skipped, one too long to render refused, before a sample of it is decoded (a click on a long item in
REAPER selects all of it).

Over 300 lines: one handler per job type, each short, beside the loop and the prefetch policy they share.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Callable

from bridge.daemon.config import Config
from bridge.daemon.jobs import (ExtendJob, GenerateJob, InterpolateJob, Job, ModelJob, PrefetchJob, RepaintJob,
                                VaryJob)
from bridge.daemon.output import Output
from bridge.daemon.prefetch import Entry, Source, Variation
from bridge.daemon.renderer import Renderer
from bridge.daemon.state import State
from bridge.daemon.stats import Stats
from bridge.daemon.writer import discard
from bridge.engine.audio import AudioHeader, Clip, Fits, model_length, read_audio
from bridge.errors import BridgeError, Cancelled, one_line

log = logging.getLogger(__name__)


class _NotPrefetched(Exception):
    """A clip the prefetch skips, said by its header: why."""


class Worker:
    def __init__(self, config: Config, state: State, output: Output, stats: Stats):
        self.config, self.state, self.output, self.stats = config, state, output, stats
        self._thread = threading.Thread(target=self._work, name="render", daemon=True)
        self.warmed = threading.Event()  # set once the render thread's warm-up is over (App.start waits for it)
        self._runs: dict[type, Callable[..., None]] = {
            VaryJob: self._run_vary, GenerateJob: self._run_generate, InterpolateJob: self._run_interpolate,
            PrefetchJob: self._run_prefetch, ModelJob: self._run_model, RepaintJob: self._run_spliced,
            ExtendJob: self._run_spliced,
        }

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None) -> None:
        """Wait up to ``timeout`` for the render thread (stopping)."""
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the render thread is still running (after a stop: inside a model call, writing nothing)."""
        return self._thread.is_alive()

    # -- the loop ----------------------------------------------------------------------------------------------
    def _work(self) -> None:
        state = self.state
        try:
            self._warm_up(state.renderer)
        finally:
            self.warmed.set()
        while True:
            with state.lock:
                job = self._next_job()
                if job is None:
                    return
                state.running = job
            try:
                self._runs[type(job)](job)
            except Cancelled:
                self.stats.count("cancelled")
                log.debug("%s cancelled", job.kind)
                if not isinstance(job, PrefetchJob):
                    self.output.fail(job, "the service is stopping" if state.stopping else "cancelled")
            except BridgeError as error:
                self.output.fail(job, str(error))
            except Exception as error:  # one bad request never takes the service down
                log.exception("%s failed", job.kind)
                self.output.fail(job, f"internal error: {type(error).__name__}: {error}")
            finally:
                with state.lock:
                    state.running = None
                    state.lock.notify_all()
                state.discard_dropped()

    @staticmethod
    def _warm_up(renderer: Renderer) -> None:
        """The model's warm-up (CUDA: its compile and CUDA graphs) on this thread, the one that replays them: a
        graph recorded on another thread is recorded again at the first press. One that fails is said, and the
        service renders without it."""
        try:
            renderer.warm_up()
        except Exception as error:
            log.warning("the warm-up failed (%s: %s): renders run without it", type(error).__name__,
                        one_line(error))

    def _next_job(self) -> Job | None:
        state = self.state
        while not state.stopping:
            job = state.queue.pop() or self._prefetch_job()
            if job is not None:
                return job
            state.lock.wait()
        return None

    def _prefetch_job(self) -> PrefetchJob | None:
        """The prefetch policy: what to render ahead for the selected clip now, or None."""
        state = self.state
        if state.prefetch_paused or state.selected is None or state.settings.prefetch == 0:
            return None
        key = state.prefetch_key()
        entry = state.cache.entry(state.selected, key)
        # One device batch at a time: a press that comes meanwhile waits for that batch only. The first of an empty
        # prefetch is rendered alone: a press soon after the selection waits for one render, not a batch.
        missing = min(state.settings.prefetch - len(entry.ready), state.renderer.batch_size if entry.ready else 1)
        if entry.clip is not None and missing > 0:
            missing = state.cache.room(state.selected, missing)  # what the memory bound leaves room for
        if entry.failed or missing <= 0:
            return None
        waiters = [replace(state.select_waiter, count=missing)] if state.select_waiter else []
        return PrefetchJob(waiters=waiters, source=state.selected, key=key)

    # -- hooks a render polls ------------------------------------------------------------------------------------
    def _cancel_hook(self, job: Job) -> Callable[[], bool]:
        return lambda: job.cancelled.is_set() or self.state.stopping

    def _progress_hook(self, job: Job, part: tuple[float, float] = (0.0, 1.0)) -> Callable[[int, int], None]:
        """Progress of a render that is ``part`` (from, to) of the job's whole work, to the waiters not answered."""
        last = [part[0]]

        def progress(done: int, total: int) -> None:
            fraction = part[0] + (part[1] - part[0]) * done / max(total, 1)
            job.progress = fraction
            if fraction - last[0] >= 0.05 or done >= total:
                last[0] = fraction
                with self.state.lock:
                    waiters = list(job.waiters)  # a cancelling client leaves the job: it hears no more of it
                for waiter in waiters:
                    waiter.progress(job.kind, fraction)
        return progress

    # -- variations: prefetch and key presses ------------------------------------------------------------------
    def _source_clip(self, source: Source, entry: Entry | None = None, fits: Fits | None = None) -> Clip:
        """The source's clip: the one its entry holds, else read (``fits``: what its header must pass first)."""
        state = self.state
        with state.lock:
            if entry is not None and entry.clip is not None:
                return entry.clip
        clip = read_audio(source.path, source.region, fits=fits)
        if entry is not None and self._not_prefetched(clip) is None:
            with state.lock:
                entry.clip = clip
                state.cache.trim(keep=source)  # older clips make room for this one's decoded audio
        return clip

    def _not_prefetched(self, clip: Clip | AudioHeader) -> str | None:
        """Why a clip (or what its header says it will be) is not prefetched (too long, or too large for the memory
        bound), or None."""
        if clip.seconds > self.config.prefetch_seconds:
            return f"longer than {self.config.prefetch_seconds:g} s: not prefetched"
        if not self.state.cache.fits(clip):
            return (f"{clip.nbytes / 2**20:.0f} MB decoded: too large to prefetch within "
                    f"limits.prefetch_memory_mb ({self.config.prefetch_memory_mb:g})")
        return None

    def _renderable(self, key=None) -> Fits:
        """The check of a source's header before it is decoded for a render: no longer than the engine renders
        with the memory free now (Engine.check_length, its words), asked for one output, so never stricter than
        the check of the decoded clip with its batch that follows (bridge.engine.clips). A loop of given bars
        renders only its first bars: its file's length says nothing then."""
        engine = self.state.renderer.engine

        def fits(header: AudioHeader) -> None:
            if key is None or not (key.loop and key.bars):
                engine.check_length(model_length(header, engine.sample_rate))
        return fits

    def _prefetchable(self, key) -> Fits:
        """_renderable, after the prefetch's own bounds (_not_prefetched), which skip a clip rather than fail."""
        renderable = self._renderable(key)

        def fits(header: AudioHeader) -> None:
            why = self._not_prefetched(header)
            if why is not None:
                raise _NotPrefetched(why)
            renderable(header)
        return fits

    def _render_variations(self, job: VaryJob | PrefetchJob, clip, seeds: list[int],
                           part: tuple[float, float] = (0.0, 1.0)) -> list[Variation]:
        renderer, key = self.state.renderer, job.key
        began = time.perf_counter()
        clips = renderer.vary(clip, seeds, noise=key.noise, steps=key.steps, sampler=key.sampler, loop=key.loop,
                              bars=key.bars, guides=key.guides, progress=self._progress_hook(job, part),
                              **key.resample_options(),
                              cancel=self._cancel_hook(job))
        each = (time.perf_counter() - began) / max(len(seeds), 1)
        self.stats.count("rendered", len(clips))
        return [Variation(c, seed, each, renderer.made()) for c, seed in zip(clips, seeds)]

    def _run_prefetch(self, job: PrefetchJob) -> None:
        state = self.state
        with state.lock:
            entry = state.cache.peek(job.source, job.key)
        if entry is None or job.cancelled.is_set():
            return
        try:
            try:
                clip, why = self._source_clip(job.source, entry, self._prefetchable(job.key)), None
            except _NotPrefetched as skipped:  # said by the header: nothing decoded
                clip, why = None, str(skipped)
            with state.lock:
                entry.failed = why
                current = state.cache.peek(job.source, job.key) is entry
                wanted = state.cache.room(job.source, job.to_render) if current else 0
                seeds = entry.seeds(wanted) if why is None else []
            if why is not None:
                log.info("%s is %s", job.source.path, why)
            if not seeds:
                return
            rendered = self._render_variations(job, clip, seeds)
            with state.lock:
                fmt = state.settings.format  # as it is now: a press in this format only names the file
            variations = [self.output.stage(job.source, job.key, variation, fmt) for variation in rendered]
        except Cancelled:
            raise
        except Exception as error:  # said once; not tried again until the clip is selected anew
            with state.lock:
                entry.failed = str(error) or type(error).__name__
            raise
        with state.lock:
            wanted = state.cache.peek(job.source, job.key) is entry and not job.cancelled.is_set()
            if wanted:
                entry.ready.extend(variations)
                self.stats.count("prefetched", len(variations))
                state.lock.notify_all()
        if not wanted:
            for variation in variations:
                discard(variation.staged)

    def _run_vary(self, job: VaryJob) -> None:
        """Render what the prefetch did not hold, one device batch at a time, answering each waiter (merged
        presses included) the moment its own variations are written, not when the whole job is done."""
        state = self.state
        with state.lock:
            entry = state.cache.peek(job.source, job.key)
            if job.seed is None and job.to_render > 0:  # prefetch may have landed while this waited
                more = state.cache.take(job.source, job.key, job.to_render)
                job.taken += more
                self.stats.count("prefetch_hits", len(more))
            to_render, waiters, taken = job.to_render, list(job.waiters), list(job.taken)
        try:
            self.output.answer(job, taken)
            if to_render <= 0:
                return
            for waiter in waiters:
                waiter.progress(job.kind, 0.0)
            clip = self._source_clip(job.source, entry, self._renderable(job.key))
            with state.lock:
                if job.seed is not None:
                    seeds = list(range(job.seed, job.seed + to_render))
                else:
                    seeds = (entry or Entry(job.key)).seeds(to_render)
            batch = max(1, state.renderer.batch_size)
            for start in range(0, len(seeds), batch):
                with state.lock:
                    if not job.waiters:  # all answered, or the rest cancelled: no one wants more
                        break
                part = (start / len(seeds), min(start + batch, len(seeds)) / len(seeds))
                self.output.answer(job, self._render_variations(job, clip, seeds[start:start + batch], part))
        finally:
            with state.lock:
                unsent, job.unsent = job.unsent, []
            for variation in unsent:
                discard(variation.staged)  # claimed for a request that left or failed: of no use now

    # -- new sounds, interpolations, another model -------------------------------------------------------------
    def _run_generate(self, job: GenerateJob) -> None:
        key, renderer = job.key, self.state.renderer
        seeds = self._generate_seeds(job)
        began = time.perf_counter()
        clips = renderer.generate(seeds, job.seconds, steps=key.steps, sampler=key.sampler, loop=key.loop,
                                  bars=key.bars, guides=key.guides, progress=self._progress_hook(job),
                                  **key.resample_options(),
                                  cancel=self._cancel_hook(job))
        each = (time.perf_counter() - began) / len(seeds)
        self.stats.count("rendered", len(clips))
        paths = []
        for clip, seed in zip(clips, seeds):
            paths.append(self.output.generated(job, renderer, clip, seed))
            self.stats.note_render("generate", paths[-1], seed, each, False)
        self.output.deliver(job, paths)

    def _run_spliced(self, job: RepaintJob | ExtendJob) -> None:
        """A repaint or an extension of the file or its region (the clip), the outputs written beside its
        variations."""
        key, renderer = job.key, self.state.renderer
        # An extension renders a window at a time, whatever the clip's length: only the decode is weighed then.
        fits = self._renderable() if isinstance(job, RepaintJob) else None
        clip = read_audio(job.source.path, job.source.region, fits=fits)
        seeds = self._generate_seeds(job)
        common = {"steps": key.steps, "sampler": key.sampler, "guides": key.guides, **key.resample_options(),
                  "progress": self._progress_hook(job), "cancel": self._cancel_hook(job)}
        began = time.perf_counter()
        if isinstance(job, RepaintJob):
            start, end = (job.start, job.end) if job.source.region is None else job.source.region.inside(job.start,
                                                                                                           job.end)
            clips = renderer.repaint(clip, seeds, start, end, noise=job.noise, **common)
        else:
            clips = renderer.extend(clip, seeds, job.seconds, **common)
        each = (time.perf_counter() - began) / len(seeds)
        self.stats.count("rendered", len(clips))
        paths = []
        for clip, seed in zip(clips, seeds):
            paths.append(self.output.spliced(job, renderer, clip, seed))
            self.stats.note_render(job.kind, paths[-1], seed, each, False)
        self.output.deliver(job, paths)

    def _generate_seeds(self, job: GenerateJob | RepaintJob | ExtendJob) -> list[int]:
        state = self.state
        with state.lock:
            if job.seed is not None:
                return list(range(job.seed, job.seed + job.total))
            if state.settings.seed is None:
                return Entry(job.key).seeds(job.total)
            start = state.next_generate_seed if state.next_generate_seed is not None else state.settings.seed
            state.next_generate_seed = start + job.total
            return list(range(start, start + job.total))

    def _run_interpolate(self, job: InterpolateJob) -> None:
        key, renderer = job.key, self.state.renderer
        a = read_audio(job.a.path, job.a.region, fits=self._renderable())
        b = read_audio(job.b.path, job.b.region, fits=self._renderable())
        began = time.perf_counter()
        clips = renderer.interpolate(a, b, job.total, steps=key.steps, sampler=key.sampler, guides=key.guides,
                                     progress=self._progress_hook(job), cancel=self._cancel_hook(job))
        each = (time.perf_counter() - began) / len(clips)
        paths = []
        for index, clip in enumerate(clips, 1):
            paths.append(self.output.interpolated(job, renderer, clip, index))
            self.stats.note_render("interpolate", paths[-1], None, each, False)
        self.output.deliver(job, paths)

    def _run_model(self, job: ModelJob) -> None:
        config, state = self.config, self.state
        renderer = state.renderer
        if not renderer.is_loaded(job.model):  # else queued behind another's load of it: nothing to load
            renderer = Renderer.load(job.model, config.device, config.precision, config.backend)
            self._warm_up(renderer)  # here, on the render thread, before it takes any press
            with state.lock:
                state.renderer = renderer
                state.cache.drop_variations()
                state.lock.notify_all()
            log.info("model: %s on %s (%s)", renderer.info.name, renderer.info.device, renderer.info.precision)
        for waiter in job.waiters:
            waiter.reply("/dd/ack", "set", "model", renderer.info.reference)
