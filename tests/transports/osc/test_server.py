"""The OSC server over real loopback sockets, with a plain handler: where replies go, what a bad packet gets."""

from __future__ import annotations

import threading
import time

from bridge.daemon import requests as rq
from bridge.transports.osc.client import OscClient
from bridge.transports.osc.server import OscServer
from tests.daemon.harness import Listener


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
        assert server.malformed == 1 and [e[0] for e in errors] == ["?", "/dd/vary"]
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
