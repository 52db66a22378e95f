"""Which local user sent a datagram: the owner of the sending UDP socket, read from Linux's /proc/net/udp{,6}.

The service answers its own user's programs without a token (the DAW sides send none); another user of the same
machine must send the token (docs/osc.md, "Who may send requests"). UDP carries no credentials, but on Linux
the kernel lists every UDP socket with its local address, port and owner's uid, and a sender waiting for its
reply still holds its socket. Elsewhere (macOS, Windows) there is no such table: ``owner`` says so with UNKNOWN.
"""

from __future__ import annotations

import ipaddress
import struct

TABLES = ("/proc/net/udp", "/proc/net/udp6")
UNKNOWN = -1  # this system does not tell who owns a socket


def _address(hex_text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # The kernel prints the address as 32-bit words in the machine's own byte order.
    words = [int(hex_text[i:i + 8], 16) for i in range(0, len(hex_text), 8)]
    raw = b"".join(struct.pack("=I", word) for word in words)
    return ipaddress.ip_address(raw)


def _could_send_from(local, host: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a socket bound to ``local`` can send datagrams whose source is ``host``."""
    if isinstance(local, ipaddress.IPv6Address) and local.ipv4_mapped is not None:
        local = local.ipv4_mapped
    return local == host or local.is_unspecified


def owner(host: str, port: int, tables: tuple[str, ...] = TABLES) -> int | None:
    """The uid owning the local UDP socket that sends from ``host:port``; None when no socket (or more than one
    user's) matches; UNKNOWN when the system has no socket table."""
    try:
        sender = ipaddress.ip_address(host)
    except ValueError:
        return None
    found, readable, wanted = set(), False, f":{port:04X} "
    for table in tables:
        try:
            with open(table, encoding="ascii") as file:
                text = file.read()
        except OSError:
            continue
        readable = True
        for line in text.splitlines()[1:]:
            if wanted not in line:  # cheap first: a port appears once a line, as the local or the remote one
                continue
            fields = line.split()
            local, _, local_port = fields[1].rpartition(":")
            if int(local_port, 16) == port and _could_send_from(_address(local), sender):
                found.add(int(fields[7]))
    if not readable:
        return UNKNOWN
    return found.pop() if len(found) == 1 else None
