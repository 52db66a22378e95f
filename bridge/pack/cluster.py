"""A pack rendered on a Ray cluster (`dd-bridge pack --ray auto|local|ADDRESS`): one actor per GPU, or per CPU slot of
--threads CPUs (default 1), each holding a warm engine (render.TaskRenderer); the driver hands each actor a few
tasks at a time and writes what streams back, exactly as with local workers (driver.py).

Ray is the optional extra `cluster`; only `dd-bridge pack --ray` imports this module, and the rest of DD Bridge
never imports Ray. What fails is redone: an actor whose process dies is restarted by Ray and its tasks retried
(``max_restarts``, ``max_task_retries``); an actor gone for good has its tasks handed to the others (up to
ATTEMPTS per task). An error in the task itself (a bad file) is the same on every actor: it ends the pack with
its one line, the files so far kept for the rerun.

Every actor loads the model by the name or path the plan gives and reads guide files by path: on a cluster of
several machines, give a model name from `dd-bridge models` (fetched on each with `models get`) or a path on
shared storage. Source audio travels from the driver (each source put in the object store once).
"""

from __future__ import annotations

import logging
import os
import socket
from collections import deque
from collections.abc import Iterable, Iterator

from bridge import constants
from bridge.errors import BridgeError
from bridge.pack.render import Rendered, TaskRenderer, Where

log = logging.getLogger(__name__)

EXTRA = "cluster"
IN_FLIGHT_PER_ACTOR = 2  # one rendering, one waiting: an actor never idles on a round trip
RESTARTS = 3  # Ray brings a dead actor back this often (its process killed, its node lost) ...
ATTEMPTS = 3  # ... and a task whose actor is gone for good is handed to another this often
CONNECT_S = 5.0  # how long a cluster's address may take to answer


class ClusterError(BridgeError):
    """Ray missing, no cluster at the address, or no actor left."""


def require():
    """The ray module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--ray needs Ray, which is not installed: {constants.install_command(EXTRA)}") from None
    return ray


class PackActor:
    """A Ray actor's state: one warm engine."""

    def __init__(self, settings: dict, where: Where):
        self.renderer = TaskRenderer(settings, where)

    def describe(self) -> dict:
        return self.renderer.describe()

    def render(self, task, source, path, region) -> Rendered:
        return self.renderer.render(task, source, path, region)

    def pid(self) -> int:
        return os.getpid()


def _largest_node_cpus(ray) -> int | None:
    """The CPUs of the cluster's largest live node (an actor's CPUs are on one node), None if Ray does not say."""
    try:
        cpus = [node.get("Resources", {}).get("CPU", 0) for node in ray.nodes() if node.get("Alive")]
    except Exception as error:  # noqa: BLE001 - only a check before placing: Ray places (or waits) as before
        log.debug("Ray: listing the nodes: %s", error)
        return None
    return int(max(cpus)) if cpus else None


class RayWorkers:
    """Actors on the cluster at ``address`` (a Ray already started in this process is used as it is): one per GPU
    or per ``threads`` CPUs, at most ``actors``."""

    def __init__(self, settings: dict, *, address: str = "auto", device: str = "auto", threads: int | None = None,
                 actors: int | None = None):
        ray = self.ray = require()
        _check_reachable(address)
        self.started = not ray.is_initialized()
        if self.started:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, ValueError, RuntimeError) as error:
                raise ClusterError(f"--ray {address}: no Ray cluster there ({str(error).splitlines()[0]})") from None
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0)) if device in ("auto", "cuda") else 0
        if gpus:
            count, options, where = gpus, {"num_gpus": 1, "num_cpus": 1}, Where("cuda")
        else:
            threads = threads or 1
            count, options = int(resources.get("CPU", 0)) // threads, {"num_cpus": threads}
            where = Where("cpu" if device == "auto" else device, threads=threads)
            largest = _largest_node_cpus(ray)
            if count >= 1 and largest is not None and largest < threads:
                # Enough CPUs in all but none on one node: Ray would wait for good to place an actor.
                raise ClusterError(f"no node of the Ray cluster has {threads} CPUs for one actor (the largest has "
                                   f"{largest}): give --threads {largest} or fewer")
        if count < 1:
            raise ClusterError(f"the Ray cluster has no GPU and fewer than {threads} CPUs for one actor (give "
                               "--threads to ask for fewer)")
        count = count if actors is None else min(count, actors)
        actor = ray.remote(PackActor).options(max_restarts=RESTARTS, max_task_retries=RESTARTS, **options)
        self.actors = [actor.remote(settings, where) for _ in range(count)]
        self._source, self._source_ref = None, None
        self.redone = 0  # tasks handed to another actor after theirs was lost

    def describe(self) -> dict:
        return self._get(self.actors[0].describe.remote())

    def results(self, jobs: Iterable[tuple]) -> Iterator[Rendered]:
        """Each job's Rendered as it comes back; a job whose actor is lost goes to the front of the queue."""
        jobs, waiting = iter(jobs), deque()  # waiting: (job, attempts) handed back by a lost actor
        in_flight: dict = {}  # object ref -> (job, attempts, actor)
        load = {actor: 0 for actor in self.actors}
        while True:
            for actor in list(load):
                while load[actor] < IN_FLIGHT_PER_ACTOR:
                    job, attempts = waiting.popleft() if waiting else (next(jobs, None), 0)
                    if job is None:
                        break
                    in_flight[actor.render.remote(job[0], self._put(job[1]), *job[2:])] = (job, attempts, actor)
                    load[actor] += 1
            if not in_flight:
                return
            (ref,), _ = self.ray.wait(list(in_flight), num_returns=1)
            job, attempts, actor = in_flight.pop(ref)
            if actor in load:
                load[actor] -= 1
            try:
                done = self.ray.get(ref)
            except self.ray.exceptions.RayActorError:
                if attempts + 1 >= ATTEMPTS:
                    raise ClusterError(f"{job[0].file}: lost {ATTEMPTS} actors rendering it; run the same command "
                                       "again to finish the pack") from None
                if load.pop(actor, None) is not None:  # gone for good (Ray's restarts spent)
                    log.warning("pack: a Ray actor is lost; its tasks go to the %d others", len(load))
                waiting.append((job, attempts + 1))
                self.redone += 1
                if not load:
                    raise ClusterError("every Ray actor is lost; run the same command again to finish the pack")
                continue
            except self.ray.exceptions.RayTaskError as error:
                raise _cause(error) from None
            yield done

    def _put(self, clip):
        """A source's audio in the object store once for its run of tasks (the driver hands them out in order)."""
        if clip is not self._source:
            self._source, self._source_ref = clip, self.ray.put(clip)
        return self._source_ref

    def _get(self, ref):
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as error:
            raise _cause(error) from None

    def stop(self) -> list[Rendered]:
        return []  # close() ends the actors at once (ray.kill), their renders in flight with them

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        if self.started:
            self.ray.shutdown()


def _check_reachable(address: str) -> None:
    """A HOST:PORT that nothing answers is one line within CONNECT_S (Ray itself would retry for minutes)."""
    if address in ("auto", "local") or "://" in address or ":" not in address:
        return  # Ray finds these itself, or refuses them at once
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_S).close()
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error) or "timed out"
        raise ClusterError(f"--ray {address}: no Ray cluster answers there ({reason})") from None


def _cause(error) -> Exception:
    """The exception a task raised, as itself (a BridgeError keeps its one line)."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, Exception) else ClusterError(str(error).splitlines()[0])
