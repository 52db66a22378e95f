"""The OSC server over real loopback sockets, with a plain handler: where replies go, what a bad packet gets."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest
from pythonosc.osc_message import OscMessage

from bridge.daemon import requests as rq
from bridge.errors import BridgeError
from bridge.transports.osc import peers
from bridge.transports.osc.client import Answer, OscClient
from bridge.transports.osc.server import REFUSED, REPLY_FACTOR, OscServer, build_message
from tests.support.service import Listener
from tests.transports.osc.datagrams import bundle


def echo(request, reply):
    if isinstance(request, rq.Ping):
        reply("/dd/pong", "v")
    elif isinstance(request, rq.Hello):
        reply("/dd/hello", "v")
    else:
        raise RuntimeError("boom")


def test_replies_go_to_the_sender_and_each_registered_port_once():
    default_port, extra = Listener(), Listener()
    server = OscServer(echo, "127.0.0.1", 0, reply_port=default_port.port).start()
    try:
        with OscClient("127.0.0.1", server.port) as client:
            assert client.request("/dd/ping").args == ("v",)
            default_port.wait_for(lambda m: m[0] == "/dd/pong")
            extra.send(server.port, "/dd/hello", "#h")  # registers the sender's own port
            extra.wait_for(lambda m: m[0] == "/dd/hello" and m[1] == ["#h", "v"])
            extra.send(server.port, "/dd/hello", default_port.port)  # already registered: still one copy
            client.request("/dd/ping")
            extra.wait_for(lambda m: m[0] == "/dd/pong")
        default_port.wait_for(lambda m: len([x for x in default_port.messages if x[0] == "/dd/pong"]) >= 2)
        time.sleep(0.1)  # a duplicate would have arrived by now
        assert len([m for m in default_port.messages if m[0] == "/dd/pong"]) == 2
        assert server.destinations(None) == [("127.0.0.1", default_port.port), ("127.0.0.1", extra.port)]
    finally:
        server.stop()
        default_port.close()
        extra.close()


def test_a_failing_handler_is_answered_and_the_server_stays_up():
    errors = []
    server = OscServer(echo, "127.0.0.1", 0, on_error=lambda *e: errors.append(e)).start()
    listener = Listener()
    try:
        listener.send(server.port, "/dd/status", "#s")
        [(_, args)] = listener.wait_for(lambda m: m[0] == "/dd/error")
        assert args[:2] == ["#s", "/dd/status"] and "internal error: RuntimeError: boom" in args[2]
        listener.send_raw(server.port, b"\xff\xfe not osc")
        listener.wait_for(lambda m: m[0] == "/dd/error" and m[1][0] == "?")
        listener.send(server.port, "/dd/vary", "/a.wav", 99)
        listener.wait_for(lambda m: m[0] == "/dd/error" and m[1][0] == "/dd/vary")
        assert server.malformed == 1 and [e[0] for e in errors] == ["/dd/status", "?", "/dd/vary"]
        with OscClient("127.0.0.1", server.port) as client:
            assert client.request("/dd/ping").address == "/dd/pong"
    finally:
        server.stop()
        listener.close()


def test_a_busy_port_is_one_clear_error():
    first = OscServer(echo, "127.0.0.1", 0)
    try:
        try:
            OscServer(echo, "127.0.0.1", first.port)
        except Exception as error:
            assert f"cannot listen for OSC on 127.0.0.1:{first.port}" in str(error)
        else:
            raise AssertionError("a second server bound the same port")
    finally:
        first.stop()


def test_hello_registrations_are_bounded():
    server = OscServer(echo, "127.0.0.1", 0)
    try:
        for port in range(20000, 20100):
            server.register("127.0.0.1", port)
        for host in range(200):
            server.register(f"10.0.{host}.1", 9001)
        assert len(server.destinations(("127.0.0.1", 1))) <= 9
        assert len(server.destinations(None)) <= 64 * 8
    finally:
        server.stop()


def test_stop_ends_the_network_thread():
    server = OscServer(echo, "127.0.0.1", 0).start()
    server.stop()
    assert not any(t.name == "osc" and t.is_alive() for t in threading.enumerate())


# -- issue 11: what a hostile or foreign sender can do ----------------------------------------------------------
def talkative(request, reply):
    """Answers like the service: /dd/status is a few kB of JSON naming the user's files."""
    if isinstance(request, rq.Ping):
        reply("/dd/pong", "v")
    elif isinstance(request, rq.Status):
        reply("/dd/status", json.dumps({"selected": "/home/me/private/kick.wav", "recent": ["x" * 60] * 40}))
    elif isinstance(request, rq.Vary):
        reply("/dd/error", "/dd/vary", f"no such file: {request.path}")
    else:
        reply("/dd/ack", request.address)


