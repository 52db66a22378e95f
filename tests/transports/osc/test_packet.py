"""Datagrams split into messages with every size checked: the packets that hung python-osc's own parser."""

from __future__ import annotations

import re
import struct
import time

import pytest

from bridge.transports.osc import packet
from bridge.transports.osc.server import build_message
from tests.transports.osc.datagrams import bundle

PING = build_message("/dd/ping", [])
STATUS = build_message("/dd/status", ["#s1"])



def test_messages_and_nested_bundles_in_order():
    found = packet.messages(bundle(PING, bundle(STATUS, PING)))
    assert [(m.address, m.params) for m in found] == [("/dd/ping", []), ("/dd/status", ["#s1"]), ("/dd/ping", [])]
    vary = build_message("/dd/vary", ["#r1", "/a b.wav", 4, 0.5, "seed=9007199254740993", True, None])
    assert packet.messages(vary)[0].params == ["#r1", "/a b.wav", 4, 0.5, "seed=9007199254740993", True, None]
    assert packet.messages(b"/dd/ping\x00\x00\x00\x00")[0].address == "/dd/ping"  # no type tags at all


@pytest.mark.parametrize("datagram, why", [
    (b"#bundle\x00" + bytes(8) + struct.pack(">i", -8), "size -8"),  # the packet that looped python-osc forever
    (bundle(PING) + struct.pack(">i", -len(PING) - 4), "size -20"),  # back to the first element, python-osc: forever
    (b"#bundle\x00" + bytes(8) + struct.pack(">i", 2**31 - 1) + PING, "size 2147483647"),
    (b"#bundle\x00" + bytes(8) + struct.pack(">i", 6) + PING, "size 6"),
    (b"#bundle\x00" + bytes(4), "time tag"),
    (b"#bundle\x00" + bytes(8) + b"\x00\x00", "complete size"),
    (bundle(bundle(bundle(bundle(bundle(PING))))), "nested deeper than 4"),
    (bundle(*[PING] * 33), "more than 32 messages"),
    (b"/dd/ping\x00\x00\x00\x00,b\x00\x00" + struct.pack(">i", -8), "blob size -8"),
    (b"/dd/ping\x00\x00\x00\x00,b\x00\x00" + struct.pack(">i", 400) + bytes(4), "past the end"),
    (b"/dd/ping\x00\x00\x00\x00,t\x00\x00" + bytes(8), "type 't'"),
    (b"/dd/ping\x00\x00\x00\x00,[i]" + bytes(4) + bytes(4), "type '['"),
    (b"/dd/ping\x00\x00\x00\x00,s\x00\x00abcd", "not terminated"),
    (b"/dd/ping\x00\x00\x00\x00," + b"i" * 65 + bytes(2) + bytes(4 * 65), "more than 64 arguments"),
    (b"/dd/ping\x00\x00\x00\x00x\x00\x00\x00", "must start with ','"),
    (b"/dd/ping\x00\x00\x00\x00,s\x00\x00\xff\xfe\x00\x00", "decode"),
    (b"\xff\xfe not osc", "not an OSC message"),
    (b"", "not an OSC message"),
])
def test_malformed_packets_are_one_clear_error(datagram, why):
    with pytest.raises(packet.PacketError, match=re.escape(why)):
        packet.messages(datagram)


def test_the_work_per_datagram_is_bounded():
    """A full-size datagram of the worst shapes is read or refused in milliseconds (printed, not timed)."""
    worst = {
        "3000 messages": bundle(*[PING] * 3000),
        "negative blobs": b"/x\x00\x00," + b"bs" * 32 + bytes(3) + (struct.pack(">i", -64) + b"a" * 60000)[:60000],
        "one 60 kB string": b"/x\x00\x00,s\x00\x00" + b"a" * 60000,
    }
    for name, datagram in worst.items():
        began = time.perf_counter()
        with pytest.raises(packet.PacketError):
            packet.messages(datagram)
        print(f"{name}: {len(datagram)} bytes refused in {1000 * (time.perf_counter() - began):.2f} ms")
    assert packet.messages(bundle(*[bundle()] * 3000)) == []  # empty bundles: nothing to do, quickly
