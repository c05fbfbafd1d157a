"""Benchmark: the rolling-window feature job in Polars, DuckDB and pandas.

What it measures
    The change-point job of ``shipyard.features.windows.change_points`` (one row per entity and
    instant where a window value changes) for every spec in the catalog (CUSTOMER, MERCHANT),
    run by three engines on the same deduplicated synthetic events:

    * ``polars``: the production implementation, imported as is;
    * ``duckdb``: the same algorithm in SQL (UNION ALL of deltas, GROUP BY, window SUM),
      in-process ``duckdb.connect()`` scanning the registered Arrow table zero-copy;
    * ``pandas``: the same algorithm vectorized (concatenated deltas, groupby sum, groupby
      cumsum).

    DuckDB and pandas are written from the spec (they iterate ``spec.windows``), so they follow
    the catalog when windows change. Each engine gets its input in its native form, converted
    before the clock starts, and the clock stops once the result is materialized (a Polars frame,
    an Arrow table, a pandas frame). Every engine runs once untimed (warm-up: imports, caches,
    thread pools), then ``--repeats`` timed runs; best and median wall-clock seconds are
    reported, and rows/s is input events / best seconds. The total row of an engine is the whole
    job (all specs) on the same events: events / sum of seconds.

    Every engine's output is checked against Polars: same columns and rows after sorting by key
    and timestamp, integers and timestamps equal exactly, floats within 1e-9. The script exits 1
    if any output differs.

    Polars and DuckDB use all cores; pandas uses one. On a shared machine timings are noisy:
    compare best-of-N, and rerun before trusting small differences.

How to run
    .venv/bin/python bench/feature_engines.py --rows 1000000
    .venv/bin/python bench/feature_engines.py --rows 1000000 --repeats 5 --json results.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from shipyard.data.synthetic import SyntheticConfig, generate
from shipyard.features.catalog import (
    ENTITIES,
    EntityFeatures,
    count_feature,
    derived_features,
    feature_names,
    integer_features,
    sum_feature,
)
from shipyard.features.windows import ARRIVAL_TIME, CENT_SUMS, EVENT_TIME, change_points

FLOAT_TOLERANCE = 1e-9
MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Inputs:
    """The same events in each engine's native form."""

    polars: pl.DataFrame
    arrow: pa.Table
    pandas: pd.DataFrame


@dataclass
class Result:
    engine: str
    spec: str
    input_rows: int
    output_rows: int
    best_seconds: float
    median_seconds: float
    seconds: list[float]
    matches: bool
    mismatch: str

    @property
    def rows_per_second(self) -> float:
        return self.input_rows / self.best_seconds


# --- input -----------------------------------------------------------------------------------


def prepare(rows: int) -> pl.DataFrame:
    """Deduplicated events with ``amount_cents``, as the feature job receives them."""
    config = SyntheticConfig(rows=rows, late_fraction=0.01, duplicate_fraction=0.005)
    events = pl.from_arrow(generate(config).transactions)
    assert isinstance(events, pl.DataFrame)
    # A redelivery carries the same transaction_id; the first arrival is the one that counts.
    return (
        events.sort(ARRIVAL_TIME)
        .unique("transaction_id", keep="first", maintain_order=True)
        .sort("transaction_id")
        .with_columns((pl.col("amount") * 100).round().cast(pl.Int64).alias("amount_cents"))
    )


def needed_columns(specs: tuple[EntityFeatures, ...]) -> list[str]:
    """Only the columns some spec reads: pandas would otherwise copy the PII strings too."""
    columns = [EVENT_TIME, ARRIVAL_TIME]
    for spec in specs:
        columns.append(spec.join_key)
        columns.extend(col for w in spec.windows for col in w.sums.values())
    return list(dict.fromkeys(columns))


def delta_columns(spec: EntityFeatures) -> list[str]:
    """Columns carried through the cumulative sum: per window its count, then its sums."""
    columns: list[str] = []
    for window in spec.windows:
        columns.append(count_feature(spec, window))
        columns.extend(sum_feature(stem, window) for stem in window.sums)
    return columns


def micros(delta: timedelta) -> int:
    return delta // MICROSECOND


# --- engines ---------------------------------------------------------------------------------