def test_a_bundle_element_of_negative_size_does_not_stop_the_server():
    """The 20 bytes that sent python-osc's bundle parser into an endless loop on the only OSC thread."""
    server = OscServer(echo, "127.0.0.1", 0).start()
    listener = Listener()
    try:
        listener.send_raw(server.port, b"#bundle\x00" + bytes(8) + struct.pack(">i", -8))
        [(_, args)] = listener.wait_for(lambda m: m[0] == "/dd/error", timeout=3)
        assert args[0] == "?" and "size -8" in args[1]
        with OscClient("127.0.0.1", server.port) as client:
            assert client.request("/dd/ping", timeout=3).address == "/dd/pong"
        assert server.malformed == 1
    finally:
        server.stop()
        listener.close()


def test_hellos_never_push_out_the_configured_reply_port():
    max_device = Listener()
    server = OscServer(echo, "127.0.0.1", 0, reply_port=max_device.port).start()
    senders = [Listener() for _ in range(10)]
    try:
        for sender in senders:
            sender.send(server.port, "/dd/hello")
            sender.wait_for(lambda m: m[0] == "/dd/hello")
        for port in range(20000, 20100):
            server.register("127.0.0.1", port)
        for host in range(100):
            server.register(f"10.0.{host}.1", 9001)
        with OscClient("127.0.0.1", server.port) as client:
            client.request("/dd/ping")
        max_device.wait_for(lambda m: m[0] == "/dd/pong", timeout=3)
        assert ("127.0.0.1", max_device.port) in server.destinations(None)
    finally:
        server.stop()
        max_device.close()
        for sender in senders:
            sender.close()


@pytest.fixture
def another_user(monkeypatch):
    """This process stands for a service run by another user: every local sender then belongs to someone else
    (the owners come from the real /proc/net/udp; only the service's own uid is changed)."""
    if peers.owner("127.0.0.1", 1) == peers.UNKNOWN:
        pytest.skip("this system does not tell who owns a socket (no /proc/net/udp)")
    real = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real + 1000)


def test_another_users_requests_are_refused_without_revealing_anything(another_user):
    max_device = Listener()
    server = OscServer(talkative, "127.0.0.1", 0, reply_port=max_device.port, token="a-secret-of-the-owner").start()
    try:
        with OscClient("127.0.0.1", server.port) as client:
            assert client.request("/dd/ping", timeout=3).address == "/dd/pong"  # only that it runs, and its version
            for address, args in [("/dd/status", []), ("/dd/vary", ["/home/me/private/kick.wav"]),
                                  ("/dd/hello", [])]:
                reply = client.request(address, args, timeout=3)
                assert reply.address == "/dd/error" and reply.args == (address, REFUSED)
        with OscClient("127.0.0.1", server.port, token="not-the-secret") as client:
            assert client.request("/dd/status", timeout=3).args[1] == REFUSED
        with OscClient("127.0.0.1", server.port, token="a-secret-of-the-owner") as client:
            assert "private" in client.request("/dd/status", timeout=3).args[0]
            assert "no such file" in client.request("/dd/vary", ["/home/me/x.wav"], timeout=3).args[1]
        assert server.refused == 4 and server.destinations(None) == [("127.0.0.1", max_device.port)]
        time.sleep(0.1)
        assert [m[0] for m in max_device.messages] == ["/dd/status", "/dd/error"]  # only the trusted replies
    finally:
        server.stop()
        max_device.close()


# Another user's OSC sender: Node's dgram (Node is installed for the DAW tests; Python's venv lives in root's home,
# which another user cannot read). Sends the datagram given in hex, prints each reply in hex.
NODE_SENDER = """
const socket = require('dgram').createSocket('udp4');
socket.on('message', (m) => { console.log(m.toString('hex')); });
socket.bind(0, '127.0.0.1', () => socket.send(Buffer.from(process.argv[2], 'hex'), Number(process.argv[1]), '127.0.0.1'));
setTimeout(() => process.exit(0), 1500);
"""


