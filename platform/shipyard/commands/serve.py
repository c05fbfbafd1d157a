"""`shipyard serve …`: publish model versions to the serving backends and route traffic.

Route changes go through the gateway's admin API when it runs (it validates them against what
it can serve and applies them at once); otherwise the routing file is written directly and the
gateway picks it up when it starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shipyard import routing
from shipyard.errors import ConfigError, ShipyardError
from shipyard.rollout.history import HistoryFile, HistoryRecord, current_user
from shipyard.routing import RoutingTable
from shipyard.settings import Settings, load_settings
from shipyard.stack.layout import StateLayout

app = typer.Typer(
    help="Serving: publish versions to Triton and the gateway; route stable/canary traffic.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

ModelArgument = Annotated[str, typer.Argument(help="Registered model name, e.g. fraud-scoring.")]


def _progress(message: str) -> None:
    err.print(f"[dim]… {message}[/dim]", highlight=False)


def _routing_file(settings: Settings) -> Path:
    return settings.serving.routing_file or StateLayout(settings.state_dir).routing_file


@app.command("publish")
def publish_command(
    model: ModelArgument,
    version: Annotated[
        str | None, typer.Option(help="Registered version to publish (or use --alias).")
    ] = None,
    alias: Annotated[
        str | None, typer.Option(help="Publish the version behind this alias, e.g. champion.")
    ] = None,
    route: Annotated[
        str,
        typer.Option(
            help="Then route it: 'stable', 'canary' (with --weight), 'none', or 'auto' "
            "(stable when the model has no route yet)."
        ),
    ] = "auto",
    weight: Annotated[
        float, typer.Option(min=0, max=100, help="Canary weight in percent (with --route canary).")
    ] = 0.0,
) -> None:
    """Load a registered version into every Triton pool and the gateway's in-process fallback.

    A version that fails to load leaves what is served untouched. Example:

        shipyard serve publish fraud-scoring --alias champion
    """
    from serving.publish import publish, resolve_alias

    if route not in ("auto", "stable", "canary", "none"):
        raise ConfigError(f"--route {route!r}: use stable, canary, none or auto")
    if (version is None) == (alias is None):
        raise ConfigError("give exactly one of --version N or --alias NAME")
    settings = load_settings()
    version = version or resolve_alias(settings, model, alias or "")
    result = publish(settings, model, version, _progress)
    pools = ", ".join(f"{name} {state}" for name, state in result.pools.items()) or "no pools"
    verb = "already published" if result.already else "published"
    out.print(f"{verb} {model} v{version}: {pools}; loads in ONNX Runtime (in-process fallback)")
    current = routing.load(_routing_file(settings)).models.get(model)
    if route == "auto":
        route = "stable" if current is None else "none"
    if route == "stable":
        _change_route(settings, model, stable=version, keep_canary=current is not None)
    elif route == "canary":
        if current is None:
            raise ConfigError(f"{model} has no stable version yet: publish with --route stable")
        _change_route(settings, model, canary=version, weight=weight)


@app.command("route")
def route_command(
    model: ModelArgument,
    stable: Annotated[str | None, typer.Option(help="New stable version.")] = None,
    canary: Annotated[str | None, typer.Option(help="Canary version.")] = None,
    weight: Annotated[
        float | None, typer.Option(min=0, max=100, help="Canary weight, percent of entities.")
    ] = None,
    clear_canary: Annotated[bool, typer.Option(help="Remove the canary.")] = False,
    fault_error_ratio: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="Testing: share of canary requests answered 500."),
    ] = None,
    fault_delay_ms: Annotated[
        int | None, typer.Option(min=0, max=10_000, help="Testing: delay of delayed requests.")
    ] = None,
    fault_delay_ratio: Annotated[
        float, typer.Option(min=0, max=1, help="Testing: share of canary requests delayed.")
    ] = 1.0,
    clear_fault: Annotated[bool, typer.Option(help="Stop injecting failures.")] = False,
) -> None:
    """Change a model's stable version, canary version or canary weight, or inject failures
    into its canary (game days; proving the rollout analysis rolls a failing canary back).

    Examples:

    \b
      send 20% of customers to v4:   shipyard serve route fraud-scoring --canary 4 --weight 20
      fail 10% of canary requests:   shipyard serve route fraud-scoring --fault-error-ratio 0.1
      stop:                          shipyard serve route fraud-scoring --clear-fault
    """
    fault = None
    if fault_error_ratio is not None or fault_delay_ms is not None:
        fault = routing.Fault(
            error_ratio=fault_error_ratio or 0.0,
            delay_ms=fault_delay_ms or 0,
            delay_ratio=fault_delay_ratio if fault_delay_ms else 0.0,
        )
    if (stable, canary, weight, fault) == (None,) * 4 and not (clear_canary or clear_fault):
        raise ConfigError(
            "nothing to change: give --stable, --canary, --weight, --clear-canary or a --fault-… "
            "option"
        )
    _change_route(
        load_settings(),
        model,
        stable=stable,
        canary=canary,
        weight=weight,
        clear=clear_canary,
        fault=fault,
        clear_fault=clear_fault,
    )


@app.command("routes")
def routes_command() -> None:
    """Show the routing table."""
    table = routing.load(_routing_file(load_settings()))
    _show(table)


def _change_route(
    settings: Settings,
    model: str,
    stable: str | None = None,
    canary: str | None = None,
    weight: float | None = None,
    clear: bool = False,
    keep_canary: bool = True,
    fault: routing.Fault | None = None,
    clear_fault: bool = False,
) -> None:
    update = {
        "stable_version": stable,
        "canary_version": canary,
        "canary_weight": weight,
        "clear_canary": clear or not keep_canary,
        "canary_fault": fault.model_dump() if fault else None,
        "clear_fault": clear_fault,
    }
    via = _via_gateway(settings, model, update)
    if via is None:
        via = _via_file(settings, model, update)
    _show(routing.load(_routing_file(settings)), title=f"routing ({via})")


def _via_gateway(settings: Settings, model: str, update: dict) -> str | None:
    """Apply through the running gateway's admin API; None when no gateway answers."""
    import httpx

    from serving.access import admin_keys

    url = settings.url("gateway")
    try:
        httpx.get(f"{url}/healthz", timeout=2).raise_for_status()
    except httpx.HTTPError:
        return None
    key = admin_keys(settings)[0]
    response = httpx.put(
        f"{url}/v1/admin/routes/{model}",
        # Only what changes: unset options are the API's defaults.
        json={k: v for k, v in update.items() if v not in (None, False)},
        headers={"X-API-Key": key},
        timeout=30,
    )
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise ShipyardError(f"the gateway refused the route change: {message}")
    return "applied by the gateway"


