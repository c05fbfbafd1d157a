"""Brute-force oracles: the obviously-correct, slow definitions that tests hold the fast code to.

Straight from the catalog's definition: at instant T an event counts in a window of
``delay`` and ``length`` when it had arrived (``created <= T``) and its event time lies in
``(T - delay - length, T - delay]``.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from shipyard.features.catalog import (
    AMOUNT_TO_MEAN,
    EntityFeatures,
    amount_to_mean,
    count_feature,
    derived_features,
    sum_feature,
)


def window_values(events: pl.DataFrame, spec: EntityFeatures, key: int, at: datetime) -> dict:
    """Every feature of ``spec`` for entity ``key`` as known at ``at``, by scanning all events."""
    mine = events.filter(pl.col(spec.join_key) == key)
    t = mine.get_column("event_timestamp").to_numpy()
    known = mine.get_column("created_timestamp").to_numpy()
    at64 = np.datetime64(at.replace(tzinfo=None), "us")
    values: dict[str, float] = {}
    for window in spec.windows:
        delay = np.timedelta64(int(window.delay.total_seconds() * 1e6), "us")
        length = np.timedelta64(int(window.length.total_seconds() * 1e6), "us")
        inside = (known <= at64) & (t + delay <= at64) & (at64 < t + delay + length)
        values[count_feature(spec, window)] = int(inside.sum())
        for stem, column in window.sums.items():
            total = int(mine.get_column(column).to_numpy()[inside].sum())
            values[sum_feature(stem, window)] = total / 100 if column == "amount_cents" else total
        for name, (numerator, denominator) in derived_features(spec, window).items():
            count = values[denominator]
            values[name] = values[numerator] / count if count else 0.0
    return values


def training_row(events: pl.DataFrame, specs: list[EntityFeatures], row: dict) -> dict:
    """The features a training row at ``row['event_timestamp']`` must carry."""
    values: dict[str, float] = {}
    for spec in specs:
        values.update(window_values(events, spec, row[spec.join_key], row["event_timestamp"]))
    values[AMOUNT_TO_MEAN] = amount_to_mean(row["amount"], values.get("customer_amount_mean_7d"))
    return values


def assert_features_equal(actual: dict, expected: dict, context: str) -> None:
    for name, want in expected.items():
        got = actual[name]
        assert abs(float(got) - float(want)) <= 1e-9 * max(1.0, abs(float(want))), (
            f"{context}: {name} = {got}, oracle says {want}"
        )
