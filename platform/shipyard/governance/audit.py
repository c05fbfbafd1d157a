"""Audit queries: "which version served at time T" (the deployment history) and "what was
prediction X and where did it come from" (the audit log, through an index).

The audit log is append-only JSON lines in per-worker segments (``serving.audit``). Looking one
prediction up by scanning is linear in the log; the index is a SQLite table of
``prediction_id -> (segment, offset, length)`` (plus ``request_id``), caught up incrementally
from each segment's last indexed byte, so a lookup costs one B-tree probe and one ``pread``
whatever the log's size. The index is derived data: delete it and it is rebuilt.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from shipyard.errors import ConfigError

SEGMENT_GLOB = "*/audit-*.jsonl"  # serving.audit's layout: <day>/audit-<start>-<pid>.jsonl
BATCH = 50_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,   -- relative to the audit folder
    inode INTEGER NOT NULL,      -- a rewrite (atomic rename, e.g. an erasure) changes it
    indexed INTEGER NOT NULL     -- bytes of the segment already indexed (whole lines)
);
CREATE TABLE IF NOT EXISTS predictions (
    prediction_id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    segment INTEGER NOT NULL REFERENCES segments(id),
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS predictions_by_request ON predictions(request_id);
"""


def parse_time(text: str) -> datetime:
    """An instant from ISO 8601 (``2026-12-01T10:00:00Z``, naive = UTC) or ``now``."""
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{text!r} is not a time: use ISO 8601, e.g. 2026-12-01T10:00:00Z, or 'now'"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class CatchUp:
    segments: int
    added: int
    total: int


class AuditIndex:
    """SQLite index over the audit folder's segments."""

    def __init__(self, audit_dir: Path, index_file: Path) -> None:
        self.audit_dir = audit_dir
        self.index_file = index_file

    def _connect(self) -> sqlite3.Connection:
        self.index_file.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.index_file)
        connection.executescript(SCHEMA)
        return connection

    def catch_up(self) -> CatchUp:
        """Index every whole line written since the last catch-up."""
        added = segments = 0
        with closing(self._connect()) as db:
            known = {
                path: (sid, inode, done)
                for sid, path, inode, done in db.execute("SELECT * FROM segments")
            }
            for path in sorted(self.audit_dir.glob(SEGMENT_GLOB)):
                name = str(path.relative_to(self.audit_dir))
                sid, inode, done = known.get(name, (None, None, 0))
                stat = path.stat()
                if sid is not None and (stat.st_ino != inode or stat.st_size < done):
                    # Rewritten (an erasure): index it afresh.
                    db.execute("DELETE FROM predictions WHERE segment = ?", (sid,))
                    db.execute(
                        "UPDATE segments SET inode = ?, indexed = 0 WHERE id = ?",
                        (stat.st_ino, sid),
                    )
                    done = 0
                if stat.st_size == done:
                    continue
                if sid is None:
                    sid = db.execute(
                        "INSERT INTO segments (path, inode, indexed) VALUES (?, ?, 0)",
                        (name, stat.st_ino),
                    ).lastrowid
                segments += 1
                for rows, end in _new_lines(path, done):
                    db.executemany(
                        "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?)",
                        [(p, r, sid, o, n) for p, r, o, n in rows],
                    )
                    # Same transaction as the rows: a crash never skips or doubles lines.
                    db.execute("UPDATE segments SET indexed = ? WHERE id = ?", (end, sid))
                    db.commit()
                    added += len(rows)
            total = db.execute("SELECT count(*) FROM predictions").fetchone()[0]
        return CatchUp(segments, added, total)

    def lookup(self, identifier: str) -> list[dict[str, Any]]:
        """The records of a prediction id, or of every prediction of a request id."""
        self.catch_up()
        select = (
            "SELECT s.path, p.offset, p.length FROM predictions p "
            "JOIN segments s ON s.id = p.segment WHERE p.{} = ? ORDER BY p.prediction_id"
        )
        with closing(self._connect()) as db:
            # Two probes, each on its own index (an OR of both columns would scan the table).
            rows = db.execute(select.format("prediction_id"), (identifier,)).fetchall()
            if not rows:
                rows = db.execute(select.format("request_id"), (identifier,)).fetchall()
        records = []
        for name, offset, length in rows:
            fd = os.open(self.audit_dir / name, os.O_RDONLY)
            try:
                records.append(orjson.loads(os.pread(fd, length, offset)))
            finally:
                os.close(fd)
        return records


def _new_lines(path: Path, start: int) -> Iterator[tuple[list[tuple[str, str, int, int]], int]]:
    """Batches of (prediction id, request id, offset, length) of whole lines after ``start``,
    each with the offset just past its last line."""
    with path.open("rb") as handle:
        handle.seek(start)
        offset = start
        rows: list[tuple[str, str, int, int]] = []
        for line in handle:
            if not line.endswith(b"\n"):
                break  # being written: the next catch-up takes it
            record = orjson.loads(line)
            rows.append((record["prediction_id"], record["request_id"], offset, len(line)))
            offset += len(line)
            if len(rows) >= BATCH:
                yield rows, offset
                rows = []
        if rows:
            yield rows, offset
