"""Raw OSC datagrams the tests build by hand: bundles with any element, sizes as given."""

from __future__ import annotations

import struct


def bundle(*elements: bytes, timetag: bytes = bytes(8)) -> bytes:
    return b"#bundle\x00" + timetag + b"".join(struct.pack(">i", len(e)) + e for e in elements)
