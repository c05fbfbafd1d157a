"""The backend chain: Triton primary pool (GPU on a cluster) → Triton CPU pool → in-process
ONNX Runtime.

A Triton pool is reached over HTTP/1.1 with binary tensors (the default) or gRPC, chosen by the
scheme of its URL (``http://host:8000``, ``grpc://host:8001``; a bare ``host:port`` is gRPC).
HTTP is the default because in this Python gateway it costs far less CPU per call: measured
with ``bench/triton_transport.py``, 30-70 µs in the gateway against 240-390 µs for
tritonclient's asyncio gRPC client, and Triton's own HTTP frontend is cheaper too.

Each request walks the chain once, in order, and stops at the first hop that answers: a hop
is tried at most once per request (no retries, so no retry storms). Each Triton hop has a
deadline and a circuit breaker. After ``failures`` consecutive transport failures the breaker
opens and the hop is skipped outright; after ``open_s`` one request is let through as a probe
(half-open) — success closes the breaker, failure opens it again. A request that finds a
version missing on one pool (not yet loaded there) moves on without counting against it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import orjson

from serving.errors import BackendsUnavailable
from serving.models import ServedVersion
from shipyard.observability.metrics import (
    CIRCUIT_CLOSED,
    CIRCUIT_HALF_OPEN,
    CIRCUIT_OPEN,
    GatewayMetrics,
)
from shipyard.settings import triton_url
from shipyard.training.export import INPUT, OUTPUT

log = logging.getLogger("shipyard.gateway.backends")

STATE_NAMES = {CIRCUIT_CLOSED: "closed", CIRCUIT_HALF_OPEN: "half-open", CIRCUIT_OPEN: "open"}
# gRPC channel reconnection: the default backoff grows to two minutes, which would keep a
# restarted Triton unused long after it is back. Cap it near the breaker's probe interval.
CHANNEL_ARGS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 10_000),
]
# Phrases of Triton errors that concern one model version rather than the server's health.
_MODEL_LEVEL = ("unknown model", "is not found", "not ready", "unavailable model")
# Idle keep-alive connections kept per HTTP pool; more are opened under load and closed after.
IDLE_CONNECTIONS = 32


@dataclass(frozen=True)
class TritonPool:
    """One Triton pool: its name in responses and metrics, transport and ``host:port``."""

    name: str
    transport: Literal["http", "grpc"]
    address: str

    @property
    def url(self) -> str:
        return f"{self.transport}://{self.address}"

    @classmethod
    def parse(cls, name: str, url: str) -> TritonPool:
        """``http://host:port``, ``grpc://host:port`` or ``host:port`` (gRPC). Raises ValueError."""
        return cls(name, *triton_url(url))