def test_a_real_other_user_is_refused():
    """Another uid for real: the sender runs as nobody (needs root to switch users)."""
    if os.getuid() != 0 or not shutil.which("node"):
        pytest.skip("switching to another user needs root (and Node for the sender)")
    server = OscServer(talkative, "127.0.0.1", 0).start()
    try:
        for address, args in [("/dd/status", ["#s"]), ("/dd/vary", ["#v", "/root/private/kick.wav"])]:
            datagram = build_message(address, args)
            result = subprocess.run(["node", "-e", NODE_SENDER, str(server.port), datagram.hex()], user="nobody",
                                    capture_output=True, text=True, cwd="/", timeout=30)
            replies = [OscMessage(bytes.fromhex(line)) for line in result.stdout.split()]
            assert [(m.address, m.params) for m in replies] == [("/dd/error", [args[0], address, REFUSED])]
        assert server.refused == 2
    finally:
        server.stop()


def lan_address() -> str:
    """This machine's address on its network (no packet is sent); requests from it do not come from loopback."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.254", 9))  # any address routed off this machine picks the outgoing interface
        address = probe.getsockname()[0]
    except OSError:
        address = "127.0.0.1"
    finally:
        probe.close()
    if address.startswith("127."):
        pytest.skip("this machine has no network address to send from")
    return address


def test_beyond_loopback_a_token_is_required_and_replies_are_never_amplified():
    with pytest.raises(BridgeError, match="set osc.token"):
        OscServer(talkative, "0.0.0.0", 0)
    host = lan_address()
    server = OscServer(talkative, "0.0.0.0", 0, token="a-secret-of-the-owner").start()
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind((host, 0))
    stranger.settimeout(0.5)
    try:
        # One datagram full of /dd/status (68 MB of replies before): no more than 4x its size comes back.
        def replies_to(request: bytes) -> list[bytes]:
            stranger.sendto(request, (host, server.port))
            received = []
            try:
                while True:
                    received.append(stranger.recv(65536))
            except socket.timeout:
                return received

        request = bundle(*[build_message("/dd/status", [])] * 32)
        received = replies_to(request)
        assert len(received) == 32 and sum(map(len, received)) <= REPLY_FACTOR * len(request)
        assert all(b"refused: token required" in datagram for datagram in received)
        assert replies_to(b"/dd/set\x00") == [] and server.withheld == 1  # even the refusal is too large here
        pings = bundle(*[build_message("/dd/ping", [])] * 32)
        received = replies_to(pings)
        assert len(received) == 32 and sum(map(len, received)) <= REPLY_FACTOR * len(pings)
        with OscClient(host, server.port, token="a-secret-of-the-owner") as client:
            assert "private" in client.request("/dd/status", timeout=3).args[0]
        with OscClient("127.0.0.1", server.port) as client:  # this user's own programs need no token
            assert "private" in client.request("/dd/status", timeout=3).args[0]
    finally:
        stranger.close()
        server.stop()


def test_an_error_quoting_a_huge_path_still_fits_in_a_reply():
    server = OscServer(talkative, "127.0.0.1", 0).start()
    try:
        with OscClient("127.0.0.1", server.port) as client:
            path = "/" + "p" * 65460  # the request fits in a datagram; "no such file: <path>" would not
            reply = client.request("/dd/vary", [path], timeout=3)
            assert reply.address == "/dd/error" and reply.args[1].startswith("no such file: /ppp")
            assert reply.args[1].endswith(" ...") and len(reply.args[1]) <= 300
    finally:
        server.stop()


# -- the hostile-input review (s39): a dead network thread, a service answering itself, replies too large ----------
def free_port() -> int:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def test_an_unexpected_error_is_answered_and_the_server_listens_on(monkeypatch):
    """A validator's OverflowError escaped parse and ended the network thread: the service was deaf for good."""
    def broken_parse(address, args):
        raise OverflowError("int too large to convert to float")

    def broken_packet(datagram):
        raise ValueError("a bug in the packet reader")

    errors = []
    server = OscServer(echo, "127.0.0.1", 0, on_error=lambda *e: errors.append(e)).start()
    listener = Listener()
    try:
        with OscClient("127.0.0.1", server.port) as client:
            with monkeypatch.context() as patched:
                patched.setattr("bridge.transports.osc.protocol.parse", broken_parse)
                reply = client.request("/dd/vary", ["/a.wav", "noise=1" + "0" * 309], timeout=3)
                assert reply.address == "/dd/error" and reply.args == (
                    "/dd/vary", "internal error: OverflowError: int too large to convert to float")
                patched.setattr("bridge.transports.osc.packet.messages", broken_packet)
                listener.send(server.port, "/dd/ping")
                time.sleep(0.2)
            assert client.request("/dd/ping", timeout=3).address == "/dd/pong"
            # and the real one: a one-line error naming the key and its range
            reply = client.request("/dd/vary", ["/a.wav", "noise=1" + "0" * 309], timeout=3)
            assert reply.address == "/dd/error" and reply.args[1].startswith("noise must be in 0..1, not '1000")
        assert errors[0] == ("/dd/vary", "internal error: OverflowError: int too large to convert to float")
    finally:
        server.stop()
        listener.close()


