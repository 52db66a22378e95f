"""The OSC transport: one UDP socket, one network thread, replies to the sender and its registered ports.

The network thread only parses and hands requests to the handler, which must return at once (the service
queues anything slow), so `/dd/ping` is answered even while a render runs. Datagrams are split and checked by
``packet`` (bounded work per datagram), and only trusted senders reach the handler (docs/osc.md, "Who may send
requests"): this user's own programs on this machine, or anyone who sends the configured token. Anyone else gets
/dd/pong or a short refusal, never more bytes than REPLY_FACTOR times what they sent.

Nothing that arrives can stop the network thread (an unexpected error is logged and answered), and the service
never talks to itself: nothing is sent to its own address, nothing from it is answered, nor is any reply.
"""

from __future__ import annotations

import errno
import hmac
import ipaddress
import logging
import os
import socket
import threading
import time
from typing import Callable

from pythonosc.osc_message_builder import OscMessageBuilder

from bridge import files
from bridge.errors import BridgeError, described
from bridge.transports.osc import packet, peers, protocol

log = logging.getLogger(__name__)

MAX_DATAGRAM = 65507
MAX_HOSTS = 64  # registered reply ports are bounded: a flood of /dd/hello cannot grow memory
MAX_PORTS_PER_HOST = 8
RECEIVE_BUFFER = 2**20  # room for a burst of hundreds of key presses while the network thread catches up
REPLY_FACTOR = 4  # an untrusted sender gets at most this many times the bytes it sent: no amplification
OWNER_SECONDS = 1.0  # how long who owns a sender's socket is remembered (a flood costs one lookup a second)
REFUSED = "refused: token required"  # short: it must fit in REPLY_FACTOR x the smallest request

Address = tuple[str, int]


def machine_addresses() -> set[str]:
    """The IPv4 addresses of this machine that a name lookup and the outbound route tell (no packet is sent)."""
    found = set()
    try:
        found |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    except OSError:
        pass
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # a documentation address: connect only picks the route
            found.add(probe.getsockname()[0])
    except OSError:
        pass
    return found


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ReplyBudget:
    """The bytes that may still go back to an untrusted sender for one datagram."""

    def __init__(self, request_size: int):
        self.left = REPLY_FACTOR * request_size

    def spend(self, size: int) -> bool:
        if size > self.left:
            return False
        self.left -= size
        return True


def build_message(address: str, args) -> bytes:
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


class OscReply:
    """Where the replies to one request go; the service calls it as ``reply(address, *args)``."""

    def __init__(self, server: "OscServer", sender: Address | None, request_id: str | None,
                 budget: ReplyBudget | None = None):
        self.server = server
        self.sender = sender
        self.request_id = request_id
        self.budget = budget  # an untrusted sender's: to the sender only, and bounded

    def __call__(self, address: str, *args) -> None:
        destinations = [self.sender] if self.budget else self.server.destinations(self.sender)
        self.server.send(destinations, address, protocol.reply_args(self.request_id, args), self.budget)