def run_polars(inputs: Inputs, spec: EntityFeatures, _con: duckdb.DuckDBPyConnection) -> Any:
    return change_points(inputs.polars, spec)


def duckdb_sql(spec: EntityFeatures) -> str:
    """The change-point query of ``spec`` over a relation named ``events``."""
    key = spec.join_key
    columns = delta_columns(spec)
    sources = sorted({col for w in spec.windows for col in w.sums.values()})
    # Integer microseconds: plain BIGINT arithmetic, no time-zone logic on interval addition.
    base = ", ".join(
        [
            key,
            f"epoch_us({EVENT_TIME}) AS _t",
            f"epoch_us({ARRIVAL_TIME}) AS _known",
            *(f"CAST({col} AS BIGINT) AS {col}" for col in sources),
        ]
    )
    selects: list[str] = []
    for window in spec.windows:
        start = micros(window.delay)
        opens = f"greatest(_t + {start}, _known)"
        closes = f"_t + {start + micros(window.length)}"
        for sign, at in ((1, opens), (-1, closes)):
            values = {name: "0::BIGINT" for name in columns}
            values[count_feature(spec, window)] = f"{sign}::BIGINT"
            for stem, source in window.sums.items():
                values[sum_feature(stem, window)] = f"{sign} * {source}"
            items = ", ".join(f"{expr} AS {name}" for name, expr in values.items())
            selects.append(f"SELECT {key}, {at} AS _at, {items} FROM base WHERE {opens} < {closes}")
    deltas = "\nUNION ALL\n".join(selects)
    # sum() of BIGINT is HUGEINT in DuckDB: cast back so integers stay int64 like Polars.
    merged = ", ".join(f"CAST(sum({name}) AS BIGINT) AS {name}" for name in columns)
    # The running sum adds DOUBLEs: a HUGEINT window sum is ~3x slower (DuckDB 2.0), and doubles
    # add integers exactly below 2**53 (counts and cents here stay far below; compare() checks).
    running = ", ".join(
        f"CAST(sum(CAST({name} AS DOUBLE)) OVER w AS BIGINT) AS {name}" for name in columns
    )

    ints = integer_features(spec)
    finish: dict[str, str] = {}
    for window in spec.windows:
        count = count_feature(spec, window)
        finish[count] = count
        for stem, source in window.sums.items():
            name = sum_feature(stem, window)
            value = f"({name} / 100.0)" if source in CENT_SUMS else name
            finish[name] = value if name in ints else f"CAST({value} AS DOUBLE)"
        for name, (numerator, denominator) in derived_features(spec, window).items():
            finish[name] = (
                f"CASE WHEN {denominator} > 0 "
                f"THEN CAST({finish[numerator]} AS DOUBLE) / {denominator} ELSE 0.0 END"
            )
    outputs = ", ".join(f"{finish[name]} AS {name}" for name in feature_names(spec))
    return f"""
WITH base AS (SELECT {base} FROM events),
deltas AS ({deltas}),
merged AS (SELECT {key}, _at, {merged} FROM deltas GROUP BY {key}, _at),
running AS (
    SELECT {key}, _at, {running} FROM merged
    WINDOW w AS (PARTITION BY {key} ORDER BY _at ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT {key},
    CAST(make_timestamp(_at) AS TIMESTAMPTZ) AS {EVENT_TIME},
    CAST(make_timestamp(_at) AS TIMESTAMPTZ) AS {ARRIVAL_TIME},
    {outputs}
FROM running
ORDER BY {key}, _at
"""


def run_duckdb(inputs: Inputs, spec: EntityFeatures, con: duckdb.DuckDBPyConnection) -> Any:
    return con.sql(duckdb_sql(spec)).to_arrow_table()