def count_for(listener: Listener, seconds: float) -> int:
    before = len(listener.messages)
    time.sleep(seconds)
    return len(listener.messages) - before


@contextlib.contextmanager
def watched(port: int = 0, reply_port: int | None = None):
    """An echo server and a client registered with /dd/hello, which would hear a loop's flood."""
    watcher = Listener()
    server = OscServer(echo, "127.0.0.1", port, reply_port=reply_port).start()
    try:
        watcher.send(server.port, "/dd/hello")
        watcher.wait_for(lambda m: m[0] == "/dd/hello")
        yield server, watcher
    finally:
        server.stop()
        watcher.close()


def test_hello_with_the_servers_own_port_is_refused_and_nothing_loops():
    """The service answered its own replies forever: 100 % CPU, 13,000 datagrams a second to every client."""
    with watched() as (server, watcher), OscClient("127.0.0.1", server.port) as client:
        reply = client.request("/dd/hello", [server.port], timeout=3)
        assert reply.address == "/dd/error" and reply.args == (
            "/dd/hello", f"port {server.port} is the service's own: give the port your client listens on")
        server.register("127.0.0.1", server.port)  # were it registered anyway, nothing is sent there
        assert client.request("/dd/ping", timeout=3).address == "/dd/pong"
        time.sleep(0.3)
        assert count_for(watcher, 0.5) == 0 and server.received == 3


def test_a_reply_port_that_is_the_servers_own_starts_no_loop():
    port = free_port()
    with watched(port, reply_port=port) as (server, watcher), OscClient("127.0.0.1", server.port) as client:
        assert client.request("/dd/ping", timeout=3).address == "/dd/pong"
        time.sleep(0.3)
        assert count_for(watcher, 0.5) == 0 and server.received == 2


def test_replies_are_never_answered():
    """What another service (or a client echoing) sends back: answering it would start a loop between the two."""
    server = OscServer(talkative, "127.0.0.1", 0).start()
    other = Listener()
    try:
        for address, args in [("/dd/pong", ["v"]), ("/dd/error", ["#a", "/dd/vary", "no"]),
                              ("/dd/done", ["vary", "/x"]), ("/dd/ack", ["select", "/x"]), ("/dd/progress", ["#a", 0.5]),
                              ("/dd/status", ["#a", '{"model": "x"}']), ("/dd/hello", ["0.1.0", "ab12cd34"])]:
            other.send(server.port, address, *args)
        time.sleep(0.3)
        assert other.messages == [] and server.ignored == 7
        # A recipes reply sent back reads as a request with a stray argument: one usage error, and no more (an
        # error is never answered), so even two services answering each other stop there.
        other.send(server.port, "/dd/recipes", "#a", "dark-kick")
        other.wait_for(lambda m: m[0] == "/dd/error" and m[1][0] == "#a", timeout=3)
        time.sleep(0.3)
        assert len(other.messages) == 1
        other.send(server.port, "/dd/status", "#s")  # the requests of the same names are answered
        other.wait_for(lambda m: m[0] == "/dd/status" and m[1][0] == "#s", timeout=3)
    finally:
        server.stop()
        other.close()


