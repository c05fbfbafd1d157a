"""Features for the gateway: one Feast online-store reader per feature service, encoded into
the model's input rows exactly as training encoded them.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from serving.errors import FeatureStoreUnavailable, UnknownEntity
from serving.models import ServedVersion
from shipyard.errors import ShipyardError
from shipyard.features.encoding import encode_rows
from shipyard.observability.metrics import GatewayMetrics
from shipyard.settings import Settings


class FeatureLookup:
    """Reads a version's feature service for a batch of instances."""

    def __init__(self, settings: Settings, metrics: GatewayMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store_name = settings.profile
        self._store: Any = None
        self._readers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def reader(self, service: str) -> Any:
        """The service's reader, planned from the Feast registry on first use. The store opens
        lazily too: the gateway may start before `shipyard features apply` has run."""
        found = self._readers.get(service)
        if found is None:
            from shipyard.features.online import OnlineFeatureReader
            from shipyard.features.store import open_store

            with self._lock:
                found = self._readers.get(service)
                if found is None:
                    if self._store is None:
                        self._store = open_store(self.settings)
                    found = self._readers[service] = OnlineFeatureReader(
                        self.settings, self._store, service
                    )
        return found

    def rows(self, served: ServedVersion, instances: list[dict[str, Any]]) -> np.ndarray:
        """Model input rows for ``instances``. Raises UnknownEntity, FeatureStoreUnavailable."""
        started = time.perf_counter()
        missing: list[tuple[int, str]] = []
        try:
            features = self.reader(served.feature_service).read(instances, missing)
        except (ShipyardError, sqlite3.Error, OSError) as exc:
            self._failed()
            raise FeatureStoreUnavailable(f"online feature store: {exc}") from None
        except Exception as exc:
            # redis-py's errors (connection refused, timeout) without importing redis here
            if type(exc).__module__.startswith("redis"):
                self._failed()
                raise FeatureStoreUnavailable(
                    f"online feature store ({self.store_name}) unavailable: {exc}"
                ) from None
            raise
        self.metrics.child(self.metrics.feature_duration, self.store_name).observe(
            time.perf_counter() - started
        )
        if missing and self.settings.serving.unknown_entities == "reject":
            index, key = missing[0]
            raise UnknownEntity(
                f"{key} {instances[index][key]} has no features in the online store "
                "(unknown entity, or features not materialized)",
                field=f"instances[{index}].{key}",
            )
        now = datetime.now(UTC)
        stamps = [i.get("event_timestamp") or now for i in instances]
        # Rows of one request share an hour unless timestamps differ: encode per timestamp.
        if all(s == stamps[0] for s in stamps):
            return encode_rows(features, instances, _utc(stamps[0]), served.feature_service)
        return np.vstack(
            [
                encode_rows([f], [i], _utc(s), served.feature_service)
                for f, i, s in zip(features, instances, stamps, strict=True)
            ]
        )

    def _failed(self) -> None:
        self.metrics.feature_errors.labels(store=self.store_name).inc()

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()


def _utc(stamp: datetime) -> datetime:
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
