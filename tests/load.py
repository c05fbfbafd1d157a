"""A small steady load for fault tests: a few threads, each sending one request every
``interval_s``, recording every outcome. (Benchmarks use bench/'s open-loop generator.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Outcome:
    at: float
    status: int  # 0: no answer (connection error or timeout)
    customer: int
    body: dict[str, Any] = field(default_factory=dict)
    retry_after: str | None = None

    @property
    def prediction(self) -> dict[str, Any]:
        return self.body["predictions"][0]


class SteadyLoad:
    def __init__(
        self,
        url: str,
        body_for: Callable[[int], dict[str, Any]],
        customers: list[int],
        headers: dict[str, str] | None = None,
        threads: int = 4,
        interval_s: float = 0.01,
    ) -> None:
        self.url = url
        self.body_for = body_for
        self.customers = customers
        self.headers = headers or {}
        self.threads = threads
        self.interval_s = interval_s
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __enter__(self) -> SteadyLoad:
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def _run(self, index: int) -> None:
        sent = index
        with httpx.Client(headers=self.headers, timeout=5) as client:
            while not self._stop.is_set():
                customer = self.customers[sent % len(self.customers)]
                sent += self.threads
                try:
                    response = client.post(self.url, json=self.body_for(customer))
                    outcome = Outcome(time.monotonic(), response.status_code, customer)
                    outcome.retry_after = response.headers.get("retry-after")
                    if response.headers.get("content-type", "").startswith("application/json"):
                        outcome.body = response.json()
                except httpx.HTTPError:
                    outcome = Outcome(time.monotonic(), 0, customer)
                with self._lock:
                    self.outcomes.append(outcome)
                self._stop.wait(self.interval_s)

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def wait_for(self, condition: Callable[[Outcome], bool], within_s: float) -> bool:
        """True once some outcome satisfies ``condition`` (checked on new outcomes only)."""
        seen = len(self.snapshot())
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            outcomes = self.snapshot()
            if any(condition(o) for o in outcomes[seen:]):
                return True
            seen = len(outcomes)
            time.sleep(0.05)
        return False
