"""The online feature path of the gateway: read a feature service straight from Feast's online
store (SQLite or Redis) in one round trip for all its views (one SQL statement, one Redis
pipeline), and decode values without protobuf objects.

Feast's SDK (``get_online_features``) spends most of its time on per-call planning and
protobuf conversion around a store read that itself takes tens of microseconds. This reader
plans once (views, keys, field hashes from the registry) and then does only the read and a
small decoder for the value types the catalog uses. Tests hold it equal to the SDK's answers
on both stores, so a change in Feast's storage format fails loudly.

Missing entities get the catalog's fill values, exactly as training sets do.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feast import FeatureStore
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import _mmh3
from feast.infra.online_stores.sqlite import _table_id
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from shipyard.errors import ShipyardError
from shipyard.features.catalog import (
    AMOUNT_TO_MEAN,
    AMOUNT_TO_MEAN_BASIS,
    REQUEST_AMOUNT,
    amount_to_mean,
)
from shipyard.features.training import service_plan
from shipyard.settings import Settings

_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")
_INT64 = struct.Struct("<q")
# Field tags of feast.types.Value: field number << 3 | wire type (0 varint, 1 fixed64,
# 5 fixed32). int32_val = 3, int64_val = 4, double_val = 5, float_val = 6, bool_val = 7.
_INT32_TAG, _INT64_TAG, _DOUBLE_TAG, _FLOAT_TAG, _BOOL_TAG = 0x18, 0x20, 0x29, 0x35, 0x38


def decode_value(raw: bytes) -> Any:
    """A scalar ``feast.types.Value`` from its wire bytes; protobuf only for other types."""
    if not raw:
        return None
    tag = raw[0]
    if tag in (_INT64_TAG, _INT32_TAG, _BOOL_TAG):
        value, shift = 0, 0
        for byte in raw[1:]:
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if value >= 1 << 63:  # negative int64 (two's complement varint)
            value -= 1 << 64
        return bool(value) if tag == _BOOL_TAG else value
    if tag == _DOUBLE_TAG and len(raw) == 9:
        return _DOUBLE.unpack_from(raw, 1)[0]
    if tag == _FLOAT_TAG and len(raw) == 5:
        return _FLOAT.unpack_from(raw, 1)[0]
    proto = ValueProto.FromString(raw)
    kind = proto.WhichOneof("val")
    return getattr(proto, kind) if kind else None


@dataclass(frozen=True)
class _View:
    name: str
    join_key: str
    features: tuple[str, ...]
    table: str  # SQLite table name
    fields: tuple[bytes, ...]  # Redis hash fields of the features
    whole: bool  # the service reads every feature of the view


class OnlineFeatureReader:
    """Reads one feature service for many entity rows from the online store.

    Args:
        settings: selects the store (profile) and its location.
        store: an open Feast store (its registry plans the read).
        service: the feature service of the model version being served.
    """

    def __init__(self, settings: Settings, store: FeatureStore, service: str) -> None:
        joins, on_demand = service_plan(store, service)
        config = store.config
        self.service = service
        self.project = config.project
        self._key_version = config.entity_key_serialization_version
        versioning = config.registry.enable_online_feature_view_versioning
        self.views = []
        for j in joins:
            view = store.get_feature_view(j.view)
            self.views.append(
                _View(
                    name=j.view,
                    join_key=j.join_key,
                    features=tuple(j.features),
                    table=_table_id(config.project, view, versioning),
                    fields=tuple(_mmh3(f"{j.view}:{f}") for f in j.features),
                    whole=set(j.features) == {f.name for f in view.features},
                )
            )
        self.on_demand = list(on_demand)
        self.feature_names = [f for v in self.views for f in v.features] + self.on_demand
        self._key_prefixes: dict[str, bytes | None] = {}
        for view in self.views:
            self._key_prefixes[view.join_key] = self._key_prefix(view.join_key)
        self._store = _connect(settings, config)

    def read(
        self, rows: Sequence[dict[str, Any]], missing: list[tuple[int, str]] | None = None
    ) -> list[dict[str, Any]]:
        """Features for each row (entity keys plus request fields such as ``amount``).

        Rows whose entity has no features in a view get the fill values; when ``missing`` is
        given, each such (row index, join key) is appended to it.
        """
        results: list[dict[str, Any]] = [{} for _ in rows]
        ids = []
        for view in self.views:
            try:
                ids.append([row[view.join_key] for row in rows])
            except KeyError:
                raise ShipyardError(f"every row needs {view.join_key!r}") from None
        for view, values in zip(self.views, self._store.read(self, ids), strict=True):
            for index, (result, found) in enumerate(zip(results, values, strict=True)):
                if found is None:
                    result.update(dict.fromkeys(view.features, 0))
                    if missing is not None:
                        missing.append((index, view.join_key))
                else:
                    result.update(found)
        if AMOUNT_TO_MEAN in self.on_demand:
            for row, result in zip(rows, results, strict=True):
                result[AMOUNT_TO_MEAN] = amount_to_mean(
                    float(row[REQUEST_AMOUNT]), result.get(AMOUNT_TO_MEAN_BASIS)
                )
        return results

    def entity_key(self, join_key: str, value: int) -> EntityKeyProto:
        key = EntityKeyProto(join_keys=[join_key])
        key.entity_values.add().int64_val = int(value)
        return key

    def serialized_key(self, join_key: str, value: int) -> bytes:
        prefix = self._key_prefixes.get(join_key)
        if prefix is not None:
            return prefix + _INT64.pack(value)
        return serialize_entity_key(
            self.entity_key(join_key, value), entity_key_serialization_version=self._key_version
        )

    def _key_prefix(self, join_key: str) -> bytes | None:
        """Feast's serialization of a one-int64 key is a constant prefix and the packed value;
        learn the prefix once and prove it on a few values, else use Feast's serializer."""
        samples = [0, 1, -1, 2**40 + 7]
        serialized = [
            serialize_entity_key(
                self.entity_key(join_key, v), entity_key_serialization_version=self._key_version
            )
            for v in samples
        ]
        prefix = serialized[0][: -_INT64.size]
        if all(s == prefix + _INT64.pack(v) for s, v in zip(serialized, samples, strict=True)):
            return prefix
        return None

    def close(self) -> None:
        self._store.close()


