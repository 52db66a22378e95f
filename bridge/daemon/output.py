"""The service's files: prefetched variations written ahead into the staging folder, results named or written into
the sample folder (bridge.daemon.writer), each with the metadata and the recreate command of what made it.

One lock is held around every file written: ``close`` takes it and keeps it, so a file being written is finished
and none is started after the service has stopped, even while the render thread is still inside a model call that
cannot be interrupted.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from bridge import constants
from bridge.daemon.jobs import GenerateJob, InterpolateJob, VaryJob
from bridge.daemon.prefetch import RenderKey, Source, Variation
from bridge.daemon.writer import SampleFolder
from bridge.errors import BridgeError

if TYPE_CHECKING:
    from bridge.daemon.renderer import Renderer
    from bridge.engine.audio import Clip

log = logging.getLogger(__name__)


def recipe(key: RenderKey, fmt: str, *, count: int = 1, seed: int | None = None, **own) -> dict:
    """The options a file's metadata names and its recreate command takes, for every kind the service renders:
    ``own`` are the kind's own (vary: noise and shape; generate: seconds). None values are left out."""
    return {"count": count, "seed": seed, **own, "steps": key.steps, "sampler": key.sampler, "format": fmt}


def vary_recipe(key: RenderKey, seed: int, fmt: str) -> dict:
    # The service renders at the default shape (bridge.engine.clips.vary_clip); named so the command recreates it.
    return recipe(key, fmt, seed=seed, noise=key.noise, shape=constants.DEFAULT_SHAPE)


class Output:
    def __init__(self, folders: SampleFolder):
        self.folders = folders
        self._lock = threading.Lock()

    def close(self) -> None:
        """Wait for a file being written; from now on nothing is written (the lock is kept)."""
        self._lock.acquire()

    def stage(self, source: Source, key: RenderKey, variation: Variation, fmt: str) -> Variation:
        """Write a prefetched variation ahead, so that a key press only has to name it."""
        metadata = variation.renderer.metadata("vary", [source.path], vary_recipe(key, variation.seed, fmt),
                                               regions=[source.region])
        try:
            with self._lock:
                staged = self.folders.stage(variation.clip, fmt, metadata)
        except (BridgeError, OSError) as error:
            log.warning("could not write a variation ahead (%s); it will be written when asked for", error)
            return variation
        return replace(variation, staged=staged, staged_format=fmt)

    def variation(self, job: VaryJob, variation: Variation) -> Path:
        """A variation into the job's folder: its staged file named where it is in the job's format, else written."""
        sources, regions = (job.source.path,), (job.source.region,)
        with self._lock:
            if variation.staged is not None and variation.staged_format == job.format:
                try:
                    return self.folders.publish(variation.staged, job.folder, operation="vary", sources=sources,
                                                regions=regions)
                except OSError as error:  # e.g. the folder is on another disk: write it out instead
                    log.debug("could not link %s: %s", variation.staged, error)
            metadata = variation.renderer.metadata("vary", list(sources),
                                                   vary_recipe(job.key, variation.seed, job.format), regions=regions)
            return self.folders.write(job.folder, variation.clip, job.format, metadata, operation="vary",
                                      sources=sources, regions=regions)

    def generated(self, job: GenerateJob, renderer: Renderer, clip: Clip, seed: int) -> Path:
        metadata = renderer.metadata("generate", [], recipe(job.key, job.format, seed=seed, seconds=job.seconds))
        with self._lock:
            return self.folders.write(job.folder, clip, job.format, metadata, operation="generate",
                                      model=renderer.info.name)

    def interpolated(self, job: InterpolateJob, renderer: Renderer, clip: Clip, index: int) -> Path:
        sources, regions = (job.a.path, job.b.path), (job.a.region, job.b.region)
        metadata = renderer.metadata("interpolate", list(sources), recipe(job.key, job.format, count=job.total),
                                     regions=regions, index=index)
        with self._lock:
            return self.folders.write(job.folder, clip, job.format, metadata, operation="interpolate",
                                      sources=sources, regions=regions)
