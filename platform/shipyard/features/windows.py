"""Exact rolling-window aggregates as change-point tables (Polars).

For every event and window two deltas are emitted: +1/+value when the event enters the window
(the later of ``event + delay`` and its arrival) and -1/-value when it leaves
(``event + delay + length``). A cumulative sum per entity over the deltas ordered by time is the
exact window value at every instant where it changes; deltas at the same instant are merged so
that each (entity, timestamp) has exactly one row.

Sums run over integers (amounts in cents), so adding and removing never accumulates rounding
error: a window that empties is exactly 0.

Polars was measured fastest for this job on 1M events (``bench/feature_engines.py``).
"""

from __future__ import annotations

import polars as pl

from shipyard.features.catalog import (
    EntityFeatures,
    count_feature,
    derived_features,
    feature_names,
    integer_features,
    sum_feature,
)

EVENT_TIME = "event_timestamp"
ARRIVAL_TIME = "created_timestamp"
CENT_SUMS = {"amount_cents"}  # integer sums stored in cents, served in currency units


def change_points(events: pl.DataFrame, spec: EntityFeatures) -> pl.DataFrame:
    """The feature table of ``spec``: one row per entity and instant where a window changes.

    Args:
        events: one row per (deduplicated) event with the entity's join key,
            ``event_timestamp``, ``created_timestamp`` and every column a window sums.

    Returns:
        ``join_key, event_timestamp, created_timestamp`` and :func:`feature_names` columns,
        sorted by key and time. ``created_timestamp`` equals ``event_timestamp``: a change point
        is known at the instant it happens.
    """
    key = spec.join_key
    deltas: list[pl.DataFrame] = []
    delta_columns: list[str] = []
    for window in spec.windows:
        delta_columns.append(count_feature(spec, window))
        delta_columns.extend(sum_feature(stem, window) for stem in window.sums)

    base = events.lazy().select(
        key,
        pl.col(EVENT_TIME).cast(pl.Datetime("us", "UTC")).alias("_t"),
        pl.col(ARRIVAL_TIME).cast(pl.Datetime("us", "UTC")).alias("_known"),
        *{col for w in spec.windows for col in w.sums.values()},
    )
    for window in spec.windows:
        opens = pl.max_horizontal(pl.col("_t") + window.delay, pl.col("_known"))
        closes = pl.col("_t") + window.delay + window.length
        inside = base.filter(opens < closes)
        for sign, at in ((1, opens), (-1, closes)):
            columns = [pl.col(key), at.alias(EVENT_TIME)]
            for column in delta_columns:
                columns.append(pl.lit(0, pl.Int64).alias(column))
            columns[2 + delta_columns.index(count_feature(spec, window))] = pl.lit(
                sign, pl.Int64
            ).alias(count_feature(spec, window))
            for stem, source in window.sums.items():
                name = sum_feature(stem, window)
                columns[2 + delta_columns.index(name)] = (
                    pl.col(source).cast(pl.Int64) * sign
                ).alias(name)
            deltas.append(inside.select(columns))

    merged = (
        pl.concat(deltas)
        .group_by(key, EVENT_TIME)
        .agg(pl.col(delta_columns).sum())
        .sort(key, EVENT_TIME)
        .with_columns(pl.col(delta_columns).cum_sum().over(key))
    )
    return merged.select(_finish(spec, key)).collect()


def _finish(spec: EntityFeatures, key: str) -> list[pl.Expr]:
    ints = integer_features(spec)
    exprs: dict[str, pl.Expr] = {
        key: pl.col(key),
        EVENT_TIME: pl.col(EVENT_TIME),
        ARRIVAL_TIME: pl.col(EVENT_TIME).alias(ARRIVAL_TIME),
    }
    for window in spec.windows:
        count = count_feature(spec, window)
        exprs[count] = pl.col(count)
        for stem, source in window.sums.items():
            name = sum_feature(stem, window)
            value = pl.col(name)
            if source in CENT_SUMS:
                value = value / 100.0
            exprs[name] = value if name in ints else value.cast(pl.Float64)
        for name, (numerator, denominator) in derived_features(spec, window).items():
            num = exprs[numerator]
            exprs[name] = (
                pl.when(pl.col(denominator) > 0)
                .then(num.cast(pl.Float64) / pl.col(denominator))
                .otherwise(0.0)
            )
    ordered = [key, EVENT_TIME, ARRIVAL_TIME, *feature_names(spec)]
    return [exprs[name].alias(name) for name in ordered]
