"""Feast's SQLite online store with two changes: an older event never overwrites a newer one,
and the file keeps a write-ahead log.

Feast's SQLite store upserts blindly, so materializing an old window after a newer one, or a
late push, would roll values back in time (its Redis store already compares timestamps). This
subclass drops, inside one write transaction, every row older than what the store holds for
that entity, and every row of a batch that a newer row of the same batch supersedes; the rest
is written by Feast itself, so the on-disk format stays Feast's.

With Feast's default rollback journal, a commit locks readers out: the gateway's reads would
wait while materialize, push or forget commit. In write-ahead-log mode (a property of the file,
set by the first connection this store opens, then kept) readers see the last committed values
and never wait for a writer, nor a writer for them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from feast import FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.sqlite import SqliteOnlineStore, SqliteOnlineStoreConfig, _table_id
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import RepoConfig
from feast.utils import to_naive_utc

STORE_TYPE = "shipyard.features.online_store.GuardedSqliteOnlineStore"
# SQLite's default limit on bound parameters is far above this; chunks keep statements small.
KEYS_PER_QUERY = 900

Row = tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]


class GuardedSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """Same options as Feast's ``sqlite`` online store."""

    type: Literal[STORE_TYPE] = STORE_TYPE  # type: ignore[assignment]


class GuardedSqliteOnlineStore(SqliteOnlineStore):
    """SQLite online store whose writes never move an entity's values back in time."""

    def _get_conn(self, config: RepoConfig) -> Any:
        fresh = not self._conn
        conn = super()._get_conn(config)
        if fresh:
            conn.execute("PRAGMA journal_mode=WAL")  # module doc; a no-op once the file has it
        return conn

    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: list[Row],
        progress: Callable[[int], Any] | None,
    ) -> None:
        conn = self._get_conn(config)
        name = _table_id(
            config.project, table, config.registry.enable_online_feature_view_versioning
        )
        version = config.entity_key_serialization_version
        # BEGIN IMMEDIATE takes the write lock before reading, so no concurrent writer can slip
        # a newer row in between the check and the write; Feast's write commits it.
        conn.execute("BEGIN IMMEDIATE")
        try:
            newest: dict[bytes, tuple[datetime, Row]] = {}
            for row in data:
                key = serialize_entity_key(row[0], entity_key_serialization_version=version)
                event_ts = to_naive_utc(row[2])
                if key not in newest or event_ts >= newest[key][0]:
                    newest[key] = (event_ts, row)
            stored = _stored_timestamps(conn, name, list(newest))
            kept = [
                row
                for key, (event_ts, row) in newest.items()
                if key not in stored or event_ts >= stored[key]
            ]
            if progress and len(data) > len(kept):
                progress(len(data) - len(kept))
            if kept:
                super().online_write_batch(config, table, kept, progress)
            else:
                conn.commit()
        except BaseException:
            conn.rollback()
            raise


def _stored_timestamps(conn: Any, table: str, keys: Sequence[bytes]) -> dict[bytes, datetime]:
    stored: dict[bytes, datetime] = {}
    quoted = '"' + table.replace('"', '""') + '"'
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    if not exists:
        return stored
    for start in range(0, len(keys), KEYS_PER_QUERY):
        chunk = keys[start : start + KEYS_PER_QUERY]
        marks = ",".join("?" * len(chunk))
        # No MAX(): SQLite only converts declared column types, not aggregates, to datetime.
        query = f"SELECT entity_key, event_ts FROM {quoted} WHERE entity_key IN ({marks})"
        for key, event_ts in conn.execute(query, chunk):
            when = _as_datetime(event_ts)
            key = bytes(key)
            if key not in stored or when > stored[key]:
                stored[key] = when
    return stored


def _as_datetime(value: datetime | str | bytes) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, bytes):
        value = value.decode()
    return datetime.fromisoformat(value)