class BackendError(Exception):
    """A hop did not answer. ``transport`` failures count against its breaker."""

    def __init__(self, reason: str, message: str, transport: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.transport = transport


class Backend(Protocol):
    name: str
    url: str | None

    async def infer(self, served: ServedVersion, x: np.ndarray) -> np.ndarray: ...

    async def close(self) -> None: ...


class CircuitBreaker:
    """Closed → (``failures`` in a row) → open → (``open_s`` later, one probe) → half-open."""

    def __init__(
        self,
        failures: int,
        open_s: float,
        on_change: Callable[[int], None] = lambda state: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.open_s = open_s
        self.state = CIRCUIT_CLOSED
        self._on_change = on_change
        self._clock = clock
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False

    def allow(self) -> bool:
        if self.state == CIRCUIT_CLOSED:
            return True
        if self.state == CIRCUIT_OPEN and self._clock() - self._opened_at >= self.open_s:
            self._set(CIRCUIT_HALF_OPEN)
        if self.state == CIRCUIT_HALF_OPEN and not self._probing:
            self._probing = True  # exactly one probe at a time
            return True
        return False

    def success(self) -> None:
        self._consecutive = 0
        self._probing = False
        if self.state != CIRCUIT_CLOSED:
            self._set(CIRCUIT_CLOSED)

    def failure(self) -> None:
        self._consecutive += 1
        self._probing = False
        if self.state == CIRCUIT_HALF_OPEN or (
            self.state == CIRCUIT_CLOSED and self._consecutive >= self.failures
        ):
            self._opened_at = self._clock()
            self._set(CIRCUIT_OPEN)

    def release(self) -> None:
        """The call ended without a verdict on the backend (e.g. a model-level error)."""
        self._probing = False

    def _set(self, state: int) -> None:
        self.state = state
        self._on_change(state)


class TritonGrpcBackend:
    """One Triton pool over gRPC (tritonclient's asyncio client), with a per-call deadline."""

    def __init__(self, pool: TritonPool, timeout_s: float) -> None:
        from tritonclient.grpc import aio

        self.name = pool.name
        self.url = pool.url
        self.timeout_s = timeout_s
        self._client = aio.InferenceServerClient(pool.address, channel_args=CHANNEL_ARGS)

    async def infer(self, served: ServedVersion, x: np.ndarray) -> np.ndarray:
        from tritonclient.grpc import InferInput, InferRequestedOutput
        from tritonclient.utils import InferenceServerException

        tensor = InferInput(INPUT, list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        try:
            result = await self._client.infer(
                served.model,
                [tensor],
                model_version=served.version,
                outputs=[InferRequestedOutput(OUTPUT)],
                client_timeout=self.timeout_s,
            )
        except InferenceServerException as exc:
            message = str(exc.message() or exc)
            status = str(exc.status() or "")
            if any(phrase in message.lower() for phrase in _MODEL_LEVEL):
                raise BackendError("version_unavailable", message, transport=False) from None
            reason = "timeout" if "DEADLINE" in status else "unavailable"
            raise BackendError(reason, f"{self.name}: {status} {message}") from None
        return _scores(self.name, result.as_numpy(OUTPUT), len(x))

    async def close(self) -> None:
        await self._client.close()


class TritonHttpBackend:
    """One Triton pool over HTTP/1.1 keep-alive connections, tensors as raw bytes.

    ``POST /v2/models/<model>/versions/<v>/infer`` with a JSON header followed by the input's
    bytes, the output asked for in binary too (Triton's binary tensor extension of the KServe v2
    protocol): no JSON number formatting or parsing on either side. One request at a time per
    connection; a connection is returned to the pool only after a complete, well-framed answer,
    so a timed-out or broken exchange can never hand its late bytes to the next request.
    """

    def __init__(self, pool: TritonPool, timeout_s: float) -> None:
        self.name = pool.name
        self.url = pool.url
        self.timeout_s = timeout_s
        self._host, _, port = pool.address.rpartition(":")
        self._port = int(port)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._outputs = orjson.dumps([{"name": OUTPUT, "parameters": {"binary_data": True}}])

    async def infer(self, served: ServedVersion, x: np.ndarray) -> np.ndarray:
        request = self._request(served, x)
        try:
            async with asyncio.timeout(self.timeout_s):
                status, body, header_length = await self._exchange(request)
        except TimeoutError:
            raise BackendError("timeout", f"{self.name}: no answer in {self.timeout_s}s") from None
        except (OSError, EOFError, ValueError) as exc:
            raise BackendError("unavailable", f"{self.name}: {exc or type(exc).__name__}") from None
        if status != 200:
            message = _error_message(body)
            if any(phrase in message.lower() for phrase in _MODEL_LEVEL):
                raise BackendError("version_unavailable", message, transport=False)
            raise BackendError("unavailable", f"{self.name}: HTTP {status} {message}")
        try:
            header = orjson.loads(body[:header_length])
            (output,) = header["outputs"]
            if output["datatype"] != "FP32":
                raise ValueError(f"datatype {output['datatype']}")
            scores = np.frombuffer(body, dtype=np.float32, offset=header_length)
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError("bad_response", f"{self.name}: unreadable answer ({exc})") from None
        return _scores(self.name, scores.reshape(-1, 1), len(x))

    def _request(self, served: ServedVersion, x: np.ndarray) -> bytes:
        tensor = np.ascontiguousarray(x, dtype=np.float32).tobytes()
        header = b'{"inputs":[%s],"outputs":%s}' % (
            orjson.dumps(
                {
                    "name": INPUT,
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(tensor)},
                }
            ),
            self._outputs,
        )
        return b"".join(
            (
                f"POST /v2/models/{served.model}/versions/{served.version}/infer HTTP/1.1\r\n"
                f"Host: {self._host}\r\nContent-Type: application/octet-stream\r\n"
                f"Inference-Header-Content-Length: {len(header)}\r\n"
                f"Content-Length: {len(header) + len(tensor)}\r\n\r\n".encode(),
                header,
                tensor,
            )
        )

    async def _exchange(self, request: bytes) -> tuple[int, bytes, int]:
        """Send one request; (status, body, length of its JSON header)."""
        reused = bool(self._idle)
        reader, writer = self._idle.pop() if reused else await self._connect()
        try:
            answer = await _http_exchange(reader, writer, request)
        except (EOFError, ConnectionResetError, BrokenPipeError):
            writer.close()
            if not reused:
                raise
            # A kept-alive connection the server closed while it was idle: sent again once on
            # a fresh connection, within the same deadline. Inference is idempotent, and a pool
            # that is down refuses the connection, so this can never become a retry storm.
            reader, writer = await self._connect()
            try:
                answer = await _http_exchange(reader, writer, request)
            except BaseException:
                writer.close()
                raise
        except BaseException:  # a bad answer, or cancelled mid-exchange: the stream is unusable
            writer.close()
            raise
        status, body, header_length, keep_alive = answer
        if keep_alive and len(self._idle) < IDLE_CONNECTIONS:
            self._idle.append((reader, writer))
        else:
            writer.close()
        return status, body, header_length

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self._host, self._port)

    async def close(self) -> None:
        while self._idle:
            self._idle.pop()[1].close()


async def _http_exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes, int, bool]:
    """(status, body, JSON header length, keep-alive) of one HTTP/1.1 request.

    Triton frames every answer with Content-Length; anything else is refused (ValueError).
    """
    writer.write(request)
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise EOFError("connection closed before an answer") from exc
    except asyncio.LimitOverrunError:
        raise ValueError("answer headers too long") from None
    lines = head.split(b"\r\n")
    status_line = lines[0].split(b" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP answer: {lines[0][:60]!r}")
    status = int(status_line[1])
    length: int | None = None
    header_length: int | None = None
    keep_alive = status_line[0] == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"inference-header-content-length":
            header_length = int(value)
        elif name == b"connection":
            keep_alive = value.strip().lower() == b"keep-alive"
        elif name == b"transfer-encoding":
            raise ValueError("chunked answers are not expected from Triton")
    if length is None:
        raise ValueError("answer without Content-Length")
    try:
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise EOFError("connection closed mid-answer") from exc
    return status, body, length if header_length is None else header_length, keep_alive