class _SqliteRead:
    def __init__(self, path: str, timeout_s: float) -> None:
        # Read-only: the reader must never create or change the store it serves from. The store
        # keeps a write-ahead log (online_store.py), so a read does not wait for a writer. A
        # file no Shipyard writer has opened yet can still be locked: the read then gives up at
        # the read deadline rather than Python's default of five seconds.
        self._conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=timeout_s
        )
        self._queries: dict[tuple[int, ...], str] = {}

    def read(self, reader: OnlineFeatureReader, ids: list[list[int]]) -> list[list[dict | None]]:
        """Per view of ``reader``, the features of each of its entity ids (None: not found)."""
        views = reader.views
        keys = [
            [reader.serialized_key(view.join_key, i) for i in view_ids]
            for view, view_ids in zip(views, ids, strict=True)
        ]
        params: list[bytes | str] = []
        for view, view_keys in zip(views, keys, strict=True):
            params += view_keys
            if not view.whole:
                params += view.features
        # One statement for every view: one read transaction (locks, journal check) per request.
        shape = tuple(len(k) for k in keys)
        query = self._queries.get(shape)
        if query is None:
            query = self._queries[shape] = " UNION ALL ".join(
                _select(number, view, count)
                for number, (view, count) in enumerate(zip(views, shape, strict=True))
            )
        found: list[dict[bytes, dict[str, Any]]] = [{} for _ in views]
        try:
            for number, key, name, raw in self._conn.execute(query, params):
                values = found[number].get(key)
                if values is None:
                    values = found[number][key] = {}
                values[name] = decode_value(raw)
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise  # locked past the deadline, I/O: the caller reports the store unavailable
            missing = [v.name for v in views if v.table in str(exc)] or [v.name for v in views]
            raise ShipyardError(
                f"online store has no table for {', '.join(missing)} ({exc}): run "
                "`shipyard features apply`"
            ) from None
        return [
            [_complete(view_found.get(k), view) for k in view_keys]
            for view, view_found, view_keys in zip(views, found, keys, strict=True)
        ]

    def close(self) -> None:
        self._conn.close()


class _RedisRead:
    def __init__(self, client: Any) -> None:
        self._client = client

    def read(self, reader: OnlineFeatureReader, ids: list[list[int]]) -> list[list[dict | None]]:
        """Per view of ``reader``, the features of each of its entity ids (None: not found)."""
        # One pipeline for every view: one round trip per request.
        pipe = self._client.pipeline(transaction=False)
        # Feast's Redis key is the serialized entity key followed by the project name.
        project = reader.project.encode()
        for view, view_ids in zip(reader.views, ids, strict=True):
            for i in view_ids:
                pipe.hmget(reader.serialized_key(view.join_key, i) + project, view.fields)
        answers = iter(pipe.execute())
        out: list[list[dict | None]] = []
        for view, view_ids in zip(reader.views, ids, strict=True):
            per_view: list[dict | None] = []
            for _ in view_ids:
                values = next(answers)
                if all(v is None for v in values):
                    per_view.append(None)
                    continue
                per_view.append(
                    {
                        name: (decode_value(raw) if raw is not None else 0)
                        for name, raw in zip(view.features, values, strict=True)
                    }
                )
            out.append(per_view)
        return out

    def close(self) -> None:
        self._client.close()