def run_pandas(inputs: Inputs, spec: EntityFeatures, _con: duckdb.DuckDBPyConnection) -> Any:
    events = inputs.pandas
    key = spec.join_key
    columns = delta_columns(spec)
    event_time = events[EVENT_TIME]
    known = events[ARRIVAL_TIME]

    # Build each delta column as one list of pieces, then concatenate once.
    pieces: dict[str, list[Any]] = {name: [] for name in [key, EVENT_TIME, *columns]}
    for window in spec.windows:
        entered = event_time + window.delay
        opens = entered.where(entered >= known, known)
        closes = entered + window.length
        inside = (opens < closes).to_numpy()
        n = int(inside.sum())
        keys = events[key].to_numpy()[inside]
        for sign, at in ((1, opens), (-1, closes)):
            pieces[key].append(keys)
            pieces[EVENT_TIME].append(at[inside])
            zero = np.zeros(n, dtype=np.int64)
            for name in columns:
                pieces[name].append(zero)
            pieces[count_feature(spec, window)][-1] = np.full(n, sign, dtype=np.int64)
            for stem, source in window.sums.items():
                values = events[source].to_numpy()[inside].astype(np.int64)
                pieces[sum_feature(stem, window)][-1] = values * sign
    deltas = pd.DataFrame(
        {
            key: np.concatenate(pieces[key]),
            EVENT_TIME: pd.concat(pieces[EVENT_TIME], ignore_index=True),
            **{name: np.concatenate(pieces[name]) for name in columns},
        }
    )
    # groupby sorts by (key, time), so the cumulative sum below runs in time order per key.
    merged = deltas.groupby([key, EVENT_TIME], sort=True).sum()
    running = merged.groupby(level=key, sort=False).cumsum().reset_index()

    ints = integer_features(spec)
    out: dict[str, Any] = {
        key: running[key],
        EVENT_TIME: running[EVENT_TIME],
        ARRIVAL_TIME: running[EVENT_TIME],
    }
    for window in spec.windows:
        count = count_feature(spec, window)
        out[count] = running[count]
        for stem, source in window.sums.items():
            name = sum_feature(stem, window)
            value = running[name] / 100.0 if source in CENT_SUMS else running[name]
            out[name] = value if name in ints else value.astype(np.float64)
        for name, (numerator, denominator) in derived_features(spec, window).items():
            counts = running[denominator]
            ratio = out[numerator].astype(np.float64) / counts.where(counts > 0, 1)
            out[name] = ratio.where(counts > 0, 0.0)
    return pd.DataFrame(
        {name: out[name] for name in [key, EVENT_TIME, ARRIVAL_TIME, *feature_names(spec)]}
    )


ENGINES: dict[str, Callable[[Inputs, EntityFeatures, duckdb.DuckDBPyConnection], Any]] = {
    "polars": run_polars,
    "duckdb": run_duckdb,
    "pandas": run_pandas,
}


# --- checks and timing -----------------------------------------------------------------------


def to_polars(output: Any) -> pl.DataFrame:
    if isinstance(output, pl.DataFrame):
        return output
    frame = pl.from_pandas(output) if isinstance(output, pd.DataFrame) else pl.from_arrow(output)
    assert isinstance(frame, pl.DataFrame)
    return frame


def compare(expected: pl.DataFrame, actual: pl.DataFrame, spec: EntityFeatures) -> str:
    """Empty when ``actual`` equals ``expected``, else what differs first."""
    if actual.columns != expected.columns:
        return f"columns {actual.columns} != {expected.columns}"
    if actual.height != expected.height:
        return f"{actual.height} rows != {expected.height}"
    order = [spec.join_key, EVENT_TIME]
    expected, actual = expected.sort(order), actual.sort(order)
    for name in expected.columns:
        want, got = expected[name], actual[name]
        dtype = want.dtype
        if dtype.is_float():
            got = got.cast(pl.Float64)
            bad = ((want - got).abs() > FLOAT_TOLERANCE) | (want.is_null() != got.is_null())
        elif dtype.is_integer() or dtype.is_temporal():
            # Exact: timestamps as UTC microseconds, integers as int64.
            target = pl.Datetime("us", "UTC") if dtype.is_temporal() else pl.Int64
            got = got.cast(target)
            bad = ~(want.cast(target) == got).fill_null(False)
            bad = bad & ~(want.is_null() & got.is_null())
        else:
            bad = want != got
        if bad.any():
            row = int(bad.arg_max() or 0)
            return f"{name} differs in {int(bad.sum())} rows, first: {got[row]!r} != {want[row]!r}"
    return ""