def _error_message(body: bytes) -> str:
    """Triton's error text from an error answer (``{"error": "..."}``), else the raw body."""
    try:
        return str(orjson.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body[:200].decode(errors="replace")


def _scores(name: str, scores: np.ndarray | None, rows: int) -> np.ndarray:
    if scores is None or scores.ndim != 2 or len(scores) != rows:
        raise BackendError("bad_response", f"{name} returned no scores for {rows} rows")
    return scores[:, 0]


class InProcessBackend:
    """ONNX Runtime inside the gateway: the last hop, always there."""

    name = "in-process"
    url = None

    async def infer(self, served: ServedVersion, x: np.ndarray) -> np.ndarray:
        # A single-threaded session scoring a few rows takes tens of microseconds: cheaper
        # inline than a hop to a thread pool.
        try:
            return served.score(x)
        except Exception as exc:  # onnxruntime raises untyped errors
            raise BackendError("error", f"in-process ONNX Runtime failed: {exc}") from None

    async def close(self) -> None:
        return None


@dataclass
class Hop:
    backend: Backend
    breaker: CircuitBreaker


class BackendChain:
    """Scores rows on the first hop that answers and says which one it was."""

    def __init__(self, hops: list[Hop], metrics: GatewayMetrics) -> None:
        if not hops:
            raise ValueError("a backend chain needs at least one hop")
        self.hops = hops
        self.metrics = metrics

    @classmethod
    def build(
        cls,
        triton_pools: list[TritonPool],
        timeout_s: float,
        failures: int,
        open_s: float,
        metrics: GatewayMetrics,
    ) -> BackendChain:
        """``triton_pools`` in order of preference; in-process comes last."""
        backends: list[Backend] = [triton_backend(pool, timeout_s) for pool in triton_pools]
        backends.append(InProcessBackend())
        hops = []
        for backend in backends:
            breaker = CircuitBreaker(failures, open_s, _reporter(backend.name, metrics))
            hops.append(Hop(backend, breaker))
        return cls(hops, metrics)

    async def score(self, served: ServedVersion, x: np.ndarray) -> tuple[np.ndarray, str]:
        errors: list[str] = []
        for hop in self.hops:
            name = hop.backend.name
            if not hop.breaker.allow():
                errors.append(f"{name}: circuit open")
                continue
            started = time.perf_counter()
            try:
                scores = await hop.backend.infer(served, x)
            except BackendError as exc:
                if exc.transport:
                    hop.breaker.failure()
                else:
                    hop.breaker.release()
                self.metrics.backend_errors.labels(backend=name, reason=exc.reason).inc()
                errors.append(str(exc))
                continue
            except BaseException:
                hop.breaker.release()  # cancelled: no verdict on the backend
                raise
            hop.breaker.success()
            self.metrics.child(
                self.metrics.backend_duration, name, served.model, served.version
            ).observe(time.perf_counter() - started)
            first = self.hops[0].backend.name
            if name != first:
                self.metrics.fallbacks.labels(
                    model=served.model, from_backend=first, to_backend=name
                ).inc()
            return scores, name
        raise BackendsUnavailable("every model backend failed: " + "; ".join(errors))

    def health(self) -> list[dict[str, str | None]]:
        return [
            {
                "name": hop.backend.name,
                "url": hop.backend.url,
                "circuit": STATE_NAMES[hop.breaker.state],
            }
            for hop in self.hops
        ]

    async def close(self) -> None:
        for hop in self.hops:
            await hop.backend.close()


def triton_backend(pool: TritonPool, timeout_s: float) -> Backend:
    if pool.transport == "http":
        return TritonHttpBackend(pool, timeout_s)
    return TritonGrpcBackend(pool, timeout_s)


def _reporter(name: str, metrics: GatewayMetrics) -> Callable[[int], None]:
    def report(state: int) -> None:
        log.warning("circuit of %s is now %s", name, STATE_NAMES[state])
        metrics.circuit_state.labels(backend=name).set(state)
        metrics.circuit_transitions.labels(backend=name, state=STATE_NAMES[state]).inc()

    return report
