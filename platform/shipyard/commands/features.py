"""`shipyard features …`: build, register, materialize, push and retrieve features (Feast).

Feast and Polars are imported inside the commands (Feast alone takes seconds to import).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shipyard.commands.data import parse_time
from shipyard.errors import ConfigError
from shipyard.features.catalog import DEFAULT_FEATURE_SERVICE, FEATURE_SERVICES
from shipyard.settings import load_settings
from shipyard.stack.layout import StateLayout

app = typer.Typer(
    help="Feature pipeline on Feast: build -> apply -> materialize -> get / training-set; push.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

ServiceOption = Annotated[
    str,
    typer.Option(
        "--service",
        help=f"Feature service (one per model version): {', '.join(FEATURE_SERVICES)}.",
    ),
]


def _progress(message: str) -> None:
    err.print(f"[dim]… {message}[/dim]", highlight=False)


@app.command("build")
def build_command() -> None:
    """Compute the feature tables (exact rolling windows) from the clean data set.

    Run `shipyard data prepare` first. Writes <state dir>/data/features atomically.
    """
    from shipyard.features.job import build_feature_tables

    layout = StateLayout(load_settings().state_dir)
    result = build_feature_tables(layout.clean_data, layout.feature_tables, _progress)
    table = Table(title=f"Feature tables written to {layout.feature_tables}", box=None)
    table.add_column("view", style="bold")
    table.add_column("rows", justify="right")
    for view, rows in result.tables.items():
        table.add_row(view, f"{rows:,}")
    out.print(table)
    out.print(
        f"{result.events:,} events in {result.seconds:.1f}s "
        f"({result.events_per_second:,.0f} events/s)"
    )


@app.command("apply")
def apply_command() -> None:
    """Register the repository (feature_repo/) in Feast; idempotent."""
    from shipyard.features import store as feature_store

    summary = feature_store.apply(load_settings())
    for verb, items in (
        ("created", summary.created),
        ("updated", summary.updated),
        ("deleted", summary.deleted),
    ):
        for kind, name in sorted(items):
            out.print(f"{verb:<8} {kind:<22} {name}", highlight=False)
    if summary.changed:
        out.print(f"Registry updated; {summary.unchanged} object(s) unchanged.")
    else:
        out.print(f"Registry already up to date ({summary.unchanged} objects); nothing changed.")


@app.command("materialize")
def materialize_command(
    start: Annotated[
        str | None,
        typer.Option(help="Window start (ISO time); without it, continue from the last run."),
    ] = None,
    end: Annotated[str | None, typer.Option(help="Window end (ISO time) [default: now].")] = None,
) -> None:
    """Load the latest feature values up to --end into the online store.

    Incremental by default. Idempotent: the same window twice leaves the store identical, and an
    older value never overwrites a newer one (so windows may be run out of order).
    """
    from shipyard.features import store as feature_store

    settings = load_settings()
    end_at = parse_time(end, "--end") or datetime.now(UTC)
    start_at = parse_time(start, "--start")
    if start_at is not None and start_at >= end_at:
        raise ConfigError("--start must be before --end")
    store = feature_store.open_store(settings)
    began = time.perf_counter()
    if start_at is None:
        store.materialize_incremental(end_date=end_at)
    else:
        store.materialize(start_date=start_at, end_date=end_at)
    out.print(f"Materialized up to {end_at.isoformat()} in {time.perf_counter() - began:.1f}s.")


@app.command("push")
def push_command(
    events: Annotated[Path, typer.Argument(help="Fresh transactions, .jsonl or .parquet.")],
) -> None:
    """Stream fresh transactions: validate, redact, append, update the online store.

    Each line of a .jsonl file is one raw transaction (fields as in the raw data set; PII is
    redacted before anything is stored). The pushed customers' windows are recomputed exactly.
    """
    from shipyard.features import store as feature_store
    from shipyard.features.push import push_events, read_events

    settings = load_settings()
    frame = read_events(events)
    result = push_events(settings, feature_store.open_store(settings), frame)
    out.print(
        f"Pushed {result.events:,} new event(s); online features of {result.customers:,} "
        f"customer(s) updated."
    )


@app.command("get")
def get_command(
    customer: Annotated[int, typer.Option("--customer", help="customer_id")],
    merchant: Annotated[int, typer.Option("--merchant", help="merchant_id")],
    amount: Annotated[float, typer.Option(help="Amount of the transaction being scored.")] = 0.0,
    service: ServiceOption = DEFAULT_FEATURE_SERVICE,
) -> None:
    """Print the online features of one transaction, as the gateway would fetch them."""
    from shipyard.features import store as feature_store
    from shipyard.features.online import OnlineFeatureReader

    settings = load_settings()
    reader = OnlineFeatureReader(settings, feature_store.open_store(settings), service)
    try:
        row = {"customer_id": customer, "merchant_id": merchant, "amount": amount}
        began = time.perf_counter()
        values = reader.read([row])[0]
        took = (time.perf_counter() - began) * 1000
    finally:
        reader.close()
    table = Table(title=f"{service} (read in {took:.2f} ms)", title_justify="left", box=None)
    table.add_column("feature", style="bold")
    table.add_column("value", justify="right")
    for name in reader.feature_names:
        value = values[name]
        table.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    out.print(table)


@app.command("training-set")
def training_set_command(
    service: ServiceOption = DEFAULT_FEATURE_SERVICE,
    start: Annotated[str | None, typer.Option(help="First event time (ISO).")] = None,
    end: Annotated[str | None, typer.Option(help="End of events, exclusive (ISO).")] = None,
    output: Annotated[
        Path | None,
        typer.Option("--out", help="Folder [default: <state dir>/data/training/<service>]."),
    ] = None,
) -> None:
    """Build a point-in-time correct training set: each transaction with the features known
    at its time (no future values), plus its label. Written atomically with a manifest."""
    from shipyard.features import store as feature_store
    from shipyard.features.training import build_training_set

    settings = load_settings()
    layout = StateLayout(settings.state_dir)
    target = output or layout.training_sets / service
    began = time.perf_counter()
    result = build_training_set(
        feature_store.open_store(settings),
        service,
        layout.clean_data,
        layout.feature_tables,
        target,
        start=parse_time(start, "--start"),
        end=parse_time(end, "--end"),
        progress=_progress,
    )
    manifest = result.manifest
    out.print(
        f"Training set {result.path}: {result.rows:,} rows, {manifest['positives']:,} positive, "
        f"{len(manifest['features'])} features, in {time.perf_counter() - began:.1f}s."
    )