class OscServer:
    """Receives OSC on ``host:port`` and calls ``handle(request, reply)`` for each valid request.

    Requests that do not parse are answered here with /dd/error and reported to ``on_error(address, message)``.
    ``token``: the shared secret that lets other users and other machines in; required beyond loopback.
    """

    def __init__(self, handle: Callable, host: str = "127.0.0.1", port: int = 9000,
                 reply_port: int | None = None, on_error: Callable[[str, str], None] | None = None,
                 token: str | None = None):
        if not is_loopback(host) and not token:
            raise BridgeError(f"listening on {host} lets other machines send requests: set osc.token in the "
                              "config (a secret the DAW sides then send as token=...)")
        self.handle = handle
        self.on_error = on_error
        self.token = token
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        except OSError:
            pass  # the system's limit stands; a burst beyond it loses datagrams, as UDP may
        try:
            self.socket.bind((host, port))
        except OSError as error:
            self.socket.close()
            raise BridgeError(f"cannot listen for OSC on {host}:{port}: {files.reason(error)}") from None
        self.socket.settimeout(0.2)
        self.host, self.port = self.socket.getsockname()[:2]
        # This machine's own addresses: on every interface (0.0.0.0) its port is "its own" only on them, never on
        # another machine (a controller sending from its own port 9000 is a client, not the service).
        self.own_hosts = {self.host} | (machine_addresses() if self.host in ("0.0.0.0", "") else set())
        # The configured reply port is kept apart from /dd/hello's: no number of hellos can push it out.
        self.default_reply: Address | None = ("127.0.0.1", reply_port) if reply_port else None
        self._reply_ports: dict[str, list[int]] = {}
        self._owners: dict[Address, tuple[float, bool]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.received = 0
        self.malformed = 0
        self.refused = 0
        self.ignored = 0  # replies and datagrams from the service's own address: never answered
        self.withheld = 0  # replies not sent to untrusted senders because they were larger than allowed

    def is_own(self, address: Address) -> bool:
        """Whether ``address`` is this server's socket (its port on loopback or on one of this machine's
        addresses it listens on): what is sent there comes back as a request."""
        host, port = address
        return port == self.port and (is_loopback(host) or host in self.own_hosts)

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
        default = [self.default_reply] if self.default_reply else []
        with self._lock:
            if sender is None:
                found = default + [(host, port) for host, ports in self._reply_ports.items() for port in ports]
            else:
                found = [sender] + (default if sender[0] == "127.0.0.1" else []) + [
                    (sender[0], port) for port in self._reply_ports.get(sender[0], ())]
        return list(dict.fromkeys(found))

    def reply_for(self, sender: Address | None, request_id: str | None = None,
                  budget: ReplyBudget | None = None) -> OscReply:
        return OscReply(self, sender, request_id, budget)

    def send(self, destinations: list[Address], address: str, args, budget: ReplyBudget | None = None) -> None:
        try:
            datagram = build_message(address, args)
        except Exception as error:  # a value the builder cannot encode is our bug; say so and stay up
            log.error("cannot encode reply %s %r: %s", address, args, error)
            return
        if len(datagram) > MAX_DATAGRAM:  # e.g. "no such file: <a 65 kB path>", /dd/done of 64 long paths
            (log.debug if address == "/dd/error" else log.warning)(
                "reply %s is %d bytes, over UDP's limit; sent shortened", address, len(datagram))
            datagram = build_message(*protocol.fitting(address, args, len(datagram)))
        if len(datagram) > MAX_DATAGRAM:
            log.error("reply %s is %d bytes even shortened; not sent", address, len(datagram))
            return
        if budget is not None and not budget.spend(len(datagram)):
            self.withheld += 1
            return
        for destination in destinations:
            if self.is_own(destination):  # it would arrive as a request, be answered, and so on forever
                continue
            try:
                self.socket.sendto(datagram, destination)
            except OSError as error:
                if error.errno != errno.EMSGSIZE:
                    log.debug("reply to %s:%s failed: %s", *destination, error)
                    continue
                # Under MAX_DATAGRAM and still too large for this system (macOS: 9,216 bytes by default): the
                # shortened reply, so the client still hears how its request ended.
                log.warning("reply %s is %d bytes, more than this system sends; sent shortened", address,
                            len(datagram))
                try:
                    self.socket.sendto(build_message(*protocol.fitting(address, args, len(datagram))), destination)
                except OSError as again:
                    log.warning("reply %s to %s:%s not sent: %s", address, *destination, again)

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
            try:
                self.on_datagram(datagram, sender[:2])
            except Exception:  # a bug in handling one datagram must not leave the service deaf for good
                log.exception("datagram from %s:%s failed", *sender[:2])

    # -- who sent it ---------------------------------------------------------------------------------------------
    def from_this_user(self, sender: Address) -> bool:
        """Whether a program of the user running the service sent from ``sender`` (loopback only; where the
        system cannot tell who owns a socket, as on macOS, every loopback sender counts as this user)."""
        if not is_loopback(sender[0]):
            return False
        now = time.monotonic()
        known = self._owners.get(sender)
        if known is not None and now - known[0] < OWNER_SECONDS:
            return known[1]
        uid = peers.owner(sender[0], sender[1])
        mine = uid == peers.UNKNOWN or not hasattr(os, "getuid") or uid == os.getuid()
        if len(self._owners) > 1024:
            self._owners.clear()
        self._owners[sender] = (now, mine)
        return mine

    def token_matches(self, token: str | None) -> bool:
        return bool(self.token and token) and hmac.compare_digest(token.encode(), self.token.encode())

    # -- requests --------------------------------------------------------------------------------------------
    def on_datagram(self, datagram: bytes, sender: Address) -> None:
        if self.is_own(sender):  # a reply of ours that came back (replies never go there: a last guard)
            self.ignored += 1
            return
        budget = None if self.from_this_user(sender) else ReplyBudget(len(datagram))
        try:
            messages = packet.messages(datagram)
        except packet.PacketError as error:
            self.malformed += 1
            message = f"malformed OSC packet: {error}"[:200]
            log.warning("from %s:%s (%d so far): %s", *sender, self.malformed, message)
            if self.on_error:
                self.on_error("?", message)
            self.send([sender], "/dd/error", ["?", message], budget)
            return
        for message in messages:
            self.on_message(message.address, list(message.params), sender, budget)

    def on_message(self, address: str, args: list, sender: Address, budget: ReplyBudget | None = None) -> None:
        try:
            self._on_message(address, args, sender, budget)
        except Exception as error:  # one bad request never takes the network thread down
            log.exception("request %s from %s:%s failed", protocol.excerpt(str(address)), *sender)
            message = f"internal error: {described(error)}"
            if self.on_error:
                self.on_error(address, message)
            request_id, _ = protocol.split_request_id(args)
            self.reply_for(sender, request_id, budget)("/dd/error", address, message)

    def _on_message(self, address: str, args: list, sender: Address, budget: ReplyBudget | None) -> None:
        token, args = protocol.split_token(args)
        if protocol.is_reply(address, protocol.split_request_id(args)[1]):
            self.ignored += 1  # a reply is never answered: two parties answering each other would never stop
            return
        if budget is not None and self.token_matches(token):
            budget = None  # another user or machine that knows the secret: trusted like the owner
        if budget is not None and address != "/dd/ping":
            self.refused += 1
            log.warning("refused %s from %s:%s: not this user's program and no valid token", address, *sender)
            request_id, _ = protocol.split_request_id(args)
            self.reply_for(sender, request_id, budget)("/dd/error", address, REFUSED)
            return
        try:
            request = protocol.parse(address, args)
        except protocol.ProtocolError as error:
            if self.on_error:
                self.on_error(address, str(error))
            self.reply_for(sender, error.request_id, budget)("/dd/error", address, str(error))
            return
        reply = self.reply_for(sender, request.request_id, budget)
        if isinstance(request, protocol.rq.Hello):
            if self.is_own((sender[0], request.port or sender[1])):  # its replies would come back as requests
                message = f"port {self.port} is the service's own: give the port your client listens on"
                if self.on_error:
                    self.on_error(address, message)
                reply("/dd/error", address, message)
                return
            self.register(sender[0], request.port or sender[1])
        try:
            self.handle(request, reply)
        except BridgeError as error:
            reply("/dd/error", address, str(error))

    def stop(self) -> None:
        self._stopping.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self.socket.close()
