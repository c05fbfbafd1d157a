"""The circuit breaker's states, driven by a fake clock."""

from __future__ import annotations

from serving.backends import CircuitBreaker
from shipyard.observability.metrics import CIRCUIT_CLOSED, CIRCUIT_HALF_OPEN, CIRCUIT_OPEN


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_then_probes_once_and_closes() -> None:
    clock, states = Clock(), []
    breaker = CircuitBreaker(failures=3, open_s=2.0, on_change=states.append, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    breaker.allow()
    breaker.success()  # a success resets the count
    for _ in range(3):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == CIRCUIT_OPEN and not breaker.allow()
    clock.now = 1.9
    assert not breaker.allow()
    clock.now = 2.0
    assert breaker.allow()  # the one probe
    assert breaker.state == CIRCUIT_HALF_OPEN and not breaker.allow()  # nobody else meanwhile
    breaker.success()
    assert breaker.state == CIRCUIT_CLOSED and breaker.allow()
    assert states == [CIRCUIT_OPEN, CIRCUIT_HALF_OPEN, CIRCUIT_CLOSED]


def test_a_failed_probe_opens_again_for_a_full_interval() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, open_s=1.0, clock=clock)
    breaker.allow()
    breaker.failure()
    clock.now = 1.0
    assert breaker.allow()
    breaker.failure()
    assert breaker.state == CIRCUIT_OPEN
    clock.now = 1.5
    assert not breaker.allow()
    clock.now = 2.0
    assert breaker.allow()


def test_a_released_probe_lets_the_next_request_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, open_s=1.0, clock=clock)
    breaker.allow()
    breaker.failure()
    clock.now = 1.0
    assert breaker.allow()
    breaker.release()  # e.g. the version was not loaded there: no verdict
    assert breaker.allow()