def test_a_reply_too_large_for_a_datagram_is_never_dropped_unheard():
    """64 files with 1,049-character paths: a /dd/done of 67 kB was logged and not sent; the client heard nothing."""
    folder = "/music/" + "f" * 640 + "/" + "k" * 200
    paths = [f"{folder}/{'k' * 200} var {n:03}.wav" for n in range(1, 65)]

    def big(request, reply):
        if isinstance(request, rq.Vary):
            reply("/dd/done", "vary", *paths)
        else:
            reply("/dd/status", json.dumps({"last_error": "x" * 70000}))

    server = OscServer(big, "127.0.0.1", 0).start()
    try:
        with OscClient("127.0.0.1", server.port) as client:
            reply = client.request("/dd/vary", ["/a.wav"], timeout=3)
            assert reply == Answer("/dd/error", (
                "/dd/vary", f"64 files written in {folder}; the list of their names is too long for one reply"))
            reply = client.request("/dd/status", timeout=3)
            assert reply.address == "/dd/error" and reply.args[0] == "/dd/status"
            assert "more than one datagram holds" in reply.args[1]
            reply = client.request("/" + "x" * 65300, timeout=3)  # an error quoting a huge address
            assert reply.address == "/dd/error" and len(reply.args[0]) <= 300 and "unknown address" in reply.args[1]
    finally:
        server.stop()


class SentAt:
    """The server's socket, recording where replies go; ``refuse_over`` bytes and more fail as a system whose UDP
    limit is that (macOS: 9,216 by default) refuses them."""

    def __init__(self, real, refuse_over=None):
        self.real, self.refuse_over, self.sent = real, refuse_over, []

    def sendto(self, datagram, destination):
        if self.refuse_over is not None and len(datagram) > self.refuse_over:
            raise OSError(errno.EMSGSIZE, "Message too long")
        message = OscMessage(datagram)
        self.sent.append((message.address, destination))
        self.last_args = message.params

    def close(self):
        self.real.close()


def test_on_every_interface_another_machine_sending_from_the_services_port_is_a_client():
    """A tablet's OSC app set to "9000 both ways" sends from the port the service listens on: it is a client on
    another machine, answered; the service's own port on this machine is still never answered nor sent to."""
    handled = []
    server = OscServer(lambda request, reply: (handled.append(request), reply("/dd/pong")), "0.0.0.0", 0,
                       token="sekrit")
    server.socket = SentAt(server.socket)
    try:
        server.on_datagram(build_message("/dd/ping", ["#r1", "token=sekrit"]), ("192.0.2.20", server.port))
        server.on_datagram(build_message("/dd/hello", ["#r2", server.port, "token=sekrit"]), ("192.0.2.20", 50123))
        assert len(handled) == 2 and server.ignored == 0
        assert server.socket.sent == [("/dd/pong", ("192.0.2.20", server.port)), ("/dd/pong", ("192.0.2.20", 50123)),
                                      ("/dd/pong", ("192.0.2.20", server.port))]
        server.on_datagram(build_message("/dd/ping", ["#r3"]), ("127.0.0.1", server.port))
        assert len(handled) == 2 and server.ignored == 1
    finally:
        server.socket.close()


def test_a_reply_the_system_refuses_as_too_long_is_sent_shortened():
    """Under UDP's 65,507 bytes but over what this system sends (macOS: 9,216): a count-64 /dd/done of long pack
    names still ends REAPER's wait, as the error that says where the files are."""
    paths = [f"/Users/me/Music/DD Bridge/Splice Essentials Kick Punchy One Shot 07/{'k' * 80} var {n:03}.wav"
             for n in range(1, 65)]
    server = OscServer(lambda request, reply: reply("/dd/done", "vary", *paths), "127.0.0.1", 0)
    server.socket = SentAt(server.socket, refuse_over=9216)
    client = Listener()  # a socket of this user's: a trusted sender
    try:
        server.on_datagram(build_message("/dd/status", ["#v"]), ("127.0.0.1", client.port))  # any request
        assert server.socket.sent == [("/dd/error", ("127.0.0.1", client.port))]
        assert server.socket.last_args[0] == "#v" and server.socket.last_args[2].startswith("64 files written in")
    finally:
        server.socket.close()
        client.close()
