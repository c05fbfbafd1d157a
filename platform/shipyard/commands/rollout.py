"""`shipyard rollout …`: canary rollouts judged in Prometheus, promoted or rolled back by the
rollout loop (`shipyard rollout watch`, a component of the embedded stack and a Deployment on a
cluster). Every routing change lands in the deployment history (`shipyard rollout history`).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shipyard.errors import ConfigError
from shipyard.rollout.history import current_user
from shipyard.rollout.state import Rollout
from shipyard.routing import Analysis
from shipyard.settings import load_settings

app = typer.Typer(
    help="Canary rollouts: start one, watch it step, promote or abort; the deployment history.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

ModelArgument = Annotated[str, typer.Argument(help="Registered model name, e.g. fraud-scoring.")]


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _steps(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(
            f"--steps {text!r}: give increasing percentages, e.g. 5,25,50,100"
        ) from None


@app.command("start")
def start_command(
    model: ModelArgument,
    version: Annotated[
        str | None, typer.Option(help="Version to roll out [default: the challenger].")
    ] = None,
    steps: Annotated[
        str | None, typer.Option(help="Canary weights in percent, e.g. 5,10,25,50,100.")
    ] = None,
    interval: Annotated[
        float | None, typer.Option(min=1, help="Seconds each step is observed before judging.")
    ] = None,
    max_failures: Annotated[
        int | None, typer.Option(min=0, help="Failed checks tolerated before rolling back.")
    ] = None,
    min_requests: Annotated[
        int | None, typer.Option(min=1, help="Canary requests a step needs to be judged.")
    ] = None,
    max_score_psi: Annotated[
        float | None,
        typer.Option(min=0, help="Score-distribution shift (PSI) tolerated against stable."),
    ] = None,
    max_p99_ratio: Annotated[
        float | None, typer.Option(min=0, help="Canary p99 latency / stable p99 ceiling.")
    ] = None,
) -> None:
    """Publish a version and route it as a canary at the first step; the rollout loop judges
    each step in Prometheus (errors, p99 latency, score shift, online AUC against stable) and
    steps up, promotes (MLflow champion moves) or rolls back on its own.

    Example: shipyard rollout start fraud-scoring --steps 10,50,100 --interval 60
    """
    from shipyard.rollout.watch import controller_for
    from shipyard.training.tracking import CHALLENGER, MlflowRest

    settings = load_settings()
    controller = controller_for(settings)
    table, _ = controller.store.read()
    route = table.models.get(model)
    current = route.canary.analysis if route and route.canary else settings.rollout.analysis
    changes = {
        "steps": _steps(steps) if steps else None,
        "interval_s": interval,
        "max_failures": max_failures,
        "min_requests": min_requests,
        "max_score_psi": max_score_psi,
        "max_p99_ratio": max_p99_ratio,
    }
    try:
        analysis = Analysis.model_validate(
            current.model_dump() | {k: v for k, v in changes.items() if v is not None}
        )
    except ValueError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")  # type: ignore[attr-defined]
        raise ConfigError(f"invalid analysis: {message}") from None
    if version is None:
        version = MlflowRest(settings.url("mlflow")).alias_version(model, CHALLENGER)
        if version is None:
            raise ConfigError(
                f"{model} has no challenger: give --version N, or run the training pipeline"
            )
    rollout = controller.start(model, version, actor=current_user(), analysis=analysis)
    weights = " → ".join(f"{w:g}%" for w in rollout.steps)
    out.print(
        f"rollout of {model} v{version} against v{rollout.stable} started at "
        f"{rollout.weight:g}%: steps {weights}, each judged after {analysis.interval_s:g}s; "
        f"follow it with `shipyard rollout status {model}`"
    )


@app.command("status")
def status_command(
    model: Annotated[str | None, typer.Argument(help="One model [default: all].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Each model's latest rollout: step, weight, failures, the last checks and why."""
    from shipyard.rollout.store import open_store

    _, rollouts = open_store(load_settings()).read()
    chosen = {
        name: rollout
        for name, rollout in sorted(rollouts.rollouts.items())
        if model is None or name == model
    }
    if as_json:
        out.print_json(json.dumps({k: v.model_dump(mode="json") for k, v in chosen.items()}))
        return
    if not chosen:
        what = model or "any model"
        out.print(f"no rollout of {what} yet: `shipyard rollout start MODEL`")
        return
    for rollout in chosen.values():
        _show(rollout)


