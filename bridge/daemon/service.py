"""The service: the facade front ends call. It validates each request, answers what needs no model at once, and
queues the rest for the render thread (bridge.daemon.worker), so it never waits on the model.

Front ends (OSC, MIDI) call ``handle(request, reply)``; ``reply(address, *args)`` sends one reply to whoever asked
(the transport adds the request id). The request handlers are here, one per request type; the queue policy is in
jobqueue, the render loop and the prefetch policy in worker, files and the replies announcing them in output,
counters and recent renders in stats. The threads, and what each may touch, are listed in bridge/daemon/__init__.py.

Over 300 lines: one short handler per request type (vary, generate, interpolate, repaint, extend, keep, play,
set, select, cancel, status...), each checking its request the same way; split by kind, those checks would drift.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Callable

from bridge import __version__, constants, files
from bridge.daemon import requests as rq
from bridge.daemon import steering
from bridge.daemon.audition import Audition
from bridge.daemon.config import Config, recipes_folder
from bridge.daemon.jobs import (Busy, ExtendJob, GenerateJob, InterpolateJob, ModelJob, PrefetchJob, RepaintJob,
                                Reply, VaryJob, Waiter, client_of)
from bridge.daemon.output import Output
from bridge.daemon.prefetch import RenderKey, Source, open_source, probe_source
from bridge.daemon.renderer import Renderer
from bridge.daemon.settings import GUIDE_SEPARATOR
from bridge.daemon.state import State, first
from bridge.daemon.stats import Stats
from bridge.daemon.worker import Worker
from bridge.daemon.writer import SampleFolder, discard
from bridge.engine.audio import kept_format
from bridge.engine.guides import recipes
from bridge.engine.regions import Region, repaint_end
from bridge.engine.tempo import Bars
from bridge.errors import AudioError, BridgeError, ConfigError, one_line

log = logging.getLogger(__name__)

RENDER_KEYS = ("noise", "steps", "sampler", "seed", "guide", "recipe")  # they change the audio: prefetch goes stale
GUIDANCE_KEYS = ("guide", "recipe")
# A DAW's menu lists at most this many recipe names (100 characters at most each: the reply stays a few kB)
MAX_RECIPES_LISTED = 200


class Service:
    def __init__(self, config: Config, renderer: Renderer):
        self.config = config
        self.folders = SampleFolder(config.folder, config.writable_folders)
        self.stats = Stats()
        # Told in every /dd/hello answer: a DAW whose requests were in flight when the service restarted learns that
        # this one never heard them, and says so, instead of waiting for ever.
        self.run_id = secrets.token_hex(constants.RUN_ID_HEX // 2)
        self.state = State(config, renderer, self.folders.default, self.stats)
        self.state.guides = steering.guidance(config.render.guide, config.render.recipe, renderer.info.sample_rate,
                                              relative=True)  # a bad one stops the start with one line
        self.audition = Audition(config.audio_output, config.audio_latency)
        self.output = Output(self.folders, self.state.lock, self.stats, self.audition)
        self.worker = Worker(config, self.state, self.output, self.stats)
        self.status_extras: dict[str, Callable[[], object]] = {}  # more status sections: the OSC server's, MIDI's
        self._stopped = False
        self._handlers: dict[type, Callable[..., None]] = {
            rq.Ping: self._on_ping, rq.Hello: self._on_hello, rq.Status: self._on_status,
            rq.Select: self._on_select, rq.Vary: self._on_vary, rq.Generate: self._on_generate,
            rq.Interpolate: self._on_interpolate, rq.Set: self._on_set, rq.Cancel: self._on_cancel,
            rq.Keep: self._on_keep, rq.Play: self._on_play,
            rq.Repaint: self._on_repaint, rq.Extend: self._on_extend, rq.GuideWeight: self._on_guide_weight,
            rq.Recipes: self._on_recipes, rq.SaveRecipe: self._on_save_recipe,
        }
        self.status_extras["audio"] = self.audition.status

    # -- life ------------------------------------------------------------------------------------------------
    def start(self) -> "Service":
        self.folders.clear_leftovers()
        if self.config.render.audition:
            self.audition.prepare()
        self.worker.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop rendering (between steps), refuse what is queued, let a file being written finish, then return.
        Bounded where a disk may hang: a write waits at most output.WRITE_GRACE_S, the staging folder's cleanup
        files.DISK_ANSWER_SECONDS (the render thread is waited for ``timeout``: None waits for it, however long).

        A render stops at its next sampler step; one model call cannot be cut short (a long clip's takes minutes on
        a CPU), so after ``timeout`` seconds the render thread is left to the process's exit: its requests are told
        the service is stopping, and it writes nothing more."""
        state = self.state
        with state.lock:
            if self._stopped:
                return
            self._stopped = state.stopping = True
            if state.running is not None:
                state.running.cancelled.set()
            dropped = state.queue.clear()
            state.lock.notify_all()
        for job in dropped:
            self.output.fail(job, "the service is stopping")
        self.worker.join(timeout)
        self.output.close()  # the writer's answers out, a file being written finished; nothing is written from now on
        with state.lock:
            running = state.running if self.worker.alive else None
            stuck = None if running is None or isinstance(running, PrefetchJob) else running  # prefetch: no one asked
            waiters = stuck.waiters if stuck is not None else []
            if stuck is not None:
                stuck.waiters = []  # answered here; the render thread, should it return, answers no one
        for waiter in waiters:
            waiter.error("the service is stopping")
        with state.lock:
            staged = state.cache.all_variations() + state.cache.take_dropped()
        self.audition.close()  # what was heard and not kept goes with the staging folder

        def clear() -> None:
            for variation in staged:
                discard(variation.staged)
            self.folders.clear_staging()

        # Waited for as any look at a disk is (files.answered): the staging folder's disk may be a share that stopped
        # answering, and the stop must still end; what is left there the next start clears.
        try:
            files.answered(clear, self.folders.staging, BridgeError)
        except BridgeError:
            log.warning("the staging folder %s has not answered in %g s; its files are left for the next start "
                        "to clear", self.folders.staging, files.DISK_ANSWER_SECONDS)
        except Exception as error:  # a share come back broken (EIO): said in one line, not a traceback
            log.warning("the staging folder %s was not cleared (%s); the next start clears it",
                        self.folders.staging, one_line(error) or type(error).__name__)

    @property
    def still_rendering(self) -> bool:
        """After ``stop``: whether the render thread is still inside a model call (it will write nothing)."""
        return self.worker.alive

    # The parts of the shared state other modules and the tests read and set (under the lock).
    @property
    def selected(self) -> Source | None:
        with self.state.lock:
            return self.state.selected

    @selected.setter
    def selected(self, source: Source | None) -> None:
        with self.state.lock:
            self.state.selected = source

    @property
    def folder(self) -> Path:
        with self.state.lock:
            return self.state.folder

    @property
    def renderer(self) -> Renderer:
        with self.state.lock:
            return self.state.renderer

    # -- requests (the door's thread, bridge.daemon.door; ping, hello, status the transports'; never wait on the model)
    def handle(self, request: rq.Request, reply: Reply) -> None:
        self.stats.count("requests")
        try:
            self._handlers[type(request)](request, reply)
        except BridgeError as error:
            self.note_error(request.address, str(error), quiet=isinstance(error, Busy))
            reply("/dd/error", request.address, str(error))
        finally:
            # The staged files of variations this request made stale, deleted on the writer thread: an unlink in a
            # sample folder on a hung share would hold the door (or, for ping, the network thread) for good.
            self.output.discard_later(self.state.take_dropped())

    def note_error(self, address: str, message: str, quiet: bool = False) -> None:
        self.stats.note_error(address, message, quiet)

    def _on_ping(self, request: rq.Ping, reply: Reply):
        reply("/dd/pong", __version__)

    def _on_hello(self, request: rq.Hello, reply: Reply):
        reply("/dd/hello", __version__, self.run_id)

    def _on_status(self, request: rq.Status, reply: Reply):
        reply("/dd/status", json.dumps(self.status(), separators=(",", ":")))

    def _on_recipes(self, request: rq.Recipes, reply: Reply):
        # Bounded as every look: the config folder is on a network share where the home folder is (NFS homes).
        folder = recipes_folder()
        listed = files.answered(lambda: recipes.names(folder), folder, ConfigError)
        reply("/dd/recipes", *listed[:MAX_RECIPES_LISTED])

    def _on_save_recipe(self, request: rq.SaveRecipe, reply: Reply):
        """What a producer dialled in, kept by name: the settings' guides as renders use them (their recipe's and
        their own, in the order they act), written as a new file in the recipes folder (never over one)."""
        with self.state.lock:
            guides = self.state.guides
        if not guides:
            raise ConfigError(f"recipe {request.name!r} not saved: no guides are set (turn a dial, pick a Class, "
                              "or /dd/set guide first)")
        folder = recipes_folder()  # a small new file, waited for as long as a look (the folder may be on a share)
        path = files.answered(lambda: recipes.save_recipe(request.name, guides, folder), folder, ConfigError)
        reply("/dd/ack", "save_recipe", request.name, str(path))

    def _on_select(self, request: rq.Select, reply: Reply):
        source = open_source(request.path, request.region)
        state = self.state
        with state.lock:
            if state.selected != source or state.selected_loop != (request.loop, request.bars):
                state.cancel_prefetch()
            state.selected = source
            state.selected_loop = (request.loop, request.bars)
            state.select_waiter = Waiter(reply, request, 0)
            state.prefetch_paused = False
            state.cache.entry(source, state.prefetch_key()).failed = None
            state.lock.notify_all()
        reply("/dd/ack", "select", request.path)

    def _on_vary(self, request: rq.Vary, reply: Reply):
        options, state = request.options, self.state
        if request.path:
            source = open_source(request.path, options.region)
        else:
            with state.lock:
                selected = state.selected
            if selected is None:
                raise ConfigError("no clip selected: send /dd/select <path> first, or give the path")
            source = self._as_on_disk(selected)
            if options.region is not None:  # a key press with its own region of the selected file
                source = open_source(source.path, options.region)
        noise = request.noise if request.noise is not None else options.noise
        guides = self._guidance(options)
        with state.lock:
            count = first(request.count, options.count, state.settings.count)
            # A press of the selected clip without loop= makes what the selection said it is: loops of a loop.
            selection = state.selected_loop if not request.path else (False, None)
            if source.region is not None:  # the region rendered: the press's own, or the selection's
                source.region.check_loop(looping(options, selection)[0])
            kind = constants.vary_kind(looping(options, selection)[0])
            key = looped(state.render_key(noise, options.steps, options.sampler, guides, kind=kind), options,
                         selection=selection)
            fmt = options.format or state.settings.format
            audition = state.settings.audition
        job = VaryJob(waiters=[Waiter(reply, request, count)], source=source, key=key, seed=options.seed,
                      folder=self._folder(options), format=fmt, audition=audition, velocity=request.velocity)
        with state.lock:
            if state.stopping:
                raise BridgeError("the service is stopping")
            if job.seed is None:
                job.taken = state.cache.take(source, key, count)
                self.stats.count("prefetch_hits", len(job.taken))
            if job.to_render > 0:
                self.stats.count("prefetch_misses")
                try:
                    state.enqueue(job)
                except Busy:
                    state.give_back(job)
                    raise
            else:  # already rendered: named on the writer thread at once, whatever the render thread is doing
                try:
                    self.output.answer_now(job)
                except BridgeError:  # the writer has shut down: the service is stopping
                    state.give_back(job)
                    raise

    def _as_on_disk(self, selected: Source) -> Source:
        """The selected clip as it is on disk now. Replaced or edited since it was selected, it is selected anew:
        its prefetched variations and decoded audio are of the old sound, so they are dropped and the file is read
        again (else the files would name a source their recreate command no longer reproduces). Gone: an error."""
        try:
            current = replace(files.answered(lambda: Source.of(selected.path), selected.path, AudioError),
                              region=selected.region)
        except AudioError as error:
            raise AudioError(f"{error} (the selected clip changed since /dd/select)") from None
        if current == selected:
            return selected
        source = open_source(selected.path, selected.region)  # probed; its region checked against the new file
        state = self.state
        with state.lock:
            if state.selected == selected:
                state.selected = source
                state.cancel_prefetch()
                state.lock.notify_all()
            state.cache.forget_stale(source)
        log.info("%s changed on disk since it was selected: its variations start afresh", source.path)
        return source

    def _render_settings(self, request, guides, count: int | None = None, keeps: tuple | None = None):
        """(count, render key, file format) of a request: its own options over the settings, read in one look.
        ``keeps``: (header, name) of the source a repaint or an extension keeps outside what it renders: the
        settings' format widened where the source holds more (audio.kept_format); a request's format= as it is."""
        options, state = request.options, self.state
        with state.lock:
            if count is None:
                count = first(request.count, options.count, state.settings.count)
            key = state.render_key(None, options.steps, options.sampler, guides)
            fmt = options.format or state.settings.format
        if keeps is not None and options.format is None:
            fmt = kept_format(keeps[0], fmt, keeps[1])
        return count, replace(key, resample=options.resample), fmt

    def _on_generate(self, request: rq.Generate, reply: Reply):
        options, state = request.options, self.state
        guides = self._guidance(options, relative=False)
        with state.lock:
            count = first(request.count, options.count, state.settings.count)
            one_shot = not options.loop  # a generated loop is rendered as a variation of silence
            kind = constants.NEW_SOUND if one_shot else constants.OTHER
            key = looped(state.render_key(None, options.steps, options.sampler, guides, kind=kind), options,
                         seconds=request.seconds, generate=True)
            fmt = options.format or state.settings.format
        job = GenerateJob(waiters=[Waiter(reply, request, count)], key=key, seed=options.seed,
                          folder=self._folder(options), format=fmt, seconds=request.seconds)
        with state.lock:
            state.enqueue(job)

    def _on_interpolate(self, request: rq.Interpolate, reply: Reply):
        options, state = request.options, self.state
        a, b = open_source(request.a, options.region), open_source(request.b, options.region_b)
        count = first(request.count, options.count, 5)
        if count < 2:
            raise ConfigError(f"count must be in 2..{constants.MAX_COUNT} for an interpolation (it includes a and b)")
        count, key, fmt = self._render_settings(request, self._guidance(options), count)
        job = InterpolateJob(waiters=[Waiter(reply, request, count)], a=a, b=b, key=key, folder=self._folder(options),
                             format=fmt)
        with state.lock:
            state.enqueue(job)

    def _on_repaint(self, request: rq.Repaint, reply: Reply):
        options, state = request.options, self.state
        # a clip of a region: only it is rendered and written; the range must lie in the file
        source, header = probe_source(request.path, options.clip_region)
        header.region(Region(options.start, options.end), source.name)
        end = repaint_end(options.start, options.end, header.frames / header.sample_rate, source.region)
        if source.region is not None:
            source.region.inside(options.start, end)
        count, key, fmt = self._render_settings(request, self._guidance(options), keeps=(header, source.name))
        job = RepaintJob(waiters=[Waiter(reply, request, count)], source=source, key=key, start=options.start,
                         end=end, noise=first(options.noise, 1.0), seed=options.seed,
                         folder=self._folder(options), format=fmt)
        with state.lock:
            state.enqueue(job)

    def _on_extend(self, request: rq.Extend, reply: Reply):
        options, state = request.options, self.state
        source, header = probe_source(request.path, options.region)  # a region of the file: continued from its end
        bars = Bars.of(options.bars, options.bpm)
        length = {"seconds": request.seconds} if bars is None else {"bars": bars.bars, "bpm": bars.bpm}
        count, key, fmt = self._render_settings(request, self._guidance(options), keeps=(header, source.name))
        job = ExtendJob(waiters=[Waiter(reply, request, count)], source=source, key=key, seed=options.seed,
                        seconds=request.seconds if bars is None else bars.seconds, length=length,
                        folder=self._folder(options), format=fmt)
        with state.lock:
            state.enqueue(job)

    def _on_set(self, request: rq.Set, reply: Reply):
        key, value, state = request.key, request.value, self.state
        shown = "random" if value is None else value
        if key == "model":
            with state.lock:
                loading = isinstance(state.running, ModelJob) or any(isinstance(job, ModelJob) for job in state.queue)
                renderer = state.renderer
            # Named again (REAPER names it before every request): its files are looked at within a bounded wait.
            if not loading and files.answered(lambda: renderer.is_loaded(value), value or "the model", ConfigError):
                reply("/dd/ack", "set", key, renderer.info.reference)
                return
            with state.lock:
                state.enqueue(ModelJob(waiters=[Waiter(reply, request, 0)], model=value))
            return  # acknowledged once loaded
        if key == "folder":
            folder = self._resolved(value)
            with state.lock:
                state.folder = folder
            reply("/dd/ack", "set", key, str(folder))
            return
        if key in GUIDANCE_KEYS:  # read and checked before anything changes: a bad one leaves the settings as they are
            with state.lock:
                wanted = replace(state.settings, **{key: value})
            guides = steering.guidance(wanted.guide, wanted.recipe, self.renderer.info.sample_rate, relative=True)
            shown = (GUIDE_SEPARATOR.join(value) if key == "guide" else value) or "off"
        with state.lock:
            if key == "sampler":
                state.check_sampler(value)
            state.settings = replace(state.settings, **{key: value})
            if key in GUIDANCE_KEYS:
                state.guides = guides
            if key in RENDER_KEYS:
                state.cache.drop_variations()
                state.cancel_prefetch()
                state.next_generate_seed = None
            state.prefetch_paused = False
            state.lock.notify_all()
        if key == "audition" and value:
            self.audition.prepare()
        shown = ("on" if value else "off") if key == "audition" else shown
        reply("/dd/ack", "set", key, shown)

    def _on_guide_weight(self, request: rq.GuideWeight, reply: Reply):
        """A MIDI knob: the guide of that name in the settings' guides gets the weight, and no target (0: out)."""
        wanted = [f"{request.name}={request.weight:g}"] if request.weight else []
        with self.state.lock:
            guides = self.state.settings.guide
        others = [text for text in guides if text.partition("=")[0].strip().lower() != request.name]
        at = next((i for i, text in enumerate(guides) if text not in others), len(others))  # its place, if it had one
        value = tuple(others[:at] + wanted + others[at:])
        self._on_set(rq.Set(request_id=request.request_id, key="guide", value=value), reply)

    def _on_cancel(self, request: rq.Cancel, reply: Reply):
        """Drops the sender's own requests (and MIDI's, which have no sender), queued or rendering; other clients'
        work goes on. The prefetch is no one's request: any /dd/cancel drops it and pauses it. With request=#ID,
        only that request of the sender's: a client giving up on one request (`dd-bridge send` timed out) leaves
        the producer's key presses and the prefetch as they are."""
        state = self.state
        with state.lock:
            cancelled = state.detach(client_of(reply), only=request.only)
            if request.only is None:
                state.cancel_prefetch()
                state.cache.drop_variations()
                state.prefetch_paused = True  # until the next /dd/select or /dd/set
        for waiter in cancelled:
            self.note_error(waiter.request.address, "cancelled by /dd/cancel")
            waiter.error("cancelled by /dd/cancel")
        reply("/dd/ack", "cancel")

    def _on_keep(self, request: rq.Keep, reply: Reply):
        heard, passed = self.audition.take(request.count or 1)
        self.output.discard_later([item.variation for item in passed])
        if not heard:
            raise ConfigError("nothing heard to keep: /dd/set audition on, then vary")
        self.output.keep_now(heard, reply)

    def _on_play(self, request: rq.Play, reply: Reply):
        self.audition.play(Path(request.path), failed=lambda message: reply("/dd/error", request.address, message),
                           started=lambda: reply("/dd/ack", "play", request.path), velocity=request.velocity)

    def _guidance(self, options: rq.Options, *, relative: bool = True) -> steering.Guides | None:
        """A request's own guides (guide=, recipe=: they replace the settings'), checked at the door; None: the
        settings' (checked when set). ``relative``: the render has a source; new sounds have none, so a target
        relative to one is refused for them, the settings' included."""
        rate = self.renderer.info.sample_rate
        if options.guide is None and options.recipe is None:
            if relative:
                return None
            with self.state.lock:
                guides = self.state.guides
            return steering.checked(guides, rate, False)
        return steering.guidance(options.guide or (), options.recipe, rate, relative=relative)

    def _folder(self, options: rq.Options) -> Path:
        if options.folder:
            return self._resolved(options.folder)
        with self.state.lock:
            return self.state.folder

    def _resolved(self, folder: str) -> Path:
        """A request's folder, resolved (bridge.daemon.writer.SampleFolder.resolve) within a bounded wait: a sample
        folder on a network share that stopped answering is refused, not waited on by the door."""
        return files.answered(lambda: self.folders.resolve(folder), folder, ConfigError)

    # -- status ----------------------------------------------------------------------------------------------
    def status(self) -> dict:
        renderer = self.renderer  # once: info and memory of the same model, whatever loads meanwhile
        info = renderer.info
        # the longest clip the memory free now allows (docs/osc.md, Limits); measured outside the lock
        longest = round(renderer.engine.longest_length() / info.sample_rate, 1)
        data = {
            "version": __version__,
            "model": info.name, "model_ref": info.reference, "model_hash": info.hash,
            "model_recreatable": info.recreatable,
            "device": info.device, "precision": info.precision,
            "sample_rate": info.sample_rate, "window": info.window,
            "longest_seconds": longest,
            **self.state.snapshot(),
        }
        data.update(self.stats.snapshot())
        data.update(self.output.status())  # a write held by a disk that stopped answering shows here
        for name, value in self.status_extras.items():
            data[name] = value()
        return data


