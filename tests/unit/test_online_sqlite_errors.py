"""How the online reader's SQLite store fails: a locked file within the read deadline, a
missing table with the command that creates it."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.errors import ShipyardError
from shipyard.features.online import _SqliteRead, _View

VIEW = _View(
    name="customer", join_key="customer_id", features=("count",), table="shipyard_customer",
    fields=(b"",), whole=True,
)  # fmt: skip


class _Reader:
    """What the SQLite read needs of an OnlineFeatureReader: its views and key encoding."""

    views = (VIEW,)

    @staticmethod
    def serialized_key(join_key: str, value: int) -> bytes:
        return f"{join_key}={value}".encode()


def _store(path: Path, journal: str) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA journal_mode={journal}")
        conn.execute(
            f'CREATE TABLE "{VIEW.table}" (entity_key BLOB, feature_name TEXT, value BLOB, '
            "PRIMARY KEY (entity_key, feature_name))"
        )
        conn.commit()


@contextlib.contextmanager
def _exclusive_writer(path: Path) -> Iterator[sqlite3.Connection]:
    """A writer holding an exclusive transaction on ``path``, rolled back on exit."""
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")
        yield writer
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_locked_store_fails_within_the_read_deadline(tmp_path: Path) -> None:
    """A rollback-journal file (one no Shipyard writer has opened yet) under a writer's
    exclusive lock: the read gives up at its deadline, and says the store is locked."""
    path = tmp_path / "online.db"
    _store(path, "DELETE")
    reader = _SqliteRead(str(path), timeout_s=0.05)
    with _exclusive_writer(path), contextlib.closing(reader):
        started = time.perf_counter()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            reader.read(_Reader(), [[1]])
        waited = time.perf_counter() - started
    assert 0.04 < waited < 1.0  # Python's default lock wait would be 5 s


def test_under_a_write_ahead_log_a_writer_does_not_block_the_read(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    _store(path, "WAL")
    reader = _SqliteRead(str(path), timeout_s=0.05)
    with _exclusive_writer(path) as writer, contextlib.closing(reader):
        row = (b"customer_id=1", "count", b"")
        writer.execute(f'INSERT INTO "{VIEW.table}" VALUES (?, ?, ?)', row)
        assert reader.read(_Reader(), [[1]]) == [[None]]  # the uncommitted row is not seen


def test_a_missing_table_names_the_command_that_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    sqlite3.connect(path).close()
    reader = _SqliteRead(str(path), timeout_s=0.05)
    with pytest.raises(ShipyardError, match="shipyard features apply"):
        reader.read(_Reader(), [[1]])
    reader.close()
