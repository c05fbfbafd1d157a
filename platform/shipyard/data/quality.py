"""Data quality gate of the transactions (pandera on Polars): schema, nulls, ranges, freshness,
duplicates.

A failed gate raises :class:`DataValidationError` whose report names, for every broken rule,
the column, the rule and how many rows break it. Callers validate before they write anything,
so bad data leaves no partial output behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

from shipyard.data.synthetic import CATEGORIES, CHANNELS, DEVICES
from shipyard.errors import ShipyardError

# Clocks of producers drift a little; an event this far ahead of "now" is still accepted.
CLOCK_SKEW = timedelta(minutes=5)
TIMESTAMP = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class RuleFailure:
    """One broken rule: which column (or ``*`` for a whole-row rule), which rule, how many rows."""

    column: str
    rule: str
    count: int
    example: str

    def __str__(self) -> str:
        return f"{self.column}: {self.rule} failed for {self.count:,} row(s) (e.g. {self.example})"


@dataclass(frozen=True)
class ValidationReport:
    rows: int
    failures: tuple[RuleFailure, ...]

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        if self.ok:
            return f"{self.rows:,} rows passed every rule"
        broken = "; ".join(str(f) for f in self.failures)
        return f"{len(self.failures)} rule(s) broken in {self.rows:,} rows: {broken}"


class DataValidationError(ShipyardError):
    """Data broke the quality gate; nothing was written. Carries the full report."""

    def __init__(self, what: str, report: ValidationReport) -> None:
        self.report = report
        super().__init__(
            f"{what} failed validation, nothing was written: {report.summary()}. "
            "Fix the source data (or the gate in settings `data.*`) and run again"
        )


def transactions_schema(
    as_of: datetime, max_age: timedelta, max_amount: float, pii_columns: dict[str, str]
) -> pa.DataFrameSchema:
    """The rules for one batch of transactions.

    Args:
        as_of: the validation time; the freshness and "not in the future" rules use it.
        max_age: the newest event may be at most this old at ``as_of``.
        max_amount: largest plausible amount.
        pii_columns: extra string columns expected (raw PII, or their tokens), non-null.
    """
    oldest_allowed = as_of - max_age
    latest_allowed = as_of + CLOCK_SKEW

    def positive_id() -> pa.Column:
        return pa.Column(pl.Int64, pa.Check.gt(0), nullable=False)

    columns = {
        "transaction_id": pa.Column(pl.Int64, pa.Check.gt(0), nullable=False, unique=True),
        "event_timestamp": pa.Column(
            TIMESTAMP,
            [
                pa.Check(
                    lambda d: d.lazyframe.select(pl.col(d.key) <= latest_allowed),
                    name=f"not_after({latest_allowed:%Y-%m-%dT%H:%MZ})",
                ),
                pa.Check(
                    lambda d: d.lazyframe.select(pl.col(d.key).max() >= oldest_allowed),
                    name=f"fresh(newest_event>={oldest_allowed:%Y-%m-%dT%H:%MZ})",
                ),
            ],
            nullable=False,
        ),
        "created_timestamp": pa.Column(TIMESTAMP, nullable=False),
        "customer_id": positive_id(),
        "merchant_id": positive_id(),
        "amount": pa.Column(pl.Float64, pa.Check.in_range(0.0, max_amount), nullable=False),
        "merchant_category": pa.Column(
            pl.String, pa.Check.isin(CATEGORIES.tolist()), nullable=False
        ),
        "channel": pa.Column(pl.String, pa.Check.isin(CHANNELS.tolist()), nullable=False),
        "country": pa.Column(pl.String, pa.Check.str_matches(r"^[A-Z]{2}$"), nullable=False),
        "device_type": pa.Column(pl.String, pa.Check.isin(DEVICES.tolist()), nullable=False),
        "is_fraud": pa.Column(pl.Int8, pa.Check.isin([0, 1]), nullable=False),
    }
    for name in pii_columns:
        columns[name] = pa.Column(pl.String, nullable=False)
    return pa.DataFrameSchema(
        columns,
        checks=[
            pa.Check(
                lambda d: d.lazyframe.select(
                    pl.col("created_timestamp") >= pl.col("event_timestamp")
                ),
                name="arrives_after_event(created_timestamp>=event_timestamp)",
            )
        ],
        strict=True,
        name="transactions",
    )


def validate(frame: pl.DataFrame, schema: pa.DataFrameSchema) -> ValidationReport:
    """Check every rule of ``schema`` on ``frame`` and report all failures at once."""
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        return ValidationReport(frame.height, _failures(exc.failure_cases, frame))
    except SchemaError as exc:  # raised eagerly for some schema-level problems
        return ValidationReport(frame.height, (RuleFailure("*", str(exc.check), 1, str(exc)),))
    return ValidationReport(frame.height, ())


def _failures(cases: pl.DataFrame, frame: pl.DataFrame) -> tuple[RuleFailure, ...]:
    cases = cases.with_columns(pl.col("failure_case").cast(pl.String))
    missing = cases.filter(pl.col("check") == "column_in_dataframe")
    failures: list[RuleFailure] = []
    if missing.height:
        names = missing.get_column("failure_case").to_list()
        failures.append(RuleFailure(", ".join(names), "present", frame.height, "missing column"))
        # Row rules over a missing column fail with an engine error: that is the same problem.
        cases = cases.filter(
            (pl.col("check") != "column_in_dataframe")
            & ~pl.col("failure_case").fill_null("").str.contains("ColumnNotFoundError")
        )
    grouped = (
        cases.with_columns(
            # Whole-row rules (they name their columns themselves) are reported under "*".
            pl.when(pl.col("schema_context") == "DataFrameSchema")
            .then(pl.lit("*"))
            .otherwise(pl.col("column").fill_null("*"))
            .alias("column")
        )
        .group_by("column", "check", maintain_order=True)
        .agg(pl.len().alias("count"), pl.col("failure_case").first().alias("example"))
    )
    for row in grouped.iter_rows(named=True):
        rule, column = row["check"], row["column"]
        example = str(row["example"])
        if rule == "column_in_schema":  # strict schema: the failure case is the extra column
            column, rule, example = example, "expected", "unknown column"
        elif rule.startswith("fresh("):  # a rule on the newest value: show that one
            example = f"newest is {frame.get_column(column).max()}"
        failures.append(RuleFailure(column, rule, row["count"], example[:60]))
    return tuple(failures)
