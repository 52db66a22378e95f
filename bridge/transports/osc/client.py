"""A one-request OSC client: send with a fresh request id, wait for the final reply (used by `dd-bridge send`)."""

from __future__ import annotations

import secrets
import socket
import time
from dataclasses import dataclass
from typing import Callable

from bridge.transports.osc import packet, protocol
from bridge.transports.osc.server import MAX_DATAGRAM, build_message


@dataclass(frozen=True)
class Answer:
    """The service's final reply to one request (done, ack, pong, status or error); ``Reply`` in bridge.daemon is
    the other side, the function a handler answers through."""

    address: str
    args: tuple

    @property
    def ok(self) -> bool:
        return self.address != "/dd/error"


def new_request_id() -> str:
    return "#" + secrets.token_hex(4)


class OscClient:
    """Talks to one service; each request waits for its own reply, matched by request id."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9000, token: str | None = None):
        self.server = (host, port)
        self.token = token  # sent as token=... with every request (needed by another user's or machine's service)
        self.last_request_id: str | None = None  # the id the last request went out with (to cancel it)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1" if host in ("127.0.0.1", "localhost") else "0.0.0.0", 0))

    def close(self) -> None:
        self.socket.close()

    def __enter__(self) -> "OscClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, address: str, *args) -> None:
        self.socket.sendto(build_message(address, args), self.server)

    def cancel(self, request_id: str, timeout: float = 1.0) -> bool:
        """/dd/cancel request=ID from this client's socket: that request of its own fails, queued or rendering (a
        cancel reaches only its sender's requests, so it must come from this socket); nothing else is touched.
        Whether the service acknowledged it."""
        reply = self.request("/dd/cancel", [f"request={request_id}"], timeout=timeout)
        return reply is not None and reply.ok

    def request(self, address: str, args=(), timeout: float = 30.0,
                on_progress: Callable[[float], None] | None = None) -> Answer | None:
        """The final reply, or None when nothing came for ``timeout`` seconds (each progress restarts the wait)."""
        request_id = self.last_request_id = new_request_id()
        self.send(address, request_id, *args, *([protocol.TOKEN + self.token] if self.token else []))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.socket.settimeout(remaining)
            try:
                datagram = self.socket.recv(MAX_DATAGRAM + 1)
            except (socket.timeout, ConnectionRefusedError):
                if time.monotonic() >= deadline:
                    return None
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
                continue
            try:
                messages = packet.messages(datagram)  # checked: a hostile datagram cannot hang the caller (REAPER)
            except packet.PacketError:
                continue
            for message in messages:
                params = list(message.params)
                if not params or params[0] != request_id:
                    continue
                if message.address == "/dd/progress":
                    deadline = time.monotonic() + timeout
                    # with a request id, progress is "/dd/progress <id> <fraction>"
                    if on_progress and len(params) >= 2 and isinstance(params[1], (int, float)):
                        on_progress(float(params[1]))
                elif message.address in protocol.FINAL_REPLIES:
                    return Answer(message.address, tuple(params[1:]))
