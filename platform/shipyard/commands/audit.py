"""`shipyard audit …`: what served when, and what one prediction was and came from."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shipyard.errors import ShipyardError
from shipyard.settings import Settings, load_settings
from shipyard.stack.layout import StateLayout

app = typer.Typer(
    help="Audit: which model version served at a given time; one prediction and its lineage.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)


def _index(settings: Settings):
    from shipyard.governance.audit import AuditIndex

    layout = StateLayout(settings.state_dir)
    return AuditIndex(layout.audit, layout.audit_index)


@app.command("at")
def at_command(
    when: Annotated[str, typer.Argument(help="ISO 8601 time (UTC when no zone), or 'now'.")],
    model: Annotated[str | None, typer.Option(help="One model [default: all].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Which version(s) served each model at that instant, with their weights, from the
    deployment history.

    Example: shipyard audit at 2026-12-01T10:00:00Z --model fraud-scoring
    """
    from shipyard.governance.audit import parse_time
    from shipyard.rollout.history import served_at
    from shipyard.rollout.store import open_store

    moment = parse_time(when)
    found = served_at(open_store(load_settings()).history(), moment, model)
    if as_json:
        print(json.dumps({name: r.model_dump(mode="json") for name, r in found.items()}))
        return
    if not found:
        what = model or "any model"
        out.print(f"nothing routed for {what} at {moment.isoformat()} (no change recorded before)")
        raise typer.Exit(1)
    view = Table(title=f"serving at {moment.isoformat()}", box=None, padding=(0, 2))
    for column in ("model", "stable", "canary", "canary weight %", "since", "by", "why"):
        view.add_column(column, overflow="fold")
    for name, record in sorted(found.items()):
        view.add_row(
            name,
            f"v{record.stable}",
            f"v{record.canary}" if record.canary else "-",
            f"{record.weight:g}",
            record.time.strftime("%Y-%m-%d %H:%M:%SZ"),
            record.actor,
            record.reason,
        )
    out.print(view)


@app.command("request")
def request_command(
    identifier: Annotated[str, typer.Argument(help="A prediction id, or a request id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The audit record of a prediction (or of every prediction of a request) with its lineage:
    model version, MLflow run, dataset digest, feature service, pipeline run, owner.

    Example: shipyard audit request 3f2a9c…-0
    """
    settings = load_settings()
    records = _index(settings).lookup(identifier)
    if not records:
        raise ShipyardError(
            f"no prediction or request {identifier!r} in the audit log "
            f"({StateLayout(settings.state_dir).audit})"
        )
    resolved = [{**record, "lineage": _lineage(settings, record)} for record in records]
    if as_json:
        print(json.dumps(resolved, default=str))
        return
    for record in resolved:
        out.print(f"[bold]{record['prediction_id']}[/bold] (request {record['request_id']})")
        lineage = record.pop("lineage")
        for key in ("ts", "model", "version", "route", "backend", "score", "customer_id"):
            if key in record:
                out.print(f"  {key:<16} {record[key]}")
        if "erased" in record:  # a tombstone: the person's fields went with an erasure
            out.print(f"  {'erased by':<16} {record['erased']['erasure_id']}")
        for key, value in sorted(lineage.items()):
            out.print(f"  {key:<16} {value}")


def _lineage(settings: Settings, record: dict[str, Any]) -> dict[str, Any]:
    """Where the version that served came from, as published (serving.json)."""
    from serving.gateway import Paths
    from serving.models import VersionNotPublished, read_metadata

    folder = Paths.of(settings).model_repository / record["model"] / str(record["version"])
    try:
        return dict(read_metadata(folder).get("lineage", {}))
    except VersionNotPublished as exc:
        return {"unresolved": str(exc)}


@app.command("erasures")
def erasures_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The erasure trail: every `shipyard forget`, started and completed, who, when, rows
    removed per store and the model versions tagged for retraining. Subjects appear as keyed
    hashes, never as ids.
    """
    from shipyard.governance.forget import read_trail

    events = read_trail(StateLayout(load_settings().state_dir))
    if as_json:
        print(json.dumps(events))
        return
    if not events:
        out.print("no erasure yet (`shipyard forget --customer ID`)")
        return
    view = Table(box=None, padding=(0, 2))
    for column in ("time", "erasure", "event", "by", "subject", "removed", "retrain"):
        view.add_column(column, overflow="fold")
    for event in events:
        removed = event.get("removed") or {}
        view.add_row(
            event["ts"][:19] + "Z",
            event["erasure_id"],
            event["event"],
            event.get("actor", ""),
            event["subject"][:12] + "…",
            ", ".join(f"{store} {count:,}" for store, count in removed.items() if count),
            ", ".join(event.get("models") or []),
        )
    out.print(view)


@app.command("index")
def index_command() -> None:
    """Bring the audit index up to date (queries do it too; this shows the numbers)."""
    began = time.perf_counter()
    result = _index(load_settings()).catch_up()
    out.print(
        f"indexed {result.added} new predictions from {result.segments} segments in "
        f"{time.perf_counter() - began:.1f}s; {result.total} in the index"
    )
