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
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from shipyard.data.synthetic import SyntheticConfig, SyntheticData
from shipyard.errors import ShipyardError

MANIFEST = "manifest.json"


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


def content_digest(root: Path) -> str:
    """``sha256:…`` over every Parquet file's relative path and bytes under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.parquet")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return f"sha256:{digest.hexdigest()}"


def write_manifest(folder: Path, manifest: dict) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))


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


def read_manifest(out: Path) -> dict:
    """The manifest of a data set written by :func:`write_offline_source`."""
    try:
        return json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ShipyardError(f"{out} is not a Shipyard data set (no readable {MANIFEST})") from exc


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
