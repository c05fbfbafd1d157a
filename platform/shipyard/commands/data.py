"""`shipyard data …`: the reference data set (synthetic card transactions)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shipyard.data.offline_source import write_offline_source
from shipyard.data.synthetic import SyntheticConfig, generate
from shipyard.errors import ConfigError
from shipyard.settings import load_settings

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


@app.command("generate")
def generate_command(
    rows: Annotated[
        int, typer.Option(help="Transactions to generate (10k-5M is typical).")
    ] = 100_000,
    start: Annotated[
        str, typer.Option(help="First day of the window, YYYY-MM-DD (UTC).")
    ] = "2026-01-01",
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
    drift_start = _utc_date(drift_from, "--drift-from")
    try:
        config = SyntheticConfig(
            rows=rows,
            start=_utc_date(start, "--start"),
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
    target = output or load_settings().state_dir / "data" / "raw"
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
