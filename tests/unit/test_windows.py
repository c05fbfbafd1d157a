"""Change-point tables against the brute-force oracle: late rows, ties, delays, exact zeros."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from shipyard.features.catalog import CUSTOMER, MERCHANT, EntityFeatures, Window, feature_names
from shipyard.features.windows import change_points
from tests.oracle import assert_features_equal, window_values

START = datetime(2026, 3, 1, tzinfo=UTC)
TINY = EntityFeatures(
    view="tiny",
    entity="customer",
    join_key="customer_id",
    count_stem="customer_txn_count",
    windows=(
        Window("10m", timedelta(minutes=10), sums={"customer_amount_sum": "amount_cents"}),
        Window(
            "1h",
            timedelta(hours=1),
            delay=timedelta(minutes=5),
            sums={"customer_amount_sum": "amount_cents"},
        ),
    ),
    description="small windows so a few hundred events cover many change points",
)


def events(n: int, seed: int, minutes: int = 180, late_share: float = 0.2) -> pl.DataFrame:
    """Random events on a one-minute grid (so ties are frequent), some arriving late."""
    rng = np.random.default_rng(seed)
    start_us = int(START.timestamp() * 1_000_000)
    t = start_us + rng.integers(0, minutes, n) * 60_000_000
    lag = np.where(
        rng.random(n) < late_share,
        rng.integers(1, 90, n) * 60_000_000,  # late: up to 1.5 h, often past a whole window
        rng.integers(0, 2, n) * 60_000_000,  # on time, or a minute later; often a tie
    )
    return pl.DataFrame(
        {
            "transaction_id": np.arange(n),
            "customer_id": rng.integers(1, 4, n),
            "merchant_id": rng.integers(1, 3, n),
            "event_timestamp": pl.Series(t).cast(pl.Datetime("us", "UTC")),
            "created_timestamp": pl.Series(t + lag).cast(pl.Datetime("us", "UTC")),
            "amount_cents": rng.integers(1, 50_000, n),
            "is_fraud": (rng.random(n) < 0.2).astype(np.int64),
        }
    )


def lookup(table: pl.DataFrame, spec: EntityFeatures, key: int, at: datetime) -> dict:
    """Latest change point at or before ``at``; none means the empty window (zeros)."""
    rows = table.filter((pl.col(spec.join_key) == key) & (pl.col("event_timestamp") <= at))
    if rows.is_empty():
        return dict.fromkeys(feature_names(spec), 0)
    return rows.sort("event_timestamp").row(-1, named=True)


@pytest.mark.parametrize("spec", [TINY, CUSTOMER, MERCHANT], ids=lambda s: s.view)
def test_every_instant_matches_the_oracle(spec: EntityFeatures) -> None:
    data = events(400, seed=11, minutes=60 * 24 * 40 if spec is MERCHANT else 180)
    table = change_points(data, spec)
    # Probe at every change point, just before and after it, and at random instants.
    points = table.select(spec.join_key, "event_timestamp").rows()
    probes = []
    for key, at in points[:: max(1, len(points) // 150)]:
        probes += [
            (key, at),
            (key, at - timedelta(microseconds=1)),
            (key, at + timedelta(seconds=30)),
        ]
    for key, at in probes:
        expected = window_values(data, spec, key, at)
        assert_features_equal(lookup(table, spec, key, at), expected, f"{spec.view} {key} @ {at}")


def test_one_row_per_entity_and_instant_even_with_ties() -> None:
    data = events(300, seed=5)
    table = change_points(data, TINY)
    assert table.select("customer_id", "event_timestamp").is_duplicated().sum() == 0
    assert data.select("customer_id", "event_timestamp").is_duplicated().sum() > 0  # ties exist


def test_windows_empty_to_exact_zero() -> None:
    table = change_points(events(500, seed=2), CUSTOMER)
    last = table.sort("event_timestamp").group_by("customer_id").last()
    for name in feature_names(CUSTOMER):
        assert (last.get_column(name) == 0).all(), name


def test_late_event_counts_from_arrival_only() -> None:
    at = START + timedelta(minutes=30)
    data = pl.DataFrame(
        {
            "customer_id": [1],
            "event_timestamp": [START],
            "created_timestamp": [at],  # arrives 30 minutes after it happened
            "amount_cents": [1234],
        },
        schema_overrides={
            "event_timestamp": pl.Datetime("us", "UTC"),
            "created_timestamp": pl.Datetime("us", "UTC"),
        },
    )
    table = change_points(data, TINY)
    # The 10-minute window closed before arrival: it never saw the event.
    assert (table.get_column("customer_txn_count_10m") == 0).all()
    before = lookup(table, TINY, 1, at - timedelta(microseconds=1))
    after = lookup(table, TINY, 1, at)
    assert before["customer_txn_count_1h"] == 0
    assert after["customer_txn_count_1h"] == 1
    assert after["customer_amount_sum_1h"] == 12.34
