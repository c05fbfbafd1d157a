"""The offline source on disk: date-partitioned Parquet, written atomically, with a manifest.

Layout of ``<out>/``::

    transactions/date=YYYY-MM-DD/part-0.parquet   event-date partitions (hive style)
    customers.parquet, merchants.parquet          master tables (customers carry raw PII)
    manifest.json                                 config, row counts and a content digest

A reader either sees the previous complete data set or the new complete one: everything is
written to a sibling temporary folder and moved into place with ``rename``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from shipyard.data.manifest import MANIFEST, content_digest, write_manifest
from shipyard.data.synthetic import SyntheticConfig, SyntheticData
from shipyard.errors import ShipyardError


def write_offline_source(
    data: SyntheticData, config: SyntheticConfig, out: Path, overwrite: bool = False
) -> dict:
    """Write ``data`` under ``out`` atomically and return its manifest."""
    with atomic_folder(out, overwrite) as staging:
        write_transactions(data.transactions, staging / "transactions")
        pq.write_table(data.customers, staging / "customers.parquet")
        pq.write_table(data.merchants, staging / "merchants.parquet")
        manifest = _manifest(data, config, staging)
        write_manifest(staging, manifest)
    return manifest


@contextmanager
def atomic_folder(out: Path, overwrite: bool = False) -> Iterator[Path]:
    """A staging folder that replaces ``out`` in one ``rename`` when the block succeeds.

    On any error the staging folder is removed and ``out`` is left as it was.
    """
    out = out.absolute()
    if out.exists() and not overwrite:
        raise ShipyardError(f"{out} already exists: pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        yield staging
        _swap_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_transactions(table: pa.Table, folder: Path) -> None:
    """Write transactions as hive partitions ``date=YYYY-MM-DD`` of their event day."""
    micros = table.column("event_timestamp").cast(pa.int64()).to_numpy()
    day = micros // 86_400_000_000
    days, codes = np.unique(day, return_inverse=True)
    names = np.datetime_as_string(days.astype("datetime64[D]"), unit="D")
    partition = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(names))
    ds.write_dataset(
        table.append_column("date", partition),
        folder,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive"),
        basename_template="part-{i}.parquet",
        existing_data_behavior="error",
    )


def _manifest(data: SyntheticData, config: SyntheticConfig, root: Path) -> dict:
    frauds = int(pa.compute.sum(data.transactions.column("is_fraud")).as_py() or 0)
    return {
        "generator": dataclasses.asdict(config),
        "rows": data.transactions.num_rows,
        "frauds": frauds,
        "customers": data.customers.num_rows,
        "merchants": data.merchants.num_rows,
        "partitions": len(list((root / "transactions").iterdir())),
        "digest": content_digest(root),
    }


def _swap_into_place(staging: Path, out: Path) -> None:
    if not out.exists():
        os.replace(staging, out)
        return
    retired = out.parent / f".{out.name}.old-{os.getpid()}"
    os.replace(out, retired)
    os.replace(staging, out)
    shutil.rmtree(retired, ignore_errors=True)


def read_transactions(root: Path) -> pl.DataFrame:
    """All transactions of a data set (raw or clean) as one frame, categories as plain strings."""
    folder = root / "transactions"
    if not folder.is_dir():
        raise ShipyardError(
            f"{root} holds no transactions: generate data first (`shipyard data generate`)"
        )
    frame = pl.read_parquet(folder, hive_partitioning=True)
    frame = frame.drop("date", strict=False)
    return frame.with_columns(pl.col(pl.Categorical, pl.Enum).cast(pl.String))


# --- erasure -------------------------------------------------------------------------------

ERASING_SUFFIX = ".erasing"  # a rewrite in progress; not *.parquet, so no reader or digest sees it


@dataclass(frozen=True)
class DataSetErasure:
    """Rows removed from one data set (a folder with a manifest, or a loose folder)."""

    folder: Path
    rows: dict[str, int]  # file (relative to the folder) -> rows removed
    digest_before: str | None  # the manifest's digest before the rewrite (model lineage)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def data_sets(root: Path) -> dict[Path, list[Path]]:
    """Parquet files under ``root`` grouped by data set: the nearest folder holding a manifest
    (files outside any data set form their own group under their folder)."""
    groups: dict[Path, list[Path]] = {}
    if not root.is_dir():
        return groups
    for path in sorted(root.rglob("*.parquet")):
        folder = path.parent
        while folder != root and not (folder / MANIFEST).is_file():
            folder = folder.parent
        if not (folder / MANIFEST).is_file():
            folder = path.parent
        groups.setdefault(folder, []).append(path)
    return groups


def matching_rows(path: Path, column: str, value: int) -> int:
    """Rows of one Parquet file whose ``column`` equals ``value`` (0 without the column)."""
    if column not in pq.read_schema(path).names:
        return 0
    found = pl.scan_parquet(path, hive_partitioning=False).filter(pl.col(column) == value)
    return int(found.select(pl.len()).collect().item())


def erase_rows(
    folder: Path,
    files: list[Path],
    column: str,
    value: int,
    before_rewrite: Callable[[str | None], None] = lambda digest: None,
) -> DataSetErasure:
    """Remove every row whose ``column`` is ``value`` from ``files`` of the data set ``folder``.

    Each affected file is rewritten beside itself and renamed over the original, so a reader
    sees the old file or the new one, never a torn one; then the manifest's digest is brought
    up to date the same way. ``before_rewrite`` receives the digest the data set had before
    any change (once, before the first rewrite), for lineage. Running it again after a crash at
    any point finishes the job: files already rewritten simply match nothing.
    """
    manifest_path = folder / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else None
    removed: dict[str, int] = {}
    digest_before = manifest.get("digest") if manifest else None
    for path in files:
        _remove_stale_rewrite(path)
        count = matching_rows(path, column, value)
        if not count:
            continue
        if not removed:
            before_rewrite(digest_before)
        # Keep the file's own schema (dictionary and categorical types included).
        table = pq.read_table(path)
        target = pa.scalar(value, table.schema.field(column).type)
        kept = table.filter(pc.fill_null(pc.not_equal(table.column(column), target), True))
        staging = path.with_name(path.name + ERASING_SUFFIX)
        pq.write_table(kept, staging)
        _fsync(staging)
        os.replace(staging, path)
        removed[str(path.relative_to(folder))] = count
    if manifest is not None and (removed or manifest.get("digest") != content_digest(folder)):
        # Also after a crash between a rewrite and this line: the digest must describe the data.
        manifest["digest"] = content_digest(folder)
        _recount(manifest, folder)
        staging = manifest_path.with_name(MANIFEST + ERASING_SUFFIX)
        staging.write_text(json.dumps(manifest, indent=2, default=str))
        _fsync(staging)
        os.replace(staging, manifest_path)
    if removed:
        _fsync(folder)
    return DataSetErasure(folder, removed, digest_before)


def _recount(manifest: dict, folder: Path) -> None:
    """Bring the manifest's row counts up to date from the files' own metadata: feature tables
    under ``tables``, the customer master table under ``customers``, the rest under ``rows``."""
    tables = manifest.get("tables") if isinstance(manifest.get("tables"), dict) else {}
    rows = 0
    for path in folder.rglob("*.parquet"):
        count = pq.ParquetFile(path).metadata.num_rows
        if path.stem in tables:
            tables[path.stem] = count
        elif path.name == "customers.parquet" and "customers" in manifest:
            manifest["customers"] = count
        elif path.name != "merchants.parquet":
            rows += count
    if isinstance(manifest.get("rows"), int):
        manifest["rows"] = rows


def _remove_stale_rewrite(path: Path) -> None:
    path.with_name(path.name + ERASING_SUFFIX).unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
