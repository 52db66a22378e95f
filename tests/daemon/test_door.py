"""The door between the transports and the service (bridge.daemon.door): requests handled one at a time in the order
they came, on its own thread; the keep-alives answered at once whatever waits; bounded; closed cleanly."""

from __future__ import annotations

import threading
import time

import pytest

from bridge.daemon import requests as rq
from bridge.daemon.door import Door


class Replies:
    def __init__(self):
        self.got: list[tuple] = []
        self.event = threading.Event()

    def __call__(self, *reply):
        self.got.append(reply)
        self.event.set()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple]:
        deadline = time.monotonic() + timeout
        while len(self.got) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.got


@pytest.fixture
def held():
    """A service whose handling of /dd/select waits until released (a look at a hung share)."""
    release = threading.Event()
    handled: list = []

    def inner(request, reply):
        if isinstance(request, rq.Select):
            release.wait(10)
        handled.append(request)
        reply("/dd/ack", request.address)

    door = Door(inner, capacity=4).start()
    try:
        yield door, release, handled
    finally:
        release.set()
        door.stop()


def test_requests_keep_their_order_and_the_keep_alives_do_not_wait_behind_them(held):
    door, release, handled = held
    replies = Replies()
    door.handle(rq.Select(path="/share/kick.wav"), replies)
    door.handle(rq.Set(key="noise", value=0.3), replies)
    began = time.monotonic()
    door.handle(rq.Ping(), replies)  # on the caller's thread, at once
    door.handle(rq.Hello(port=9001), replies)
    assert time.monotonic() - began < 0.5
    assert [type(r) for r in handled] == [rq.Ping, rq.Hello]
    release.set()
    replies.wait_for(4)
    assert [type(r) for r in handled] == [rq.Ping, rq.Hello, rq.Select, rq.Set]  # the setting after the select


def test_a_full_door_answers_at_once_and_a_stopped_one_answers_what_waited(held):
    door, release, handled = held
    replies = Replies()
    door.handle(rq.Select(path="/share/kick.wav"), replies)  # in hand, held
    deadline = time.monotonic() + 5
    while door.waiting and time.monotonic() < deadline:
        time.sleep(0.005)
    for _ in range(4):
        door.handle(rq.Vary(), replies)
    door.handle(rq.Vary(), replies)  # the fifth waiting: refused in one line
    assert replies.got == [("/dd/error", "/dd/vary", "busy: 4 requests are waiting; try again in a moment")]
    door.handle(rq.Cancel(), replies)  # how a client gets out of its own flood: always let in
    door.handle(rq.Status(), replies)  # what a producer asks when it seems stuck: answered, with what waits
    assert replies.got[-1] == ("/dd/ack", "/dd/status") and door.waiting == 5
    status = door.status()
    assert (status["waiting"], status["refused"], status["in_hand"]) == (5, 1, "/dd/select")
    assert 0 <= status["in_hand_seconds"] < 5
    release.set()
    door.stop()
    door.handle(rq.Vary(), replies)
    assert replies.got[-1] == ("/dd/error", "/dd/vary", "the service is stopping")


def test_stopping_answers_the_waiting_requests_without_handling_them():
    release = threading.Event()
    handled = []

    def inner(request, reply):
        release.wait(10)
        handled.append(request)

    door = Door(inner).start()
    replies = Replies()
    door.handle(rq.Select(path="/share/kick.wav"), replies)
    time.sleep(0.05)
    door.handle(rq.Vary(), replies)
    door.handle(rq.Generate(), replies)
    threading.Timer(0.2, release.set).start()
    door.stop()
    assert replies.got == [("/dd/error", "/dd/vary", "the service is stopping"),
                           ("/dd/error", "/dd/generate", "the service is stopping")]
    assert [type(r) for r in handled] == [rq.Select]


def test_a_request_that_fails_unexpectedly_is_answered_and_the_door_goes_on():
    errors = []

    def inner(request, reply):
        if isinstance(request, rq.Vary):
            raise RuntimeError("boom")
        reply("/dd/ack", request.address)

    door = Door(inner, on_error=lambda *error: errors.append(error)).start()
    try:
        replies = Replies()
        door.handle(rq.Vary(), replies)
        door.handle(rq.Generate(), replies)
        assert replies.wait_for(2) == [("/dd/error", "/dd/vary", "internal error: RuntimeError: boom"),
                                       ("/dd/ack", "/dd/generate")]
        assert errors == [("/dd/vary", "internal error: RuntimeError: boom")]
    finally:
        door.stop()
