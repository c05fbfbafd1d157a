"""`shipyard models`: every registered model's owner, on-call and review date, and whether it
is infrastructure or still a pilot (and what is missing)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shipyard.settings import load_settings

out = Console()


def models_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Registered models with owner, team, on-call and review date, and a maturity report:
    infrastructure when embedded (serving traffic), owned (owner and on-call), measured (SLO
    series and online quality) and maintained (drift monitoring, a recent successful pipeline
    run, review not overdue); otherwise pilot, with what is missing.
    """
    from shipyard.governance.maturity import TESTS, classify, gather
    from shipyard.observability.prometheus import PrometheusApi
    from shipyard.training.tracking import MlflowRest

    settings = load_settings()
    facts = gather(MlflowRest(settings.url("mlflow")), PrometheusApi(settings.url("prometheus")))
    reports = [classify(f, date.today(), datetime.now(UTC)) for f in facts]
    if as_json:
        print(
            json.dumps(
                [
                    {
                        **asdict(r.facts),
                        "level": r.level,
                        "passed": r.passed,
                        "missing": r.missing,
                    }
                    for r in reports
                ],
                default=str,
            )
        )
        return
    if not reports:
        out.print("no registered model yet: `shipyard pipeline run training --local …`")
        return
    view = Table(box=None, padding=(0, 2))
    for column in ("model", "champion", "owner", "team", "on-call", "review by", "maturity"):
        view.add_column(column)
    for report in reports:
        f = report.facts
        view.add_row(
            f.model,
            f"v{f.champion}" if f.champion else "-",
            f.owner or "-",
            f.team or "-",
            f.on_call or "-",
            f.review_by.isoformat() if f.review_by else "-",
            report.level,
        )
    out.print(view)
    for report in reports:
        marks = "  ".join(f"{test} {'yes' if report.passed[test] else 'NO'}" for test in TESTS)
        out.print(f"\n{report.facts.model}: {report.level}  ({marks})")
        for test, reasons in report.missing.items():
            for reason in reasons:
                out.print(f"  {test}: {reason}")
