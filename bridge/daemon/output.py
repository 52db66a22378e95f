"""What goes out of the service: files and the replies that announce them.

Prefetched variations are written ahead into the staging folder; results are named or written into the sample
folder (bridge.daemon.writer), each with the metadata and the recreate command of what made it, and announced to
the requests waiting for them (/dd/done, or /dd/error). A press answered wholly from prefetch is answered on the
writer thread (one worker), so that a press which must rewrite its files (another format, another disk) never holds
up the door (bridge.daemon.door), and the staged files of stale variations are deleted there too (discard_later).

One lock is held around every file written, and the write in hand (its folder, since when) is in ``status``: a
write to a network share that stopped answering blocks in the kernel, where no one can interrupt it, so it shows
there and `dd-bridge status` says so. ``close`` lets a file being written finish, waiting at most WRITE_GRACE_S for
it and for the writer thread's queue: a stop (Ctrl-C, a DAW quitting) on a hung share then still ends, leaving that
write to the process's exit (it goes under a hidden temporary name, bridge.files, so nothing half-written is ever
seen under a real name; the next start clears it). No file is started after ``close``, even while the render thread
is still inside a model call that cannot be interrupted. Jobs' waiters are read and changed under the service's
lock (bridge.daemon.state).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from bridge import constants
from bridge.daemon.audition import STOPPING, Press
from bridge.daemon.jobs import ExtendJob, GenerateJob, InterpolateJob, Job, RepaintJob, VaryJob, Waiter
from bridge.daemon.prefetch import RenderKey, Source, Variation
from bridge.daemon.stats import Stats
from bridge.daemon.writer import SampleFolder, discard
from bridge.engine.regions import clip_options
from bridge.engine.tempo import Bars, loop_label
from bridge.errors import BridgeError

if TYPE_CHECKING:
    from bridge.daemon.audition import Audition, Heard
    from bridge.daemon.renderer import Renderer
    from bridge.engine.audio import Clip

log = logging.getLogger(__name__)

# How long a stop waits for the writes in hand and queued: a local disk writes a variation in milliseconds and a
# live share in well under a second; one that has not finished in this long is waiting on a disk that stopped
# answering, and the stop goes on without it.
WRITE_GRACE_S = 5.0


def recipe(key: RenderKey, fmt: str, *, count: int = 1, seed: int | None = None, **own) -> dict:
    """The options a file's metadata names and its recreate command takes, for every kind the service renders:
    ``own`` are the kind's own (vary: noise and shape; generate: seconds). None values are left out; the guides
    go in as --guide (the renderer adds the mode they ran in)."""
    return {"count": count, "seed": seed, **own, "steps": key.steps, "sampler": key.sampler, "format": fmt,
            **key.resample_options(), **key.guide_options()}


def vary_recipe(key: RenderKey, seed: int, fmt: str) -> dict:
    # The service renders at the default shape (bridge.engine.clips.vary_clip); named so the command recreates it.
    return recipe(key, fmt, seed=seed, noise=key.noise, shape=constants.DEFAULT_SHAPE, **key.loop_options())


class Awaiting:
    """Someone waiting for the files being written (a press, a keep), answered once: by whoever ``claim``s it first,
    the write (its files, or its error) or a close that leaves the write behind (``tell``). A plain flag let both
    answer when the write finished just as the close gave up on it."""

    def __init__(self, error: Callable[[str], object]):
        self.error = error
        self._lock = threading.Lock()
        self._claimed = False

    def claim(self) -> bool:
        """True for the first caller only: it answers; everyone after it says nothing."""
        with self._lock:
            first, self._claimed = not self._claimed, True
            return first

    def tell(self, message: str) -> None:
        if self.claim():
            self.error(message)


class WriterThread:
    """One daemon thread, "writer", running what is handed to it in order. Not a ThreadPoolExecutor: an executor's
    threads are joined when the interpreter exits, so one blocked in a write to a hung share hung the exit for good."""

    def __init__(self):
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()  # (task, dropped), or None: the end
        self._lock = threading.Lock()  # submit and shutdown: nothing is put in after the end mark
        self._shut = False
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self._thread.start()

    def submit(self, task: Callable[[], object], dropped: Callable[[], object] | None = None) -> None:
        """Run ``task`` after what was handed in before; ``dropped`` is called instead if the writer is shut down
        before it starts (its waiters told). RuntimeError once shut down (as an executor's submit)."""
        with self._lock:
            if self._shut:
                raise RuntimeError("the writer has shut down")
            self._tasks.put((task, dropped))

    def shutdown(self, timeout: float) -> bool:
        """Take nothing more; wait at most ``timeout`` seconds for what was handed in; whether it all ran. Tasks not
        started by then (behind one held by a disk) are dropped: their ``dropped`` called here."""
        with self._lock:
            if not self._shut:
                self._shut = True
                self._tasks.put(None)
        self._thread.join(max(0.0, timeout))
        if not self._thread.is_alive():
            return True
        while True:
            try:
                item = self._tasks.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._tasks.put(None)  # the end mark stays for the thread, should it come back
                break
            if item[1] is not None:
                try:
                    item[1]()
                except Exception:
                    log.exception("telling a dropped task's waiters failed")
        return False

    def _run(self) -> None:
        while (item := self._tasks.get()) is not None:
            try:
                item[0]()
            except Exception:  # the tasks answer their own errors; one that does not never ends the writer
                log.exception("a task on the writer thread failed")


class Output:
    def __init__(self, folders: SampleFolder, lock: threading.Condition, stats: Stats, audition: Audition):
        self.folders, self.stats, self.audition = folders, stats, audition
        self._state_lock = lock  # the service's: guards the jobs' waiters, taken and unsent, and _awaiting
        self._write_lock = threading.Lock()
        self._closed = False  # set by close: a write that takes the lock after it writes nothing
        self._in_hand: tuple[str, float] | None = None  # the write holding the lock: its folder, since when
        self._awaiting: list[Awaiting] = []  # who waits for the files being written now (a press, a keep)
        self._writer = WriterThread()

    def close(self, grace: float | None = None) -> bool:
        """Let the writer thread's answers go out (presses already answered from prefetch get their files) and a file
        being written finish, waiting at most ``grace`` seconds (WRITE_GRACE_S) in all; from now on nothing is
        written. Whether everything finished: False when a write is left waiting on a disk; then whoever waits for
        it, or for what was queued behind it, is told the service is stopping (and told nothing more)."""
        deadline = time.monotonic() + (WRITE_GRACE_S if grace is None else grace)
        drained = self._writer.shutdown(deadline - time.monotonic())
        self._closed = True
        finished = self._write_lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
        if finished:
            self._write_lock.release()  # a write taking it now sees _closed and writes nothing
        if drained and finished:
            return True
        in_hand = self._in_hand
        if in_hand is not None:
            log.warning("a file being written to %s has not finished in %.0f s (its disk is not answering); "
                        "stopping without it: it stays under a hidden temporary name, cleared at the next start",
                        in_hand[0], time.monotonic() - in_hand[1])
        with self._state_lock:
            awaiting, self._awaiting = self._awaiting, []
        for waiting in awaiting:
            waiting.tell("the service is stopping")
        return False

    def status(self) -> dict:
        """The write in hand, with how long it has been (a disk not answering holds it), else nulls."""
        in_hand = self._in_hand  # once: the writing thread replaces it
        return {"writing": in_hand[0] if in_hand else None,
                "writing_seconds": round(time.monotonic() - in_hand[1], 1) if in_hand else None}

    @contextlib.contextmanager
    def _answering(self, error: Callable[[str], object]):
        """Around the writes someone waits for: a close that leaves them behind tells them (``Awaiting``)."""
        waiting = Awaiting(error)
        with self._state_lock:
            self._awaiting.append(waiting)
        try:
            yield waiting
        finally:
            with self._state_lock:
                if waiting in self._awaiting:
                    self._awaiting.remove(waiting)

    @contextlib.contextmanager
    def _writing(self, folder: Path):
        """Around every file written: the write lock, the write in hand for ``status``; after ``close`` a
        BridgeError instead (the render thread may come back from a model call long after the stop)."""
        with self._write_lock:
            if self._closed:
                raise BridgeError("the service is stopping")
            self._in_hand = (str(folder), time.monotonic())
            try:
                yield
            finally:
                self._in_hand = None

    # -- replies -------------------------------------------------------------------------------------------------
    def answer_now(self, job: VaryJob) -> None:
        """Answer a press whose variations were all taken from prefetch, on the writer thread, whatever the render
        thread is doing; BridgeError once the writer has shut down (the service is stopping)."""
        try:
            self._writer.submit(lambda: self._answer_from_prefetch(job),
                                dropped=lambda: self.fail(job, "the service is stopping"))
        except RuntimeError:
            raise BridgeError("the service is stopping") from None

    def _answer_from_prefetch(self, job: VaryJob) -> None:
        try:
            with self._state_lock:
                taken = list(job.taken)
            self.answer(job, taken)
        except Exception as error:  # one bad request never takes the writer down
            log.exception("answering a press from prefetch failed")
            self.fail(job, f"internal error: {type(error).__name__}: {error}")
        finally:
            with self._state_lock:
                self._state_lock.notify_all()  # refill what was taken, once the answer is out

    def answer(self, job: VaryJob, fresh: list[Variation]) -> None:
        """Add ``fresh`` variations to the job's unsent ones; write and announce each waiter's (in the order they
        came) as soon as all of its variations are there. An answered waiter leaves the job: a later failure or
        cancellation is not its concern."""
        while True:
            with self._state_lock:
                job.unsent += fresh
                fresh = []
                if not job.waiters or len(job.unsent) < job.waiters[0].count:
                    return
                waiter = job.waiters.pop(0)
                mine, job.unsent = job.unsent[:waiter.count], job.unsent[waiter.count:]
                prefetched = [variation in job.taken for variation in mine]
            if job.audition:
                with self._answering(waiter.error) as waiting:  # its staging writes may hang too
                    self._hear(job, mine, waiter, waiting)
                continue
            with self._answering(waiter.error) as waiting:
                try:
                    paths = [self.variation(job, variation) for variation in mine]
                except BridgeError as error:
                    paths = None
                    if waiting.claim():
                        self.stats.note_error(waiter.request.address, str(error))
                        waiter.error(str(error))
                finally:
                    for variation in mine:
                        discard(variation.staged)  # published ones are gone already; the rest are of no use now
            if paths is None or not waiting.claim():  # answered already (the service stopped without these files)
                continue
            for path, variation, was_prefetched in zip(paths, mine, prefetched):
                self.stats.note_render("vary", path, variation.seed, variation.seconds, was_prefetched)
            waiter.reply("/dd/done", job.kind, *map(str, paths))

    def _hear(self, job: VaryJob, variations: list[Variation], waiter: Waiter,
              waiting: Awaiting | None = None) -> None:
        """Audition: each played and held back, written ahead into the staging folder (if it is not there yet)
        so that a keep press only names it. One after another: the first cuts what plays, the others follow it.
        The waiter is answered "heard N" once they are all with the audio output, or told that they could not be
        played (held back all the same: a keep writes them); by ``waiting``'s claim, so not after a stop that gave
        up on a staging write and told it so."""
        waiting = waiting or Awaiting(waiter.error)

        def heard(count: int) -> None:
            if waiting.claim():
                waiter.reply("/dd/ack", job.kind, "heard", count)

        def not_heard(message: str) -> None:
            if not waiting.claim():
                return
            if message == STOPPING:
                # Not played because the service is stopping: what is held goes with it (Audition.close) and no
                # keep is taken any more, so it is refused as any request is then, not as a press kept unheard.
                self.stats.note_error(waiter.request.address, message)
                waiter.error(message)
                return
            message = f"not heard: {message}; keep writes {'it' if len(variations) == 1 else 'them'} all the same"
            self.stats.note_error(waiter.request.address, message, quiet=True)  # the audio thread said it
            waiter.error(message)
        press = Press(len(variations), heard=heard, failed=not_heard)
        for index, variation in enumerate(variations):
            if variation.staged is None or variation.staged_format != job.format:
                discard(variation.staged)
                variation = self.stage(job.source, job.key, replace(variation, staged=None), job.format)
            self.audition.hear(job, variation, follows=index > 0, press=press)

    def discard_later(self, variations: list[Variation]) -> None:
        """Delete the staged files of ``variations`` on the writer thread, after what it is writing: the threads
        that hand them over (the door, the network thread) never wait on a disk. Stopping, they are left to the
        staging folder's cleanup."""
        staged = [variation.staged for variation in variations if variation.staged is not None]
        if not staged:
            return
        try:
            self._writer.submit(lambda: [discard(path) for path in staged])
        except RuntimeError:  # the writer has shut down: the stop empties the staging folder
            pass

    def keep_now(self, heard: list[Heard], reply) -> None:
        """Write variations held back by audition into their presses' folders, on the writer thread; announce them
        as /dd/done vary, as a press outside audition is. One that fails part way announces what it wrote and gives
        the rest back to audition, held to be kept again (the folder may come back: a disk remounted)."""
        def refused(message: str) -> None:
            reply("/dd/error", "/dd/keep", message)

        def keep() -> None:
            paths = []
            try:
                with self._answering(refused) as waiting:
                    for item in heard:
                        paths.append(self.variation(item.job, item.variation))
                        discard(item.variation.staged)  # published: gone already; written out: of no use now
                        self.stats.note_render("vary", paths[-1], item.variation.seed, item.variation.seconds, True)
                if not waiting.claim():  # answered already: the service stopped without these files
                    return
            except Exception as error:
                if not waiting.claim():
                    return
                message = str(error) if isinstance(error, BridgeError) else \
                    f"internal error: {type(error).__name__}: {error}"
                if not isinstance(error, BridgeError):
                    log.exception("keep failed")
                self.audition.restore(heard[len(paths):])
                if paths:
                    reply("/dd/done", "vary", *map(str, paths))
                self.stats.note_error("/dd/keep", message)
                reply("/dd/error", "/dd/keep", message)
                return
            reply("/dd/done", "vary", *map(str, paths))
        try:
            self._writer.submit(keep, dropped=lambda: refused("the service is stopping"))
        except RuntimeError:
            raise BridgeError("the service is stopping") from None

    def deliver(self, job: Job, paths: list[Path]) -> None:
        """Each waiter its share of ``paths``, in the order they came."""
        start = 0
        with self._state_lock:
            waiters = list(job.waiters)
        for waiter in waiters:
            mine = paths[start:start + waiter.count]
            start += waiter.count
            waiter.reply("/dd/done", job.kind, *map(str, mine))

    def fail(self, job: Job, message: str) -> None:
        with self._state_lock:
            waiters = list(job.waiters)
        for waiter in waiters:
            self.stats.note_error(waiter.request.address, message)
            waiter.error(message)

    # -- files ---------------------------------------------------------------------------------------------------
    def stage(self, source: Source, key: RenderKey, variation: Variation, fmt: str) -> Variation:
        """Write a prefetched variation ahead, so that a key press only has to name it."""
        metadata = variation.made.metadata("vary", [source.path], vary_recipe(key, variation.seed, fmt),
                                           regions=[source.region])
        try:
            with self._writing(self.folders.staging):
                staged = self.folders.stage(variation.clip, fmt, metadata)
        except (BridgeError, OSError) as error:
            log.warning("could not write a variation ahead (%s); it will be written when asked for", error)
            return variation
        return replace(variation, staged=staged, staged_format=fmt)

    def variation(self, job: VaryJob, variation: Variation) -> Path:
        """A variation into the job's folder: its staged file named where it is in the job's format, else written."""
        sources, regions = (job.source.path,), (job.source.region,)
        label = loop_label(job.key.loop, job.key.bars)
        with self._writing(job.folder):
            if variation.staged is not None and variation.staged_format == job.format:
                try:
                    return self.folders.publish(variation.staged, job.folder, operation="vary", sources=sources,
                                                regions=regions, label=label)
                except OSError as error:  # e.g. the folder is on another disk: write it out instead
                    log.debug("could not link %s: %s", variation.staged, error)
            metadata = variation.made.metadata("vary", list(sources),
                                               vary_recipe(job.key, variation.seed, job.format), regions=regions)
            return self.folders.write(job.folder, variation.clip, job.format, metadata, operation="vary",
                                      sources=sources, regions=regions, label=label)

    def generated(self, job: GenerateJob, renderer: Renderer, clip: Clip, seed: int) -> Path:
        metadata = renderer.metadata("generate", [], recipe(job.key, job.format, seed=seed, seconds=job.seconds,
                                                            **job.key.loop_options()))
        with self._writing(job.folder):
            return self.folders.write(job.folder, clip, job.format, metadata, operation="generate",
                                      model=renderer.info.name, label=loop_label(job.key.loop, job.key.bars))

    def spliced(self, job: RepaintJob | ExtendJob, renderer: Renderer, clip: Clip, seed: int) -> Path:
        """A repaint ("<source>/<source> repaint 0.500-1.000s NNN.wav") or an extension ("<source>/<source> ext
        2.000s NNN.wav"), beside the source's variations."""
        regions = (job.source.region,)  # of a region: "<source> 1.000-2.000s ext 2.000s NNN.wav"
        if isinstance(job, RepaintJob):  # start/end are its range: its clip's region goes as --clip-start/--clip-end
            own = {"start": job.start, "end": job.end, "noise": job.noise, **clip_options(job.source.region)}
            label, located = f"repaint {job.start:.3f}-{job.end:.3f}s", ()
        else:
            own = job.length
            label = "ext " + (Bars(job.length["bars"], job.length["bpm"]).label if "bars" in job.length
                              else f"{job.seconds:.3f}s")
            located = regions
        metadata = renderer.metadata(job.kind, [job.source.path], recipe(job.key, job.format, seed=seed, **own),
                                     regions=located)
        with self._writing(job.folder):
            return self.folders.write(job.folder, clip, job.format, metadata, operation=job.kind,
                                      sources=(job.source.path,), regions=regions, label=label)

    def interpolated(self, job: InterpolateJob, renderer: Renderer, clip: Clip, index: int) -> Path:
        sources, regions = (job.a.path, job.b.path), (job.a.region, job.b.region)
        metadata = renderer.metadata("interpolate", list(sources), recipe(job.key, job.format, count=job.total),
                                     regions=regions, index=index)
        with self._writing(job.folder):
            return self.folders.write(job.folder, clip, job.format, metadata, operation="interpolate",
                                      sources=sources, regions=regions)
