"""A real service on loopback for the daemon, transport and CLI tests: a micro model made here, real UDP sockets,
started and stopped by bridge.daemon.app as `dd-bridge serve` does; and the fixtures those suites share (import
them into a conftest: ``from tests.support.service import _one_torch_thread, drum, renderer``).

The model has the real architecture at its smallest (4 levels, no attention) so a variation of a drum one-shot
renders in a fraction of a second even on a busy 2-core machine.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from pythonosc.osc_packet import OscPacket

from bridge.daemon.app import App
from bridge.daemon.config import Config
from bridge.daemon.renderer import Renderer
from bridge.daemon.service import Service
from bridge.daemon.settings import Settings
from bridge.engine.checkpoints import LoadedModel
from bridge.engine.unet import DanceDiffusionUNet, UNetConfig
from bridge.transports.osc.client import OscClient
from bridge.transports.osc.server import OscServer, build_message

MICRO = UNetConfig(channels=(8, 8, 16, 16), n_attn_layers=0)
WINDOW = 8192


def micro_model(seed: int = 0) -> LoadedModel:
    torch.manual_seed(seed)
    return LoadedModel.from_network(DanceDiffusionUNet(MICRO), name="micro", sample_rate=48000, window=WINDOW,
                                    provenance="random weights made by the tests")


@contextlib.contextmanager
def one_thread():
    """Torch's default of one thread per core fights the other processes of a busy 2-core machine: 100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def service_config(folder: Path, **changes) -> Config:
    render = changes.pop("render", {})
    config = Config(folder=folder / "samples", allowed_folders=(folder,), osc_port=0, reply_port=None,
                    midi_port=None, render=Settings(**{"steps": 3, "prefetch": 2, **render}))
    return replace(config, **changes)


class Running:
    """A started service and OSC server; ``client`` talks to it, ``ask`` sends one request and waits."""

    def __init__(self, service: Service, server: OscServer):
        self.service, self.server = service, server
        self.port = server.port
        self.client = OscClient("127.0.0.1", server.port)

    def ask(self, address: str, *args, timeout: float = 30.0):
        reply = self.client.request(address, list(args), timeout=timeout)
        assert reply is not None, f"no reply to {address}"
        return reply

    def status(self) -> dict:
        return json.loads(self.ask("/dd/status").args[0])

    def wait_for(self, condition, timeout: float = 30.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status()
            if condition(status):
                return status
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}: {self.status()}")


@contextlib.contextmanager
def running_service(config: Config, renderer: Renderer):
    app = App(config, renderer).start()
    running = Running(app.service, app.server)
    try:
        yield running
    finally:
        running.client.close()
        app.stop(timeout=30)


class Listener:
    """A UDP socket that records every OSC message sent to it (replies, progress, broadcasts)."""

    def __init__(self):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2**22)  # hears every reply to a flood
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.port = self.socket.getsockname()[1]
        self.messages: list[tuple[str, list]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self):
        while not self._stop.is_set():
            try:
                datagram = self.socket.recv(65536)
            except (socket.timeout, OSError):
                continue
            for timed in OscPacket(datagram).messages:
                self.messages.append((timed.message.address, list(timed.message.params)))

    def send(self, port: int, address: str, *args) -> None:
        self.socket.sendto(build_message(address, args), ("127.0.0.1", port))

    def send_raw(self, port: int, datagram: bytes) -> None:
        self.socket.sendto(datagram, ("127.0.0.1", port))

    def wait_for(self, predicate, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in list(self.messages) if predicate(m)]
            if found:
                return found
            time.sleep(0.01)
        raise AssertionError(f"no matching message; got {self.messages[-5:]}")

    def close(self):
        self._stop.set()
        self._thread.join()
        self.socket.close()


# -- fixtures ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def renderer() -> Renderer:
    with one_thread():
        return Renderer(micro_model(), "micro", device="cpu")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with one_thread():
        yield


@pytest.fixture
def drum(tmp_path, drum_samples):
    """A real one-shot (mono 44.1 kHz wav) copied where the test owns it."""
    source = tmp_path / "in" / "kick.wav"
    source.parent.mkdir()
    shutil.copy(drum_samples["wav"], source)
    return source
