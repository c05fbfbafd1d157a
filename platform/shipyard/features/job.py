"""The feature job: clean events -> one feature table per entity, written atomically.

Each table holds a row per entity and change point (see :mod:`shipyard.features.windows`), with
``event_timestamp`` and ``created_timestamp``, ready to be a Feast batch source. The folder's
manifest records the clean data digest it was built from, so a training set can name its data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from shipyard.data.manifest import content_digest, read_manifest, write_manifest
from shipyard.data.offline_source import atomic_folder, read_transactions
from shipyard.errors import ShipyardError
from shipyard.features.catalog import ENTITIES, EntityFeatures
from shipyard.features.windows import change_points


@dataclass(frozen=True)
class FeatureJobResult:
    events: int
    tables: dict[str, int]  # view -> rows
    seconds: float
    manifest: dict

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else float("inf")


def table_path(folder: Path, spec: EntityFeatures) -> Path:
    return folder / f"{spec.view}.parquet"


def events_for_features(clean: pl.DataFrame) -> pl.DataFrame:
    """The columns the windows need; amounts in integer cents so sums stay exact."""
    return clean.select(
        "transaction_id",
        "event_timestamp",
        "created_timestamp",
        "customer_id",
        "merchant_id",
        (pl.col("amount") * 100).round().cast(pl.Int64).alias("amount_cents"),
        pl.col("is_fraud").cast(pl.Int64),
    )


def build_feature_tables(
    clean_dir: Path,
    out: Path,
    progress: Callable[[str], None] = lambda _: None,
) -> FeatureJobResult:
    """Compute every entity's feature table from the clean data set and replace ``out``."""
    source = read_manifest(clean_dir)
    if source.get("kind") != "clean":
        raise ShipyardError(
            f"{clean_dir} is not a clean data set: run `shipyard data prepare` first "
            "(features are only built from validated, redacted data)"
        )
    began = time.perf_counter()
    progress(f"reading {clean_dir}")
    events = events_for_features(read_transactions(clean_dir))
    tables: dict[str, int] = {}
    with atomic_folder(out, overwrite=True) as staging:
        for spec in ENTITIES:
            progress(f"computing {spec.view} over {events.height:,} events")
            table = change_points(events, spec)
            table.write_parquet(table_path(staging, spec), statistics=True)
            tables[spec.view] = table.height
        seconds = time.perf_counter() - began
        manifest = {
            "kind": "features",
            "source": {"path": str(clean_dir), "digest": source.get("digest")},
            "events": events.height,
            "tables": tables,
            "seconds": round(seconds, 3),
            "digest": content_digest(staging),
        }
        write_manifest(staging, manifest)
    return FeatureJobResult(events.height, tables, seconds, manifest)
