"""The daemon's life: bind the OSC port, load the model, start the service, the OSC server and MIDI, stop on a signal,
and stop them in order. `dd-bridge serve`, `dd-bridge bench-latency` and the tests' running service all start here.

The one module of the daemon that sits above the transports: it wires them to the service. Nothing in bridge.daemon
or bridge.transports imports it.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from typing import Callable

from bridge import constants
from bridge.daemon.config import Config
from bridge.daemon.door import Door
from bridge.daemon.renderer import Renderer
from bridge.daemon.service import Service
from bridge.transports.midi import MidiInput, MidiTriggers
from bridge.transports.osc.server import OscServer

log = logging.getLogger(__name__)

STOP_GRACE_S = 2.0  # a render stops at its next step; a model call longer than this is left to the exit


class App:
    """One service behind its OSC port (and MIDI, where the config names a port)."""

    def __init__(self, config: Config, renderer: Renderer | None = None):
        """Bind, then load ``config.model`` unless a renderer is given (the tests' and the benchmark's own)."""
        self.config = config
        # Bind first: a port in use fails in a second, not after the model has loaded.
        self.server = OscServer(None, config.osc_host, config.osc_port, config.reply_port, token=config.osc_token)
        try:
            if renderer is None:
                log.info("loading model %s ...", config.model or constants.DEFAULT_MODEL)
                renderer = Renderer.load(config.model, config.device, config.precision, config.backend)
            self.service = Service(config, renderer)
        except BaseException:
            self.server.stop()
            raise
        server = self.server
        # Both transports hand their requests to the door, which handles them in order on its own thread: a look at a
        # file on a hung share never holds the network thread (keep-alives unanswered) or rtmidi's.
        self.door = Door(self.service.handle, self.service.note_error)
        server.handle, server.on_error = self.door.handle, self.service.note_error
        self.service.status_extras["door"] = self.door.status  # what waits behind a disk, or a flood
        self.service.status_extras["osc"] = lambda: {"host": server.host, "port": server.port,
                                                     "received": server.received, "malformed": server.malformed,
                                                     "refused": server.refused, "withheld": server.withheld}
        self.midi = None

    def start(self) -> "App":
        """The service (its warm-up over), then its door, OSC and MIDI."""
        self._start(None)
        return self

    def _start(self, stopping: threading.Event | None) -> bool:
        """start; False where ``stopping`` was set first (Ctrl-C or a service manager's SIGTERM during the warm-up,
        which takes minutes a shape on a GPU), with nothing past the service started: ``stop`` then ends it."""
        self.service.start()
        # The model's warm-up runs on the render thread (CUDA graphs belong to the thread that records them); the
        # service says it is ready once it is over, as when the warm-up ran while loading.
        while not self.service.worker.warmed.wait(0.2):
            if stopping is not None and stopping.is_set():
                return False
        self.door.start()
        self.server.start()
        config = self.config
        triggers = MidiTriggers(self.door.handle, self.server.reply_for(None), dict(config.midi_notes),
                                dict(config.midi_cc), channel=config.midi_channel)
        # A named controller's port is watched (plugged in late, or unplugged and back): its thread opens and closes it.
        self.midi = midi = MidiInput(triggers, config.midi_port).start()
        # The port as it is now (a controller unplugged: connected false), not the name it had at start.
        self.service.status_extras["midi"] = lambda: {
            **midi.status(), "channel": triggers.channel if triggers.channel is not None else "all",
            "received": triggers.received, "other_channel": triggers.other_channel}
        return True

    def stop(self, timeout: float | None = STOP_GRACE_S) -> None:
        """MIDI closed, the door closed (what waits there answered), the service stopped (the file being written
        finished), then the OSC port closed."""
        if self.midi is not None:
            self.midi.close()  # the watcher stopped at once, the port closed
            self.midi = None
        self.door.stop()
        self.service.stop(timeout=timeout)
        self.server.stop()

    def serve(self, ready: Callable[[], None]) -> None:
        """Start, call ``ready`` (which says so), and run until SIGINT or SIGTERM; then stop."""
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        # The start-up's objects (torch, the model: some 200k) out of the collector's sight: a full collection of them
        # holds every thread, the OSC one included, for a few hundred ms (340 ms measured on 2 busy cores).
        gc.freeze()
        try:
            if self._start(stop):
                ready()
                while not stop.wait(0.5):
                    pass
        finally:
            log.info("stopping: finishing the file being written ...")
            self.stop()
            log.info("stopped")

    @property
    def still_rendering(self) -> bool:
        """After ``stop``: whether the render thread is still inside a model call (it will write nothing)."""
        return self.service.still_rendering