def _via_file(settings: Settings, model: str, update: dict) -> str:
    path = _routing_file(settings)
    table = routing.load(path)
    route = routing.updated_route(
        model,
        table.models.get(model),
        stable=update["stable_version"],
        canary=update["canary_version"],
        weight=update["canary_weight"],
        clear_canary=update["clear_canary"],
        fault=routing.Fault(**update["canary_fault"]) if update["canary_fault"] else None,
        clear_fault=update["clear_fault"],
    )
    layout = StateLayout(settings.state_dir)
    reason = "changed by `shipyard serve`"
    record = HistoryRecord.of_route(model, route, "route", reason, current_user())
    HistoryFile(layout.deployment_history).append([record])  # recorded, then applied
    routing.save(path, routing.with_route(table, model, route))
    return f"written to {path}; the gateway applies it when it starts"


def _show(table: RoutingTable, title: str = "routing") -> None:
    view = Table(title=title, box=None)
    for column in ("model", "stable", "canary", "weight %", "injected fault"):
        view.add_column(column)
    for name, route in sorted(table.models.items()):
        canary = route.canary
        fault = canary.fault if canary else None
        view.add_row(
            name,
            route.stable.version,
            canary.version if canary else "-",
            f"{canary.weight:g}" if canary else "0",
            f"{fault.error_ratio:.0%} errors, {fault.delay_ratio:.0%} +{fault.delay_ms} ms"
            if fault
            else "-",
        )
    if not table.models:
        out.print("no model is routed yet: `shipyard serve publish MODEL --alias champion`")
        return
    out.print(view)
