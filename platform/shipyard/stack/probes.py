"""Readiness probes: each answers "is this component serving?" within a short timeout."""

from __future__ import annotations

import http.client
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class HttpProbe:
    """Ready when ``GET path`` on the loopback port answers 200."""

    port: int
    path: str
    timeout_s: float = 1.0

    def __call__(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout_s)
        try:
            conn.request("GET", self.path)
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):  # refused, timed out, or not HTTP at all
            return False
        finally:
            conn.close()


@dataclass(frozen=True)
class RedisProbe:
    """Ready when Redis answers ``PING`` with ``+PONG``."""

    port: int
    timeout_s: float = 1.0

    def __call__(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout_s) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port (we can bind it ourselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR, so a port in TIME_WAIT is free for them too.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports that were free a moment ago (held open together while picked)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
