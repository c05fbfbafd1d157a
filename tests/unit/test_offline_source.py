"""Writing the offline source: partitioned, complete or absent, reproducible digest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow.dataset as ds
import pytest

from shipyard.data.manifest import content_digest, read_manifest
from shipyard.data.offline_source import (
    ERASING_SUFFIX,
    data_sets,
    erase_rows,
    matching_rows,
    read_transactions,
    write_offline_source,
)
from shipyard.data.synthetic import SyntheticConfig, generate
from shipyard.errors import ShipyardError

CONFIG = SyntheticConfig(rows=3_000, start=datetime(2026, 2, 1, tzinfo=UTC), days=4, seed=3)


def test_partitions_by_event_date_and_reads_back(tmp_path: Path) -> None:
    manifest = write_offline_source(generate(CONFIG), CONFIG, tmp_path / "raw")
    folders = sorted(p.name for p in (tmp_path / "raw" / "transactions").iterdir())
    assert folders == [f"date=2026-02-0{day}" for day in range(1, 5)]
    dataset = ds.dataset(tmp_path / "raw" / "transactions", partitioning="hive")
    assert dataset.count_rows() == manifest["rows"] == 3_000
    assert read_manifest(tmp_path / "raw")["digest"] == manifest["digest"]


def test_same_config_same_digest(tmp_path: Path) -> None:
    first = write_offline_source(generate(CONFIG), CONFIG, tmp_path / "a")
    second = write_offline_source(generate(CONFIG), CONFIG, tmp_path / "b")
    assert first["digest"] == second["digest"]


def test_existing_data_is_kept_unless_overwrite_and_no_staging_is_left(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    original = write_offline_source(generate(CONFIG), CONFIG, out)
    other = SyntheticConfig(rows=1_000, start=CONFIG.start, days=2, seed=4)
    with pytest.raises(ShipyardError, match="already exists: pass --overwrite"):
        write_offline_source(generate(other), other, out)
    assert read_manifest(out)["digest"] == original["digest"]
    replaced = write_offline_source(generate(other), other, out, overwrite=True)
    assert read_manifest(out)["rows"] == replaced["rows"] == 1_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_a_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shipyard.data.offline_source as offline_source

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(offline_source.pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        write_offline_source(generate(CONFIG), CONFIG, tmp_path / "raw")
    assert list(tmp_path.iterdir()) == []


def _customer_rows(root: Path, customer: int) -> int:
    return sum(
        matching_rows(path, "customer_id", customer)
        for files in data_sets(root).values()
        for path in files
    )


def test_erasing_rewrites_only_affected_partitions_and_keeps_the_manifest_true(
    tmp_path: Path,
) -> None:
    raw = tmp_path / "raw"
    write_offline_source(generate(CONFIG), CONFIG, raw)
    events = read_transactions(raw)
    customer = events.get_column("customer_id").mode()[0]
    mine = events.filter(pl.col("customer_id") == customer)
    untouched = {
        p: p.stat().st_mtime_ns
        for p in (raw / "transactions").rglob("*.parquet")
        if matching_rows(p, "customer_id", customer) == 0
    }
    seen: list[str | None] = []
    ((folder, files),) = data_sets(raw).items()
    assert folder == raw and len(files) == 6  # four partitions and two master tables
    erased = erase_rows(folder, files, "customer_id", customer, seen.append)
    assert erased.total == mine.height + 1  # their transactions and their customer row
    assert seen == [erased.digest_before]
    assert _customer_rows(raw, customer) == 0
    after = read_transactions(raw)
    assert after.height == events.height - mine.height
    assert after.schema == events.schema  # categories and timestamps kept
    manifest = read_manifest(raw)
    assert manifest["digest"] == content_digest(raw) != erased.digest_before
    assert manifest["rows"] == after.height
    assert manifest["customers"] == CONFIG.n_customers - 1
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched
    again = erase_rows(folder, files, "customer_id", customer, seen.append)
    assert again.total == 0 and len(seen) == 1 and read_manifest(raw) == manifest


def test_erasing_after_a_crash_finishes_the_job(tmp_path: Path) -> None:
    """A crash after some partitions were rewritten, before the manifest: the next run leaves
    no row, removes the interrupted rewrite's leftovers and repairs the digest."""
    raw = tmp_path / "raw"
    write_offline_source(generate(CONFIG), CONFIG, raw)
    customer = read_transactions(raw).get_column("customer_id").mode()[0]
    ((folder, files),) = data_sets(raw).items()
    affected = [p for p in files if matching_rows(p, "customer_id", customer)]
    erase_rows(tmp_path, affected[:1], "customer_id", customer)  # no manifest there: as a crash
    leftover = affected[1].with_name(affected[1].name + ERASING_SUFFIX)
    leftover.write_bytes(b"half a file")
    assert read_manifest(raw)["digest"] != content_digest(raw)
    erase_rows(folder, files, "customer_id", customer)
    assert _customer_rows(raw, customer) == 0 and not leftover.exists()
    assert read_manifest(raw)["digest"] == content_digest(raw)
    assert read_manifest(raw)["rows"] == read_transactions(raw).height