def _show(rollout: Rollout) -> None:
    steps = " → ".join(
        f"[bold]{w:g}%[/bold]" if i == rollout.step and rollout.active else f"{w:g}%"
        for i, w in enumerate(rollout.steps)
    )
    out.print(
        f"{rollout.model} v{rollout.canary} (stable v{rollout.stable}): [bold]{rollout.status}"
        f"[/bold], weight {rollout.weight:g}%, failed checks {rollout.failures}; "
        f"started {_when(rollout.started_at)} by {rollout.actor}"
    )
    out.print(f"  steps {steps}")
    out.print(f"  {rollout.reason}", highlight=False)
    if rollout.checks:
        view = Table(box=None, padding=(0, 2))
        for column in ("check", "outcome", "value", "threshold", "detail"):
            view.add_column(column)
        for check in rollout.checks:
            view.add_row(
                check.name,
                check.outcome,
                "-" if check.value is None else f"{check.value:.4g}",
                "-" if check.threshold is None else f"{check.threshold:.4g}",
                check.detail,
            )
        out.print(view)


@app.command("promote")
def promote_command(
    model: ModelArgument,
    reason: Annotated[str, typer.Option(help="Why, for the deployment history.")] = "",
) -> None:
    """Promote the canary now (stable := canary, MLflow champion moves, challenger cleared)."""
    from shipyard.rollout.watch import controller_for

    rollout = controller_for(load_settings()).promote(model, current_user(), reason)
    out.print(f"{model} v{rollout.canary} promoted: it is the stable version and the champion")


@app.command("abort")
def abort_command(
    model: ModelArgument,
    reason: Annotated[str, typer.Option(help="Why, for the deployment history.")] = "",
) -> None:
    """Stop the rollout in progress: the canary gets weight 0 at once."""
    from shipyard.rollout.watch import controller_for

    rollout = controller_for(load_settings()).abort(model, current_user(), reason)
    out.print(f"rollout of {model} v{rollout.canary} aborted; stable v{rollout.stable} serves all")


@app.command("history")
def history_command(
    model: Annotated[str | None, typer.Argument(help="One model [default: all].")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most recent records shown.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, all fields.")] = False,
) -> None:
    """The deployment history: every routing change (and retraining decision), oldest first."""
    from shipyard.rollout.store import open_store

    records = [
        r for r in open_store(load_settings()).history() if model is None or r.model == model
    ][-limit:]
    if as_json:
        for record in records:
            print(record.line(), end="")
        return
    if not records:
        out.print("no routing change recorded yet")
        return
    view = Table(box=None, padding=(0, 2))
    for column in (
        "time (UTC)",
        "model",
        "event",
        "stable",
        "canary",
        "weight %",
        "actor",
        "reason",
    ):
        view.add_column(column, overflow="fold")
    for r in records:
        view.add_row(
            r.time.strftime("%Y-%m-%d %H:%M:%S"),
            r.model,
            r.event,
            r.stable or "-",
            r.canary or "-",
            f"{r.weight:g}",
            r.actor,
            r.reason,
        )
    out.print(view)


@app.command("watch")
def watch_command(
    host: Annotated[str, typer.Option(help="Address of /healthz and /metrics.")] = "127.0.0.1",
) -> None:
    """Run the rollout loop: judge canaries, promote or roll back, retrain on drift alerts.

    The embedded stack runs it for you (`shipyard up`); on a cluster the chart does.
    """
    import logging

    from shipyard.rollout import watch

    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per Prometheus query is noise
    started = time.monotonic()
    watch.run(settings, host=host)
    err.print(f"rollout loop ran {time.monotonic() - started:.0f}s")