def timed(run: Callable[[], Any], repeats: int) -> tuple[Any, list[float]]:
    output = run()  # warm-up, untimed: first-call costs are not the engine's throughput
    seconds: list[float] = []
    for _ in range(repeats):
        del output
        gc.collect()  # do not bill one engine for another's garbage
        start = time.perf_counter()
        output = run()
        seconds.append(time.perf_counter() - start)
    return output, seconds


def benchmark(events: pl.DataFrame, repeats: int) -> list[Result]:
    narrow = events.select(needed_columns(ENTITIES))
    arrow = narrow.to_arrow()
    inputs = Inputs(polars=narrow, arrow=arrow, pandas=arrow.to_pandas())
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # TIMESTAMPTZ output in UTC, like the Polars output
    con.register("events", arrow)

    results: list[Result] = []
    for spec in ENTITIES:
        reference: pl.DataFrame | None = None
        for engine, run in ENGINES.items():
            output, seconds = timed(lambda run=run, spec=spec: run(inputs, spec, con), repeats)
            frame = to_polars(output)
            if reference is None:  # polars runs first: it is the reference
                reference = frame
            mismatch = compare(reference, frame, spec)
            results.append(
                Result(
                    engine=engine,
                    spec=spec.view,
                    input_rows=narrow.height,
                    output_rows=frame.height,
                    best_seconds=min(seconds),
                    median_seconds=statistics.median(seconds),
                    seconds=seconds,
                    matches=not mismatch,
                    mismatch=mismatch,
                )
            )
    con.close()
    return results


# --- report ----------------------------------------------------------------------------------


def totals(results: list[Result]) -> dict[str, dict[str, float]]:
    """Per engine: the whole job (every spec) on the same events."""
    out: dict[str, dict[str, float]] = {}
    for engine in ENGINES:
        mine = [r for r in results if r.engine == engine]
        best = sum(r.best_seconds for r in mine)
        out[engine] = {
            "best_seconds": best,
            "median_seconds": sum(r.median_seconds for r in mine),
            "rows_per_second": mine[0].input_rows / best,
        }
    return out


def duckdb_threads() -> int:
    with duckdb.connect() as con:
        row = con.execute("SELECT current_setting('threads')").fetchone()
    return int(row[0]) if row else 0


def print_table(results: list[Result], events: int, repeats: int) -> None:
    print(
        f"{events:,} events, best/median of {repeats} after 1 warm-up; "
        f"threads: polars {pl.thread_pool_size()}, duckdb {duckdb_threads()}, pandas 1"
    )
    header = (
        f"{'engine':<8} {'spec':<22} {'best s':>8} {'median s':>9} "
        f"{'rows/s':>12} {'out rows':>11}  match"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.engine:<8} {r.spec:<22} {r.best_seconds:>8.3f} {r.median_seconds:>9.3f} "
            f"{r.rows_per_second:>12,.0f} {r.output_rows:>11,}  {'yes' if r.matches else 'NO'}"
        )
    print("-" * len(header))
    fastest = min(t["best_seconds"] for t in totals(results).values())
    for engine, t in totals(results).items():
        print(
            f"{engine:<8} {'total':<22} {t['best_seconds']:>8.3f} {t['median_seconds']:>9.3f} "
            f"{t['rows_per_second']:>12,.0f} {'':>11}  x{t['best_seconds'] / fastest:.2f}"
        )
    for r in results:
        if not r.matches:
            print(f"MISMATCH {r.engine} {r.spec}: {r.mismatch}", file=sys.stderr)


def write_json(path: Path, results: list[Result], rows: int, events: int, repeats: int) -> None:
    document = {
        "benchmark": "feature_engines",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "generated_rows": rows,
        "events": events,
        "repeats": repeats,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "versions": {
            "polars": pl.__version__,
            "duckdb": duckdb.__version__,
            "pandas": pd.__version__,
            "pyarrow": pa.__version__,
        },
        "results": [{**asdict(r), "rows_per_second": r.rows_per_second} for r in results],
        "totals": totals(results),
        "all_match": all(r.matches for r in results),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="synthetic rows to generate")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per engine and spec")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    events = prepare(args.rows)
    results = benchmark(events, args.repeats)
    print_table(results, events.height, args.repeats)
    if args.json:
        write_json(args.json, results, args.rows, events.height, args.repeats)
    return 0 if all(r.matches for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
