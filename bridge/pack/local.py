"""The workers of a pack on this machine: the engine in this process (one worker), or one process per GPU, or
--workers processes on the CPU (torch's threads split between them), each holding a warm engine.

Every kind of workers (these and cluster.RayWorkers) offers the same four calls: ``describe()`` (the model, for
the licence and attribution), ``results(jobs)`` (each job's Rendered as soon as it is done, in any order; jobs are
taken a few at a time, so a pack of any size keeps a few sources' audio in memory), ``stop()`` (Ctrl-C: the work
ends now; the Rendered that had come back and were not yet taken) and ``close()``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace

import torch

from bridge.errors import BridgeError
from bridge.pack.render import Rendered, TaskRenderer, Where

IN_FLIGHT_PER_WORKER = 2  # one rendering, one waiting: a worker never idles on the driver
STOP_S = 5.0  # how long a stopped worker process may take to end


class WorkerDied(BridgeError):
    """A local worker process ended in the middle of the pack."""


def plan_workers(device: str, workers: int | None, threads: int | None = None) -> list[Where]:
    """One worker per CUDA device when there are GPUs (and the device allows them), else ``workers`` (default 1)
    CPU workers, each with ``threads`` of torch's CPU threads (default: the cores shared out)."""
    if device in ("auto", "cuda"):
        gpus = torch.cuda.device_count()
        if gpus:
            return [Where("cuda", gpu=i) for i in range(gpus if workers is None else min(workers, gpus))]
    count = workers or 1
    return [Where(device, threads=threads or cpu_threads(count)) for _ in range(count)]


def cpu_threads(workers: int) -> int:
    """The cores shared out among CPU workers (torch's CPU kernels split sums by thread: the same count gives the
    same bytes, so a pack records it)."""
    return max(1, (os.cpu_count() or 1) // workers)


def open_workers(settings: dict, where: list[Where]):
    return InProcess(settings, where[0]) if len(where) == 1 else LocalPool(settings, where)


class InProcess:
    """One worker: the engine in this process."""

    def __init__(self, settings: dict, where: Where):
        self.threads = torch.get_num_threads()
        self.renderer = TaskRenderer(settings, where)

    def describe(self) -> dict:
        return self.renderer.describe()

    def results(self, jobs: Iterable[tuple]) -> Iterator[Rendered]:
        for job in jobs:
            yield self.renderer.render(*job)

    def stop(self) -> list[Rendered]:
        return []  # the render ran in this process: the interrupt has ended it already

    def close(self) -> None:
        torch.set_num_threads(self.threads)  # this process goes on as it was (a test, a notebook)


class LocalPool:
    """Worker processes (spawned: no inherited torch state), each with its own warm engine."""

    def __init__(self, settings: dict, where: list[Where]):
        context = multiprocessing.get_context("spawn")
        places = context.Queue()
        for one in where:
            places.put(one)
        self.size = len(where)
        self.pool = ProcessPoolExecutor(len(where), mp_context=context, initializer=_start,
                                        initargs=(settings, places, os.getpid()))
        self.waiting: set[Future] = set()  # submitted, not yet handed to the driver

    def describe(self) -> dict:
        return self._result(self.pool.submit(_describe))

    def results(self, jobs: Iterable[tuple]) -> Iterator[Rendered]:
        for future in bounded(self._submit, jobs, self.size * IN_FLIGHT_PER_WORKER):
            self.waiting.discard(future)
            yield self._result(future)

    def _submit(self, job: tuple) -> Future:
        future = self.pool.submit(_render, job)
        self.waiting.add(future)
        return future

    def stop(self) -> list[Rendered]:
        """The worker processes ended now (SIGTERM), not after their renders in flight (minutes each with a large
        model on the CPU); the renders that had come back and were not yet taken."""
        arrived = [future.result() for future in self.waiting
                   if future.done() and not future.cancelled() and future.exception() is None]
        self.waiting.clear()
        # Python before 3.11.5 (gh-94777): the executor, seeing its workers killed, joins its call queue's feeder
        # thread, which may be stuck writing jobs into a pipe no worker reads any more; the process then never
        # exited after Ctrl-C ("interrupted", and waiting for good). The jobs are given up anyway: not joined.
        calls = getattr(self.pool, "_call_queue", None)
        if calls is not None:
            calls.cancel_join_thread()
        processes = list((getattr(self.pool, "_processes", None) or {}).values())
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(STOP_S)  # gone at once (SIGTERM's default); waited for, so none is left behind
        self.pool.shutdown(wait=False, cancel_futures=True)
        return arrived

    def _result(self, future: Future):
        try:
            return future.result()
        except BrokenProcessPool:
            raise WorkerDied("a pack worker process ended unexpectedly (out of memory?); run the same command "
                             "again to finish the pack") from None

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def bounded(submit: Callable[[tuple], Future], jobs: Iterable[tuple], window: int) -> Iterator[Future]:
    """Each job submitted, at most ``window`` at a time; their futures as they finish."""
    pending: set[Future] = set()
    for job in jobs:
        pending.add(submit(job))
        if len(pending) >= window:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from done
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        yield from done


# -- in the worker process ----------------------------------------------------------------------------------------
_renderer: TaskRenderer | None = None
_failed: BridgeError | None = None  # why this worker has no engine (no such model, no such device)


def _start(settings: dict, places, parent: int) -> None:
    global _renderer, _failed
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the driver decides
    where = places.get()
    if where.gpu is not None:  # this worker's GPU is its only one, before CUDA starts in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = str(where.gpu)
        where = replace(where, gpu=None)
    threading.Thread(target=_orphaned, args=(parent,), daemon=True).start()
    try:
        _renderer = TaskRenderer(settings, where)
    except BridgeError as error:  # handed to the driver with the first call, as one line: an initializer's
        _failed = error  # exception would print a traceback and break the pool ("ended unexpectedly")


def _orphaned(parent: int) -> None:
    """A driver killed outright (SIGKILL) cannot stop its workers: they see it gone and end themselves."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _engine() -> TaskRenderer:
    if _renderer is None:
        raise _failed
    return _renderer


def _describe() -> dict:
    return _engine().describe()


def _render(job: tuple) -> Rendered:
    return _engine().render(*job)