def _select(number: int, view: _View, keys: int) -> str:
    """The SQL reading ``keys`` entities of ``view``, its rows tagged with ``number``."""
    query = (
        f'SELECT {number}, entity_key, feature_name, value FROM "{view.table}" '
        f"WHERE entity_key IN ({','.join('?' * keys)})"
    )
    if view.whole:
        # Every feature of the view: one range scan per key over the (entity_key,
        # feature_name) primary key, instead of one probe per feature (about half the time).
        return query
    # Only the service's features: a view may hold many more than a model uses.
    return query + f" AND feature_name IN ({','.join('?' * len(view.features))})"


def _complete(found: dict[str, Any] | None, view: _View) -> dict[str, Any] | None:
    if found is None:
        return None
    return {name: found.get(name, 0) for name in view.features}


def _connect(settings: Settings, config: Any) -> _SqliteRead | _RedisRead:
    if settings.profile == "redis":
        # A deadline on every read: a stalled store must fail the request fast, not hang it.
        return _RedisRead(_redis_client(settings, settings.serving.feature_timeout_ms / 1000))
    return _SqliteRead(config.online_store.path, settings.serving.feature_timeout_ms / 1000)


def _redis_client(settings: Settings, timeout_s: float) -> Any:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    return redis.Redis(
        host=settings.redis_host,
        port=settings.ports.redis,
        password=password or None,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        # redis-py retries three times with backoff by default: seconds of waiting on a
        # store that is down. The caller answers 503 at once; its client may retry.
        retry=Retry(NoBackoff(), 0),
    )


# --- erasure -------------------------------------------------------------------------------


def entity_key_bytes(join_key: str, value: int, version: int) -> bytes:
    """Feast's storage key of a one-int64 entity."""
    key = EntityKeyProto(join_keys=[join_key])
    key.entity_values.add().int64_val = int(value)
    return serialize_entity_key(key, entity_key_serialization_version=version)


def erase_entity(settings: Settings, store: FeatureStore, join_key: str, value: int) -> int:
    """Delete every online value of one entity (each view keyed by ``join_key``); returns the
    rows (SQLite: one per feature) or keys (Redis: one per entity) removed."""
    return _online_rows(settings, store, join_key, value, delete=True)


def entity_rows(settings: Settings, store: FeatureStore, join_key: str, value: int) -> int:
    """How many online rows (SQLite) or keys (Redis) one entity still has."""
    return _online_rows(settings, store, join_key, value, delete=False)


def _online_rows(
    settings: Settings, store: FeatureStore, join_key: str, value: int, delete: bool
) -> int:
    config = store.config
    key = entity_key_bytes(join_key, value, config.entity_key_serialization_version)
    if settings.profile == "redis":
        import redis

        client = _redis_client(settings, timeout_s=10)
        try:
            # Feast keeps one hash per entity (every view's fields), named key + project.
            name = key + config.project.encode()
            return int(client.delete(name) if delete else client.exists(name))
        except redis.RedisError as exc:
            raise ShipyardError(
                f"Redis online store at {settings.redis_host}:{settings.ports.redis}: {exc}; "
                "start the stack (`make up`) and run again"
            ) from None
        finally:
            client.close()
    versioning = config.registry.enable_online_feature_view_versioning
    tables = [
        _table_id(config.project, view, versioning)
        for view in store.list_feature_views()
        if join_key in view.join_keys
    ]
    if not Path(config.online_store.path).exists():
        return 0  # nothing materialized yet (and connecting would create the file)
    connection = sqlite3.connect(config.online_store.path, timeout=30)
    try:
        existing = {name for (name,) in connection.execute("SELECT name FROM sqlite_master")}
        total = 0
        with connection:  # one transaction: the entity disappears from every view at once
            for table in tables:
                if table not in existing:
                    continue
                verb = "DELETE" if delete else "SELECT count(*)"
                cursor = connection.execute(f'{verb} FROM "{table}" WHERE entity_key = ?', (key,))
                total += cursor.rowcount if delete else cursor.fetchone()[0]
        return total
    finally:
        connection.close()
