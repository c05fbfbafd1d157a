"""Writing the offline source: partitioned, complete or absent, reproducible digest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from shipyard.data.offline_source import read_manifest, write_offline_source
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
