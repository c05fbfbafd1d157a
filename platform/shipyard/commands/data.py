"""`shipyard data …`: the reference data set (synthetic card transactions).

Heavy modules (Polars, pandera, pyarrow) are imported inside the commands: `shipyard --help`
and every other command must not pay for them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shipyard.errors import ConfigError, ShipyardError
from shipyard.settings import load_settings
from shipyard.stack.layout import StateLayout

app = typer.Typer(help="Generate and inspect the reference data set.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _utc_date(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a date: use YYYY-MM-DD") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def window_ending_today(days: int) -> datetime:
    # Fresh by default, so the freshness gate of `data prepare` passes on generated data; pass
    # --start for a data set that is the same on every day.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


@app.command("generate")
def generate_command(
    rows: Annotated[
        int, typer.Option(help="Transactions to generate (10k-5M is typical).")
    ] = 100_000,
    start: Annotated[
        str | None,
        typer.Option(
            help="First day of the window, YYYY-MM-DD (UTC) [default: the window ends today]."
        ),
    ] = None,
    days: Annotated[int, typer.Option(help="Length of the window in days.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 7,
    fraud_rate: Annotated[
        float, typer.Option(help="Target share of fraudulent transactions.")
    ] = 0.02,
    drift_from: Annotated[
        str | None, typer.Option(help="From this day (YYYY-MM-DD), amounts and categories drift.")
    ] = None,
    drift_amount_factor: Annotated[
        float, typer.Option(help="Amounts are multiplied by this after --drift-from.")
    ] = 1.5,
    drift_category_shift: Annotated[
        float, typer.Option(help="Share of traffic moved to risky categories after --drift-from.")
    ] = 0.2,
    late_fraction: Annotated[
        float, typer.Option(help="Share of rows ingested 1-72 h after their event.")
    ] = 0.01,
    duplicate_fraction: Annotated[
        float, typer.Option(help="Share of rows delivered twice (same transaction_id).")
    ] = 0.005,
    output: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder [default: <state dir>/data/raw]."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing data set.")] = False,
) -> None:
    """Generate seeded synthetic card transactions (with raw PII) as date-partitioned Parquet.

    Example: shipyard data generate --rows 1000000 --drift-from 2026-01-20
    """
    from shipyard.data.offline_source import write_offline_source
    from shipyard.data.synthetic import SyntheticConfig, generate

    drift_start = _utc_date(drift_from, "--drift-from")
    try:
        config = SyntheticConfig(
            rows=rows,
            start=_utc_date(start, "--start") or window_ending_today(days),
            days=days,
            seed=seed,
            fraud_rate=fraud_rate,
            drift_from=drift_start,
            drift_amount_factor=drift_amount_factor if drift_start else 1.0,
            drift_category_shift=drift_category_shift if drift_start else 0.0,
            late_fraction=late_fraction,
            duplicate_fraction=duplicate_fraction,
        )
    except ValueError as exc:
        raise ConfigError(f"invalid generator option: {exc}") from None
    target = output or StateLayout(load_settings().state_dir).raw_data
    began = time.perf_counter()
    with err.status(f"Generating {rows:,} transactions…") as status:
        data = generate(config)
        generated = time.perf_counter() - began
        status.update(f"Writing Parquet to {target}…")
        manifest = write_offline_source(data, config, target, overwrite=overwrite)
    total = time.perf_counter() - began
    table = Table(title=f"Data set written to {target}", title_justify="left", box=None)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row(
        "transactions", f"{manifest['rows']:,} ({manifest['partitions']} daily partitions)"
    )
    table.add_row("fraud", f"{manifest['frauds']:,} ({manifest['frauds'] / manifest['rows']:.2%})")
    table.add_row("customers / merchants", f"{manifest['customers']:,} / {manifest['merchants']:,}")
    table.add_row("digest", manifest["digest"])
    table.add_row("time", f"{total:.1f}s (generation {rows / generated:,.0f} rows/s)")
    out.print(table)


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO date or date-time option as an aware UTC datetime (naive values are UTC)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"{option} {value!r} is not a time: use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("prepare")
def prepare_command(
    raw: Annotated[
        Path | None, typer.Option(help="Raw data set [default: <state dir>/data/raw].")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Clean data set, replaced atomically [default: <state dir>/data/clean]."
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="Validation time for the freshness rules [default: now]."),
    ] = None,
) -> None:
    """Validate raw events, drop redeliveries, redact PII and write the clean data set.

    Bad data fails with a report naming each broken rule's column and row count; the previous
    clean data set is then left untouched. PII is dropped or tokenized as settings `pii.columns`
    say. Example: shipyard data prepare --as-of 2026-02-01
    """
    from shipyard.data.prepare import prepare

    settings = load_settings()
    began = time.perf_counter()
    with err.status("Validating and redacting…"):
        result = prepare(settings, raw=raw, out=output, as_of=parse_time(as_of, "--as-of"))
    table = Table(title="Clean data set written", title_justify="left", box=None)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("rows", f"{result.rows_out:,} (of {result.rows_in:,} raw)")
    table.add_row("redeliveries dropped", f"{result.redeliveries_dropped:,}")
    table.add_row("PII", ", ".join(f"{c}: {a}" for c, a in result.manifest["pii_policy"].items()))
    table.add_row("digest", result.manifest["digest"])
    table.add_row("time", f"{time.perf_counter() - began:.1f}s")
    out.print(table)


@app.command("scan")
def scan_command(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to scan.")],
    known_from: Annotated[
        Path | None,
        typer.Option(
            "--known-from",
            help="Raw data set whose exact PII values (names too) are searched as well.",
        ),
    ] = None,
) -> None:
    """Scan Parquet, JSON and log files for raw PII; exit 1 if any is found.

    Looks for e-mail addresses, phone numbers and Luhn-valid card numbers, and with
    --known-from for every raw value of a data set. Example:
    shipyard data scan $STATE/data/clean --known-from $STATE/data/raw
    """
    from shipyard.data import pii

    known = pii.known_pii_values(known_from) if known_from else None
    findings = pii.scan(paths, known)
    if findings:
        for finding in findings[:50]:
            err.print(str(finding), highlight=False, markup=False)
        raise ShipyardError(f"raw PII found: {len(findings)} finding(s) in the scanned files")
    out.print(f"No raw PII found in {', '.join(str(p) for p in paths)}.")
