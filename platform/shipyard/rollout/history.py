"""The deployment history: one append-only record per routing change (and per retraining
decision), the source for "which version served at time T".

Each record carries the model's routing *after* the change (stable version, canary version and
weight), so the state at any instant is the last routing record at or before it. Records are
JSON lines; on this machine the file is appended under an exclusive lock and fsynced before the
change is applied, on a cluster they live in the routing ConfigMap (see ``shipyard.rollout.store``).
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shipyard.errors import ConfigError
from shipyard.routing import ModelRoute

# Routing changes; the others are decisions that change no traffic.
ROUTING_EVENTS = ("route", "started", "step", "rolled_back", "promoted", "aborted")
Event = Literal[
    "route", "started", "step", "rolled_back", "promoted", "aborted", "retrain", "retrain_skipped"
]


def current_user() -> str:
    """Who runs this command, for the history's ``actor``."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def now_utc() -> datetime:
    return datetime.now(UTC)


class HistoryRecord(BaseModel):
    """One change: when, to which model, the routing it left, why and who did it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time: datetime = Field(default_factory=now_utc)
    model: str
    event: Event
    stable: str | None = None
    canary: str | None = None
    weight: float = 0.0
    reason: str = ""
    actor: str = ""

    @classmethod
    def of_route(
        cls, model: str, route: ModelRoute | None, event: Event, reason: str, actor: str
    ) -> HistoryRecord:
        """A record carrying ``route`` as it stands (decisions that change no traffic)."""
        canary = route.canary if route is not None else None
        return cls(
            model=model,
            event=event,
            stable=route.stable.version if route is not None else None,
            canary=canary.version if canary is not None else None,
            weight=canary.weight if canary is not None else 0.0,
            reason=reason,
            actor=actor,
        )

    @property
    def routing(self) -> bool:
        return self.event in ROUTING_EVENTS

    def line(self) -> str:
        return json.dumps(self.model_dump(mode="json"), separators=(",", ":")) + "\n"


def parse_lines(text: str, source: str) -> list[HistoryRecord]:
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(HistoryRecord.model_validate_json(line))
        except ValueError:
            # A torn last line (crash mid-append) is the only expected damage: skip it.
            if number < len(text.splitlines()):
                raise ConfigError(f"{source}: line {number} is not a history record") from None
    return records


def served_at(records: Iterable[HistoryRecord], when: datetime, model: str | None = None) -> dict:
    """Per model, the last routing record at or before ``when`` (what served at that instant)."""
    latest: dict[str, HistoryRecord] = {}
    for record in records:
        if not record.routing or record.time > when:
            continue
        if model is not None and record.model != model:
            continue
        if record.model not in latest or record.time >= latest[record.model].time:
            latest[record.model] = record
    return latest


class HistoryFile:
    """The embedded stack's history: a JSON-lines file, appended and fsynced under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, records: Iterable[HistoryRecord]) -> None:
        text = "".join(record.line() for record in records)
        if not text:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> list[HistoryRecord]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        return parse_lines(text, str(self.path))

    def __iter__(self) -> Iterator[HistoryRecord]:
        return iter(self.records())
