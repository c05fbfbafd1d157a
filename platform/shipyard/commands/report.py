"""`shipyard report`: the dashboards' key panels as PNG files and one HTML page."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from shipyard.errors import ConfigError
from shipyard.settings import load_settings

out = Console()
err = Console(stderr=True)


def report_command(
    since: Annotated[
        str,
        typer.Option(help="How far back to draw: 15m, 1h, 6h, 2d …"),
    ] = "1h",
    out_dir: Annotated[
        Path,
        typer.Option("--out", help="Folder for the PNG files and index.html (created)."),
    ] = Path("shipyard-report"),
    prometheus: Annotated[
        str | None,
        typer.Option(
            help="Prometheus URL. Default: the embedded stack's (SHIPYARD_PORTS__PROMETHEUS).",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Only this model (a regular expression). Default: every model."),
    ] = None,
) -> None:
    """Draw the key panels of Shipyard's Grafana dashboards without Grafana.

    Queries Prometheus' range API with the dashboards' own queries (SLOs, latency, backends
    and fallback, Triton, feature store, traffic split, drift, online quality, pipelines,
    cost) and writes one PNG per panel plus a self-contained index.html (images embedded)
    into --out. Open index.html in a browser, or attach it to a ticket.

    Examples:

      shipyard report                              # last hour, embedded stack

      shipyard report --since 6h --out /tmp/r      # six hours, elsewhere

      shipyard report --prometheus http://prometheus.monitoring:9090 --model fraud-scoring
    """
    from shipyard.observability import panels, report

    try:
        window = report.parse_since(since)
    except ValueError as exc:
        raise ConfigError(f"--since: {exc}") from None
    url = prometheus or load_settings().url("prometheus")
    started = time.monotonic()
    err.print(f"Querying {url} for the last {since}…", highlight=False)
    result = report.build_report(
        url,
        window,
        out_dir,
        progress=lambda line: err.print(f"  {line}", highlight=False, markup=False),
        models=model or panels.ALL_MODELS,
    )
    empty = result.empty
    out.print(
        f"Wrote {len(result.panels)} panels ({len(empty)} without data) in "
        f"{time.monotonic() - started:.1f}s: {result.html}",
        highlight=False,
    )
    if empty and len(empty) == len(result.panels):
        err.print(
            "No panel has data: is traffic flowing? (`shipyard status`, then send predictions)",
            highlight=False,
        )
