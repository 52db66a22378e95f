"""One UDP datagram to its OSC messages, every size and count checked before python-osc decodes anything.

python-osc (1.10) trusts the sizes in a packet: a bundle element of negative size moves its parser backwards, so
it loops forever on the one network thread, logging a warning on every turn; a blob of negative size does the same
inside a message (bounded by the type tags there, but quadratic); unknown type tags log a warning each. No report
of this was found upstream (attwad/python-osc issues, searched 2026-11-30). So bundles are walked here, with the
OSC 1.0 rules and our own limits, and each message is validated before ``OscMessage`` decodes it: the work per
datagram is linear in its size and bounded by MAX_MESSAGES.
"""

from __future__ import annotations

import struct

from pythonosc.osc_message import OscMessage

BUNDLE = b"#bundle\x00"
MAX_DEPTH = 4  # bundles inside bundles; Max and Pure Data send one level, if any
MAX_MESSAGES = 32  # per datagram: bounds the work and the replies one datagram can cause
MAX_ARGUMENTS = 64  # per message; the longest request takes a handful
# Argument types a request may carry (python-osc decodes them all): int32, float32, int64, double, string, blob,
# true, false, nil. Timetags, colours, MIDI, chars and arrays are not part of any request.
TYPES = {"i": 4, "f": 4, "h": 8, "d": 8, "s": None, "b": None, "T": 0, "F": 0, "N": 0}


class PacketError(ValueError):
    """A datagram that is not a well-formed OSC packet within the limits; its message says what is wrong."""


def messages(datagram: bytes) -> list[OscMessage]:
    """The messages of a datagram (one message, or a bundle's, in order), or PacketError."""
    found: list[bytes] = []
    _collect(datagram, 0, found)
    try:
        return [OscMessage(element) for element in found]
    except Exception as error:  # what is left after the checks: text that is not UTF-8
        raise PacketError(f"cannot decode a message: {error}") from None


def _collect(packet: bytes, depth: int, found: list[bytes]) -> None:
    if packet.startswith(BUNDLE):
        if depth >= MAX_DEPTH:
            raise PacketError(f"bundles nested deeper than {MAX_DEPTH}")
        if len(packet) < len(BUNDLE) + 8:
            raise PacketError("bundle without a complete time tag")
        index = len(BUNDLE) + 8  # the time tag: requests run when they arrive
        while index < len(packet):
            if index + 4 > len(packet):
                raise PacketError("bundle element without a complete size")
            (size,) = struct.unpack_from(">i", packet, index)
            index += 4
            if size <= 0 or size % 4 or index + size > len(packet):
                raise PacketError(f"bundle element size {size} does not fit the {len(packet) - index} bytes left")
            _collect(packet[index:index + size], depth + 1, found)
            index += size
    elif packet.startswith(b"/"):
        if len(found) >= MAX_MESSAGES:
            raise PacketError(f"more than {MAX_MESSAGES} messages in one datagram")
        _check_message(packet)
        found.append(packet)
    else:
        raise PacketError("not an OSC message or bundle")


def _string_end(packet: bytes, index: int, what: str) -> int:
    """The index after the padded string at ``index``."""
    end = packet.find(b"\x00", index)
    if end < 0:
        raise PacketError(f"{what} is not terminated")
    end = (end + 4) & ~3
    if end > len(packet):
        raise PacketError(f"{what} is not padded to 4 bytes")
    return end


def _check_message(packet: bytes) -> None:
    index = _string_end(packet, 0, "address")
    if index == len(packet):
        return  # no type tags: no arguments (old senders)
    if packet[index:index + 1] != b",":
        raise PacketError("type tags must start with ','")
    end = _string_end(packet, index, "type tags")
    tags = packet[index + 1:packet.index(b"\x00", index)].decode("ascii", "replace")
    if len(tags) > MAX_ARGUMENTS:
        raise PacketError(f"more than {MAX_ARGUMENTS} arguments")
    index = end
    for tag in tags:
        size = TYPES.get(tag, -1)
        if size == -1:
            raise PacketError(f"argument type {tag!r} is not accepted (only {''.join(TYPES)})")
        if tag == "s":
            index = _string_end(packet, index, "a string argument")
            continue
        if tag == "b":
            if index + 4 > len(packet):
                raise PacketError("blob without a complete size")
            (size,) = struct.unpack_from(">i", packet, index)
            if size < 0:
                raise PacketError(f"blob size {size} is negative")
            index += 4
            size = (size + 3) & ~3
        index += size
        if index > len(packet):
            raise PacketError("arguments run past the end of the packet")
