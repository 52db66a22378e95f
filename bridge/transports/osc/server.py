"""The OSC transport: one UDP socket, one network thread, replies to the sender and its registered ports.

The network thread only parses and hands requests to the handler, which must return at once (the service
queues anything slow), so `/dd/ping` is answered even while a render runs.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Callable

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from bridge.errors import BridgeError
from bridge.transports.osc import protocol

log = logging.getLogger(__name__)

MAX_DATAGRAM = 65507
MAX_HOSTS = 64  # registered reply ports are bounded: a flood of /dd/hello cannot grow memory
MAX_PORTS_PER_HOST = 8
RECEIVE_BUFFER = 2**20  # room for a burst of hundreds of key presses while the network thread catches up

Address = tuple[str, int]


def build_message(address: str, args) -> bytes:
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


class OscReply:
    """Where the replies to one request go; the service calls it as ``reply(address, *args)``."""

    def __init__(self, server: "OscServer", sender: Address | None, request_id: str | None):
        self.server = server
        self.sender = sender
        self.request_id = request_id

    def __call__(self, address: str, *args) -> None:
        self.server.send(self.server.destinations(self.sender), address, protocol.reply_args(self.request_id, args))


class OscServer:
    """Receives OSC on ``host:port`` and calls ``handle(request, reply)`` for each valid request.

    Requests that do not parse are answered here with /dd/error and reported to ``on_error(address, message)``.
    """

    def __init__(self, handle: Callable, host: str = "127.0.0.1", port: int = 9000,
                 reply_port: int | None = None, on_error: Callable[[str, str], None] | None = None):
        self.handle = handle
        self.on_error = on_error
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        except OSError:
            pass  # the system's limit stands; a burst beyond it loses datagrams, as UDP may
        try:
            self.socket.bind((host, port))
        except OSError as error:
            self.socket.close()
            raise BridgeError(f"cannot listen for OSC on {host}:{port}: {error.strerror or error}") from None
        self.socket.settimeout(0.2)
        self.host, self.port = self.socket.getsockname()[:2]
        self._reply_ports: dict[str, list[int]] = {}
        if reply_port:
            self._reply_ports["127.0.0.1"] = [reply_port]
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.received = 0
        self.malformed = 0

    # -- replies ---------------------------------------------------------------------------------------------
    def register(self, host: str, port: int) -> None:
        with self._lock:
            if host not in self._reply_ports and len(self._reply_ports) >= MAX_HOSTS:
                self._reply_ports.pop(next(iter(self._reply_ports)))
            ports = self._reply_ports.setdefault(host, [])
            if port not in ports:
                ports.append(port)
                del ports[:-MAX_PORTS_PER_HOST]

    def destinations(self, sender: Address | None) -> list[Address]:
        """The sender and the reply ports registered for its host; without a sender (MIDI), every registered port."""
        with self._lock:
            if sender is None:
                found = [(host, port) for host, ports in self._reply_ports.items() for port in ports]
            else:
                found = [sender] + [(sender[0], port) for port in self._reply_ports.get(sender[0], ())]
        return list(dict.fromkeys(found))

    def reply_for(self, sender: Address | None, request_id: str | None = None) -> OscReply:
        return OscReply(self, sender, request_id)

    def send(self, destinations: list[Address], address: str, args) -> None:
        try:
            datagram = build_message(address, args)
        except Exception as error:  # a value the builder cannot encode is our bug; say so and stay up
            log.error("cannot encode reply %s %r: %s", address, args, error)
            return
        if len(datagram) > MAX_DATAGRAM:
            log.error("reply %s is %d bytes, over UDP's limit; not sent", address, len(datagram))
            return
        for destination in destinations:
            try:
                self.socket.sendto(datagram, destination)
            except OSError as error:
                log.debug("reply to %s:%s failed: %s", *destination, error)

    # -- receiving -------------------------------------------------------------------------------------------
    def start(self) -> "OscServer":
        self._thread = threading.Thread(target=self.serve_forever, name="osc", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                datagram, sender = self.socket.recvfrom(MAX_DATAGRAM + 1)
            except socket.timeout:
                continue
            except OSError as error:
                if self._stopping.is_set():
                    break
                log.debug("receive failed: %s", error)  # e.g. ICMP port unreachable from an earlier reply
                continue
            self.received += 1
            self.on_datagram(datagram, sender[:2])

    def on_datagram(self, datagram: bytes, sender: Address) -> None:
        try:
            messages = [timed.message for timed in OscPacket(datagram).messages]
        except Exception as error:  # ParseError, and whatever else a hostile datagram makes the parser raise
            self.malformed += 1
            message = f"malformed OSC packet: {error}"[:200]
            log.warning("from %s:%s (%d so far): %s", *sender, self.malformed, message)
            if self.on_error:
                self.on_error("?", message)
            self.send([sender], "/dd/error", ["?", message])
            return
        for message in messages:
            self.on_message(message.address, list(message.params), sender)

    def on_message(self, address: str, args: list, sender: Address) -> None:
        try:
            request = protocol.parse(address, args)
        except protocol.ProtocolError as error:
            if self.on_error:
                self.on_error(address, str(error))
            self.reply_for(sender, error.request_id)("/dd/error", address, str(error))
            return
        reply = self.reply_for(sender, request.request_id)
        if isinstance(request, protocol.rq.Hello):
            self.register(sender[0], request.port or sender[1])
        try:
            self.handle(request, reply)
        except BridgeError as error:
            reply("/dd/error", address, str(error))
        except Exception as error:  # one bad request never takes the service down
            log.exception("request %s failed", address)
            reply("/dd/error", address, f"internal error: {type(error).__name__}: {error}")

    def stop(self) -> None:
        self._stopping.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self.socket.close()
