"""The backend chain: Triton primary pool (GPU on a cluster) → Triton CPU pool → in-process
ONNX Runtime.

Each request walks the chain once, in order, and stops at the first hop that answers: a hop
is tried at most once per request (no retries, so no retry storms). Each Triton hop has a
deadline and a circuit breaker. After ``failures`` consecutive transport failures the breaker
opens and the hop is skipped outright; after ``open_s`` one request is let through as a probe
(half-open) — success closes the breaker, failure opens it again. A request that finds a
version missing on one pool (not yet loaded there) moves on without counting against it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from serving.errors import BackendsUnavailable
from serving.models import ServedVersion
from shipyard.observability.metrics import (
    CIRCUIT_CLOSED,
    CIRCUIT_HALF_OPEN,
    CIRCUIT_OPEN,
    GatewayMetrics,
)
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


class TritonBackend:
    """One Triton pool over gRPC (asyncio client), with a per-call deadline."""

    def __init__(self, name: str, url: str, timeout_s: float) -> None:
        from tritonclient.grpc import aio

        self.name = name
        self.url = url
        self.timeout_s = timeout_s
        self._client = aio.InferenceServerClient(url, channel_args=CHANNEL_ARGS)

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
        scores = result.as_numpy(OUTPUT)
        if scores is None or len(scores) != len(x):
            raise BackendError("bad_response", f"{self.name} returned no scores for {len(x)} rows")
        return scores[:, 0]

    async def close(self) -> None:
        await self._client.close()


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
        triton_pools: list[tuple[str, str]],
        timeout_s: float,
        failures: int,
        open_s: float,
        metrics: GatewayMetrics,
    ) -> BackendChain:
        """``triton_pools``: (name, gRPC url) in order of preference; in-process comes last."""
        backends: list[Backend] = [TritonBackend(n, u, timeout_s) for n, u in triton_pools]
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
            self.metrics.backend_duration.labels(
                backend=name, model=served.model, version=served.version
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


def _reporter(name: str, metrics: GatewayMetrics) -> Callable[[int], None]:
    def report(state: int) -> None:
        log.warning("circuit of %s is now %s", name, STATE_NAMES[state])
        metrics.circuit_state.labels(backend=name).set(state)
        metrics.circuit_transitions.labels(backend=name, state=STATE_NAMES[state]).inc()

    return report
