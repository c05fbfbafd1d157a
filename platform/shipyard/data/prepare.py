"""Raw events -> clean events: drop redeliveries, validate, redact PII, write atomically.

This is the only way data reaches the feature job and training: what comes out has passed the
quality gate and carries no raw PII. The clean data set keeps the raw layout (date partitions
and a manifest) and records where it came from: the raw digest, the gate and the PII policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from shipyard.data import pii
from shipyard.data.manifest import content_digest, read_manifest, write_manifest
from shipyard.data.offline_source import atomic_folder, read_transactions, write_transactions
from shipyard.data.quality import (
    DataValidationError,
    ValidationReport,
    transactions_schema,
    validate,
)
from shipyard.settings import PII_COLUMNS, Settings
from shipyard.stack.layout import StateLayout


@dataclass(frozen=True)
class PrepareResult:
    rows_in: int
    redeliveries_dropped: int
    rows_out: int
    manifest: dict


def drop_redeliveries(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Keep the first arrival of records delivered more than once (identical but for arrival).

    Records that share a ``transaction_id`` but differ in content are *not* redeliveries: they
    stay, and the uniqueness rule of the gate reports them.
    """
    if not {"transaction_id", "event_timestamp", "created_timestamp"} <= set(frame.columns):
        return frame, 0  # the quality gate reports the missing columns
    content = [c for c in frame.columns if c != "created_timestamp"]
    kept = frame.sort("created_timestamp").unique(subset=content, keep="first", maintain_order=True)
    kept = kept.sort("event_timestamp", "transaction_id")
    return kept, frame.height - kept.height


def load_raw(raw: Path) -> tuple[pl.DataFrame, dict, int, int]:
    """The raw data set without redeliveries: (frame, manifest, rows read, redeliveries)."""
    source = read_manifest(raw)
    frame = read_transactions(raw)
    rows_in = frame.height
    frame, redeliveries = drop_redeliveries(frame)
    return frame, source, rows_in, redeliveries


def check(settings: Settings, frame: pl.DataFrame, what: str, as_of: datetime) -> ValidationReport:
    """Run the quality gate on raw ``frame``; raises DataValidationError when a rule breaks."""
    present_pii = {c: settings.pii.columns[c] for c in PII_COLUMNS if c in frame.columns}
    schema = transactions_schema(
        as_of=as_of,
        max_age=timedelta(hours=settings.data.max_age_h),
        max_amount=settings.data.max_amount,
        pii_columns=present_pii,
    )
    report = validate(frame, schema)
    if not report.ok:
        raise DataValidationError(what, report)
    return report


def redact_and_write(
    settings: Settings,
    frame: pl.DataFrame,
    out: Path,
    source: dict,
    source_path: Path,
    rows_in: int,
    redeliveries: int,
    as_of: datetime,
) -> PrepareResult:
    """Redact validated ``frame`` and replace the clean data set ``out`` atomically."""
    layout = StateLayout(settings.state_dir)
    clean = pii.redact(frame, settings.pii.columns, pii.pii_key(settings, layout.secrets))
    manifest = {
        "kind": "clean",
        "rows": clean.height,
        "rows_in": rows_in,
        "redeliveries_dropped": redeliveries,
        "source": {"path": str(source_path), "digest": source.get("digest")},
        "validated_as_of": as_of.isoformat(),
        "pii_policy": settings.pii.columns,
        "columns": clean.columns,
        "event_time_range": [
            clean.get_column("event_timestamp").min().isoformat(),
            clean.get_column("event_timestamp").max().isoformat(),
        ],
    }
    with atomic_folder(out, overwrite=True) as staging:
        write_transactions(clean.to_arrow(), staging / "transactions")
        manifest["digest"] = content_digest(staging)
        write_manifest(staging, manifest)
    return PrepareResult(rows_in, redeliveries, clean.height, manifest)


def prepare(
    settings: Settings,
    raw: Path | None = None,
    out: Path | None = None,
    as_of: datetime | None = None,
) -> PrepareResult:
    """Turn the raw data set into the clean one. Raises DataValidationError; writes nothing then.

    Args:
        raw: raw data set folder (default: the state directory's).
        out: clean data set folder, replaced atomically (default: the state directory's).
        as_of: validation time for the freshness rules (default: now).
    """
    layout = StateLayout(settings.state_dir)
    raw = raw or layout.raw_data
    out = out or layout.clean_data
    as_of = as_of or datetime.now(UTC)
    frame, source, rows_in, redeliveries = load_raw(raw)
    check(settings, frame, f"raw data {raw}", as_of)
    return redact_and_write(settings, frame, out, source, raw, rows_in, redeliveries, as_of)