def looping(options: rq.Options, selection: tuple[bool, Bars | None]) -> tuple[bool, Bars | None]:
    """(loop, bars) a request makes: its own loop= where it gives one, else the selection's."""
    loop, bars = options.looping
    return selection if loop is None else (loop, bars)


def looped(key: RenderKey, options: rq.Options, *, seconds: float | None = None, generate: bool = False,
           selection: tuple[bool, Bars | None] = (False, None)) -> RenderKey:
    """The render key of a request with loop=on (bars= at bpm=: that long; a variation without them: its clip's
    length); without loop=, the selection's (``selection``: a press of the selected clip); bars= or bpm= without
    loop=on, or a generated loop without them, are refused. resample= goes with a loop only (a plain variation or
    sound has no known part to resample toward)."""
    loop, bars = looping(options, selection)
    if options.resample is not None and not loop:
        raise ConfigError("resample= goes with loops (loop=on, or a press of a clip selected with loop=on), "
                          "/dd/repaint and /dd/extend: a plain render keeps nothing to resample toward")
    key = replace(key, resample=options.resample)
    if options.loop is None:
        return replace(key, loop=loop, bars=bars)
    if not loop:
        return key
    if generate and (bars is None or seconds is not None):
        raise ConfigError("a generated loop takes its length from bars= and bpm= (not seconds)")
    return replace(key, loop=True, bars=bars)
