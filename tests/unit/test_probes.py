from __future__ import annotations

import socket
import threading

from shipyard.stack.probes import HttpProbe, RedisProbe, port_is_free


def serve_once(reply: bytes) -> int:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer() -> None:
        conn, _ = server.accept()
        with conn, server:
            conn.recv(1024)
            conn.sendall(reply)

    threading.Thread(target=answer, daemon=True).start()
    return server.getsockname()[1]


def test_http_probe_passes_on_200_only() -> None:
    assert HttpProbe(serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), "/")()
    assert not HttpProbe(serve_once(b"HTTP/1.1 503 No\r\nContent-Length: 0\r\n\r\n"), "/")()


def test_http_probe_treats_garbage_as_not_ready() -> None:
    assert not HttpProbe(serve_once(b"\x00\x01 definitely not http\r\n\r\n"), "/")()


def test_probes_on_a_closed_port_are_not_ready() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
    assert port_is_free(port)
    assert not HttpProbe(port, "/")()
    assert not RedisProbe(port)()


def test_redis_probe_wants_pong() -> None:
    assert RedisProbe(serve_once(b"+PONG\r\n"))()
    assert not RedisProbe(serve_once(b"-ERR\r\n"))()
