"""Who owns the socket a datagram came from, read from the kernel's own table (Linux)."""

from __future__ import annotations

import os
import socket

import pytest

from bridge.transports.osc import peers

pytestmark = pytest.mark.skipif(not os.path.exists(peers.TABLES[0]), reason="no /proc/net/udp on this system")


@pytest.mark.parametrize("family, bind_to", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "0.0.0.0"),
                                             (socket.AF_INET6, "::")])
def test_the_owner_of_a_sending_socket(family, bind_to):
    sender = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sender.bind((bind_to, 0))
        port = sender.getsockname()[1]
        assert peers.owner("127.0.0.1", port) == os.getuid()
    finally:
        sender.close()
    assert peers.owner("127.0.0.1", port) is None  # gone: nobody to trust


def test_a_socket_bound_elsewhere_is_not_the_sender():
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sender.bind(("127.0.0.2", 0))
        assert peers.owner("127.0.0.1", sender.getsockname()[1]) is None
        assert peers.owner("127.0.0.2", sender.getsockname()[1]) == os.getuid()
    finally:
        sender.close()


def test_two_users_on_one_port_or_no_table(tmp_path):
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sender.bind(("127.0.0.1", 0))
        port = sender.getsockname()[1]
        with open(peers.TABLES[0], encoding="ascii") as file:
            header, *lines = file.read().splitlines()
        mine = next(line for line in lines if line.split()[1].endswith(f":{port:04X}"))
        fields = mine.split()
        other = mine.replace(f" {fields[7]} ", f" {int(fields[7]) + 1} ", 1)
        table = tmp_path / "udp"
        table.write_text("\n".join([header, mine, other]) + "\n")
        assert peers.owner("127.0.0.1", port, tables=(str(table),)) is None  # which one sent it? refuse
        assert peers.owner("127.0.0.1", port, tables=(str(tmp_path / "none"),)) == peers.UNKNOWN
    finally:
        sender.close()
