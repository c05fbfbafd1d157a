"""`shipyard refresh`: the data-to-features job of `make up`, idempotent and safe to re-run.

raw data (generated once if there is none) -> prepare (validate, redact) -> feature tables ->
Feast apply -> incremental materialization. Each step replaces its output atomically, so an
interrupted refresh leaves the previous complete state behind.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from shipyard.commands.data import window_ending_today
from shipyard.settings import load_settings
from shipyard.stack.layout import StateLayout

out = Console()
err = Console(stderr=True)


def refresh_command(
    rows: Annotated[
        int, typer.Option(help="Size of the reference data set if one must be generated.")
    ] = 100_000,
) -> None:
    """Refresh data and features: prepare -> build -> apply -> materialize.

    Generates the reference data set first when the state directory has none. The online
    store follows SHIPYARD_PROFILE (sqlite, or redis: start the stack with that profile first).
    """
    from shipyard.data.offline_source import write_offline_source
    from shipyard.data.prepare import prepare
    from shipyard.data.synthetic import SyntheticConfig, generate
    from shipyard.features import store as feature_store
    from shipyard.features.job import build_feature_tables

    settings = load_settings()
    layout = StateLayout(settings.state_dir)
    began = time.perf_counter()

    def step(message: str) -> None:
        err.print(f"[bold]→[/bold] {message}", highlight=False)

    if not (layout.raw_data / "manifest.json").exists():
        step(f"generating the reference data set ({rows:,} transactions, last 30 days)")
        config = SyntheticConfig(
            rows=rows,
            start=window_ending_today(30),
            days=30,
            late_fraction=0.01,
            duplicate_fraction=0.005,
        )
        write_offline_source(generate(config), config, layout.raw_data)
    step("validating raw data and redacting PII")
    prepared = prepare(settings)
    step(f"computing feature tables from {prepared.rows_out:,} clean events")
    job = build_feature_tables(layout.clean_data, layout.feature_tables)
    step("registering the feature repository in Feast")
    feature_store.apply(settings)
    step(f"materializing into the {settings.profile} online store")
    feature_store.open_store(settings).materialize_incremental(end_date=datetime.now(UTC))
    out.print(
        f"Features ready: {prepared.rows_out:,} events, "
        + ", ".join(f"{view} {rows:,} rows" for view, rows in job.tables.items())
        + f" ({time.perf_counter() - began:.1f}s). "
        "Try: shipyard features get --customer 1 --merchant 1 --amount 120"
    )
