"""Streaming updates: fresh transactions -> exact customer aggregates -> online store.

A batch of fresh events goes through the same gate and redaction as the batch path, is
appended to the clean data set (one new Parquet file per partition, each moved into place with
``rename``), and the pushed customers' windows are recomputed from their recent history plus the
new events. The latest value of each, as known now, is pushed to the online store through the
view's push source; the guarded store ignores anything older than what it holds. Batch feature
tables pick the events up at the next ``shipyard features build``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from feast import FeatureStore
from feast.data_source import PushMode

from shipyard.data import pii
from shipyard.data.manifest import content_digest, read_manifest, write_manifest
from shipyard.data.offline_source import read_transactions
from shipyard.data.prepare import check, drop_redeliveries
from shipyard.errors import ShipyardError
from shipyard.features.catalog import CUSTOMER
from shipyard.features.job import events_for_features
from shipyard.features.windows import change_points
from shipyard.settings import Settings
from shipyard.stack.layout import StateLayout

PUSH_SOURCE = f"{CUSTOMER.view}_push"


@dataclass(frozen=True)
class PushResult:
    events: int
    customers: int
    appended_files: int


def read_events(path: Path) -> pl.DataFrame:
    """Fresh transactions from a JSON-lines or Parquet file, typed like the raw data set."""
    if not path.is_file():
        raise ShipyardError(f"{path} does not exist: pass a .jsonl or .parquet file of events")
    try:
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
        elif path.suffix in {".jsonl", ".json", ".ndjson"}:
            frame = pl.read_ndjson(path)
        else:
            raise ShipyardError(f"{path}: unknown format, use .jsonl or .parquet")
    except pl.exceptions.PolarsError as exc:
        raise ShipyardError(f"{path} is not readable as events: {exc}") from None
    casts = {
        "event_timestamp": pl.Datetime("us", "UTC"),
        "created_timestamp": pl.Datetime("us", "UTC"),
        "is_fraud": pl.Int8,
        "amount": pl.Float64,
    }
    typed = []
    for name in frame.columns:
        column = pl.col(name)
        if name in casts:
            if frame.schema[name] == pl.String:
                column = column.str.to_datetime(time_zone="UTC", time_unit="us", strict=False)
            column = column.cast(casts[name], strict=False)
        elif name in {"transaction_id", "customer_id", "merchant_id"}:
            column = column.cast(pl.Int64, strict=False)
        typed.append(column.alias(name))
    frame = frame.select(typed)
    if "created_timestamp" not in frame.columns:  # arrival is now unless the producer says
        frame = frame.with_columns(
            pl.lit(datetime.now(UTC)).cast(casts["created_timestamp"]).alias("created_timestamp")
        )
    return frame.with_columns(pl.col(pl.Categorical).cast(pl.String))


def push_events(
    settings: Settings, store: FeatureStore, events: pl.DataFrame, now: datetime | None = None
) -> PushResult:
    """Validate, redact, append and push ``events``; nothing is written if the gate fails."""
    layout = StateLayout(settings.state_dir)
    now = now or datetime.now(UTC)
    clean_dir = layout.clean_data
    manifest = read_manifest(clean_dir)
    events, _ = drop_redeliveries(events)
    check(settings, events, "pushed events", now)
    clean = pii.redact(events, settings.pii.columns, pii.pii_key(settings, layout.secrets))
    clean = clean.select(manifest["columns"]) if "columns" in manifest else clean

    history = _recent_history(clean_dir, clean, now)
    already = set(history.get_column("transaction_id").to_list())
    fresh = clean.filter(~pl.col("transaction_id").is_in(list(already)))
    appended = _append(clean_dir, fresh, manifest)

    features = change_points(events_for_features(pl.concat([history, fresh])), CUSTOMER)
    latest = (
        features.filter(pl.col("event_timestamp") <= now)
        .sort(CUSTOMER.join_key, "event_timestamp")
        .unique(CUSTOMER.join_key, keep="last")
    )
    if latest.height:
        store.push(PUSH_SOURCE, latest.to_pandas(), to=PushMode.ONLINE)
    return PushResult(fresh.height, latest.height, appended)


def _recent_history(clean_dir: Path, batch: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """The pushed customers' clean events that can still be inside a window at ``now``."""
    horizon = min(batch.get_column("event_timestamp").min(), now) - CUSTOMER.ttl
    customers = batch.get_column(CUSTOMER.join_key).unique().to_list()
    return read_transactions(clean_dir).filter(
        pl.col(CUSTOMER.join_key).is_in(customers) & (pl.col("event_timestamp") >= horizon)
    )


def _append(clean_dir: Path, fresh: pl.DataFrame, manifest: dict) -> int:
    if fresh.is_empty():
        return 0
    batch = uuid.uuid4().hex[:12]
    written = 0
    days = fresh.with_columns(pl.col("event_timestamp").dt.date().alias("_day"))
    for (day,), part in days.group_by("_day"):
        folder = clean_dir / "transactions" / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"push-{batch}.parquet"
        staging = folder / f".push-{batch}.parquet.partial"
        part.drop("_day").write_parquet(staging)
        staging.rename(target)  # readers see the whole file or none of it
        written += 1
    manifest = {
        **manifest,
        "rows": manifest.get("rows", 0) + fresh.height,
        "pushed_batches": [*manifest.get("pushed_batches", []), batch],
        "digest": content_digest(clean_dir),
    }
    staging = clean_dir / ".manifest.partial"
    staging.mkdir(exist_ok=True)
    write_manifest(staging, manifest)
    (staging / "manifest.json").rename(clean_dir / "manifest.json")
    staging.rmdir()
    return written
