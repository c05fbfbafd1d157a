"""Chooses stable or canary for each entity, and keeps the routing table current.

Sticky split: an entity's bucket is a hash of (model, entity key) in [0, 10000); it goes to the
canary when the bucket is below ``weight * 100``. One customer therefore sees one version,
and raising the weight only moves more customers over — nobody flips back and forth.

Hot reload: the file is polled (inode, mtime, size — a ConfigMap update swaps a symlink, which
changes all three). A new table is validated and its versions loaded *before* it replaces the
old one in a single reference assignment, so in-flight requests finish on the snapshot they
started with and nothing is dropped. A bad file is refused and the old table keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import blake2b
from pathlib import Path

from shipyard import routing
from shipyard.errors import ConfigError
from shipyard.routing import ModelRoute, RoutingTable

log = logging.getLogger("shipyard.gateway.router")
BUCKETS = 10_000


@dataclass(frozen=True)
class Choice:
    version: str
    route: str  # stable | canary | pinned


def bucket(model: str, entity_key: object) -> int:
    digest = blake2b(f"{model}\x00{entity_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % BUCKETS


def choose(route: ModelRoute, model: str, entity_key: object) -> Choice:
    canary = route.canary
    weight = canary.weight if canary is not None else 0.0
    if weight > 0 and bucket(model, entity_key) < weight * (BUCKETS // 100):
        return Choice(canary.version, "canary")  # type: ignore[union-attr]
    return Choice(route.stable.version, "stable")


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


class Router:
    """The routing table in effect, reloaded from ``path`` when it changes.

    Args:
        path: the routing file.
        check: called with a candidate table before it takes effect; raises ConfigError to
            refuse it (e.g. a version that is not published or does not load).
        on_change: called with the table that took effect and the outcome ("applied" or
            "rejected"), for metrics.
    """

    def __init__(
        self,
        path: Path,
        check: Callable[[RoutingTable], None],
        on_change: Callable[[RoutingTable, str], None] | None = None,
    ) -> None:
        self.path = path
        self._check = check
        self._on_change = on_change or (lambda table, outcome: None)
        self.table = RoutingTable()
        self.last_error: str | None = None
        self._signature: tuple[int, int, int] | None = None

    def reload(self) -> bool:
        """Load the file if it changed; True when a new table took effect."""
        signature = _signature(self.path)
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            table = routing.load(self.path)
            self._check(table)
        except ConfigError as exc:
            self.last_error = str(exc)
            log.error("routing file refused, keeping the previous table: %s", exc)
            self._on_change(self.table, "rejected")
            return False
        self.table = table  # one assignment: requests hold whichever snapshot they read
        self.last_error = None
        log.info("routing table applied: %s", _describe(table))
        self._on_change(table, "applied")
        return True

    def apply(self, table: RoutingTable) -> None:
        """Check, write and take ``table`` into effect now (the admin API)."""
        self._check(table)
        routing.save(self.path, table)
        self._signature = _signature(self.path)
        self.table = table
        self.last_error = None
        self._on_change(table, "applied")

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                self.reload()
            except Exception:  # never let the watcher die: the next poll tries again
                log.exception("routing reload failed")


def _describe(table: RoutingTable) -> str:
    parts = []
    for name, route in table.models.items():
        text = f"{name} stable v{route.stable.version}"
        if route.canary:
            text += f", canary v{route.canary.version} at {route.canary.weight:g}%"
        parts.append(text)
    return "; ".join(parts) or "no models"
