"""The ``shipyard`` command line: a thin layer of presentation over the platform's modules.

Every user mistake ends as one ``error: …`` line on stderr and a non-zero exit code
(2 for usage and settings, 1 for failures, 3 for "not running"); never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import BaseModel, SecretStr
from rich.console import Console
from rich.table import Table
from typer.exceptions import TyperException

from shipyard import __version__
from shipyard.commands import audit as audit_commands
from shipyard.commands import data as data_commands
from shipyard.commands import features as feature_commands
from shipyard.commands import pipeline as pipeline_commands
from shipyard.commands import rollout as rollout_commands
from shipyard.commands import serve as serve_commands
from shipyard.commands.forget import forget_command
from shipyard.commands.models import models_command
from shipyard.commands.refresh import refresh_command
from shipyard.commands.report import report_command
from shipyard.errors import ConfigError, ShipyardError
from shipyard.settings import Settings, config_file_path, load_settings
from shipyard.stack import control
from shipyard.stack.layout import StateLayout
from shipyard.stack.state import StackState

app = typer.Typer(
    name="shipyard",
    help=(
        "Shipyard: an MLOps platform from pipeline to GPU-served, governed endpoint.\n\n"
        "Settings come from SHIPYARD_* environment variables or shipyard.toml; "
        "see `shipyard config`."
    ),
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(data_commands.app, name="data")
app.add_typer(feature_commands.app, name="features")
app.add_typer(pipeline_commands.app, name="pipeline")
app.add_typer(serve_commands.app, name="serve")
app.add_typer(rollout_commands.app, name="rollout")
app.add_typer(audit_commands.app, name="audit")
app.command("refresh")(refresh_command)
app.command("models")(models_command)
app.command("forget")(forget_command)
app.command("report")(report_command)
out = Console()
err = Console(stderr=True)

STATUS_STYLE = {
    "ready": "green",
    "starting": "yellow",
    "unhealthy": "red",
    "backoff": "red",
    "failed": "bold red",
    "stopping": "yellow",
    "stopped": "dim",
}


def _settings() -> Settings:
    return load_settings()


def _version(value: bool) -> None:
    if value:
        out.print(f"shipyard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Shipyard command line."""
    if ctx.invoked_subcommand is None:
        out.print(ctx.get_help(), highlight=False, markup=False)


@app.command()
def up(
    json_output: Annotated[bool, typer.Option("--json", help="Print the state as JSON.")] = False,
) -> None:
    """Start the embedded platform (MLflow, Triton, gateway, Prometheus[, Redis]) and wait until
    every component is ready. Running it again changes nothing."""
    settings = _settings()
    started = time.monotonic()
    with err.status("Starting Shipyard…") as spinner:

        def progress(state: StackState | None) -> None:
            if state is None:
                return
            waiting = [c.name for c in state.components.values() if c.status != "ready"]
            ready = len(state.components) - len(waiting)
            spinner.update(
                f"Starting Shipyard: {ready}/{len(state.components)} ready, "
                f"waiting for {', '.join(waiting) or '…'} ({time.monotonic() - started:.0f}s)"
            )

        result = control.up(settings, progress)
    if json_output:
        out.print_json(json.dumps(asdict(result.state)))
        return
    _print_table(result.state)
    if result.already_running:
        out.print("Already running; nothing changed.")
    else:
        out.print(f"Started in {time.monotonic() - started:.1f}s. Stop with `shipyard down`.")


@app.command()
def down() -> None:
    """Stop every process the embedded platform started. Safe to run when nothing runs."""
    settings = _settings()
    with err.status("Stopping Shipyard…"):
        stopped = control.down(settings)
    if stopped:
        out.print(f"Stopped {', '.join(stopped)}.")
    else:
        out.print(f"Nothing was running (state dir {settings.state_dir}).")


@app.command()
def status(
    json_output: Annotated[bool, typer.Option("--json", help="Print the state as JSON.")] = False,
) -> None:
    """Show each component's status, pid, restarts, endpoints and log file.

    Exit code: 0 all ready, 1 some component not ready, 3 not running."""
    state = control.status(_settings())
    if json_output:
        out.print_json(json.dumps(asdict(state)))
    else:
        _print_table(state)
    if not control.is_healthy(state):
        raise typer.Exit(1)


@app.command()
def logs(
    component: Annotated[
        str | None, typer.Argument(help="Component name (see `shipyard status`); all when omitted.")
    ] = None,
    lines: Annotated[int, typer.Option("-n", "--lines", min=0, help="Lines to show per log.")] = 50,
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Keep printing new lines.")
    ] = False,
) -> None:
    """Print the last lines of a component's log (or of every log)."""
    layout = StateLayout(_settings().state_dir)
    available = sorted(p.stem for p in layout.logs.glob("*.log")) if layout.logs.is_dir() else []
    if component is not None and component not in available:
        known = ", ".join(available) or "none yet: run `shipyard up`"
        raise ConfigError(f"no log for component {component!r}; logs exist for: {known}")
    paths = [layout.log_file(name) for name in ([component] if component else available)]
    if not paths:
        raise ShipyardError(f"no logs yet in {layout.logs}: start the stack with `shipyard up`")
    for path in paths:
        if len(paths) > 1:
            out.print(f"[bold]==> {path} <==[/bold]")
        with open(path, errors="replace") as log:
            for line in deque(log, maxlen=lines):
                sys.stdout.write(line)
    if follow:
        _follow(paths)


@app.command("config")
def show_config() -> None:
    """Print the resolved settings and the environment variable that sets each."""
    settings = _settings()
    source = config_file_path()
    out.print(f"config file: {source if source else 'none (looked for ./shipyard.toml)'}")
    table = Table(box=None)
    table.add_column("variable", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("meaning")
    for variable, value in settings.to_env().items():
        description, secret = _describe(settings, variable)
        table.add_row(variable, "******** (set)" if secret else value, description)
    out.print(table)


def _describe(settings: Settings, variable: str) -> tuple[str, bool]:
    """The description of the setting behind ``variable``, and whether its value is a secret."""
    node: object = settings
    description = ""
    for part in variable.removeprefix("SHIPYARD_").lower().split("__"):
        if isinstance(node, BaseModel):
            field = type(node).model_fields.get(part)
            description = (field.description if field else None) or description
            node = getattr(node, part, None)
        elif isinstance(node, dict):  # a mapping setting: keep the mapping's description
            node = node.get(part)
    return description, isinstance(node, SecretStr)


def _print_table(state: StackState) -> None:
    now = time.time()
    table = Table(title="Shipyard (embedded)", title_justify="left")
    table.add_column("component", no_wrap=True)
    table.add_column("status")
    table.add_column("pid", justify="right")
    table.add_column("restarts", justify="right")
    table.add_column("uptime", justify="right")
    table.add_column("endpoint", overflow="fold")
    for c in state.components.values():
        uptime = _duration(now - c.started_at) if c.started_at and c.pid else "-"
        status_text = f"[{STATUS_STYLE.get(c.status, '')}]{c.status}[/]"
        if c.message and c.status != "ready":
            status_text += f" ({c.message})"
        endpoint = next(iter(c.urls.values()), "") or " ".join(f":{p}" for p in c.ports.values())
        table.add_row(c.name, status_text, str(c.pid or "-"), str(c.restarts), uptime, endpoint)
    out.print(table)
    logs = Path(next(iter(state.components.values())).log).parent if state.components else ""
    out.print(f"Logs: {_short_path(str(logs))}/<component>.log (`shipyard logs <component>`)")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _short_path(path: str) -> str:
    home = str(Path.home())
    return "~" + path[len(home) :] if path.startswith(home + os.sep) else path


def _follow(paths: list[Path]) -> None:
    handles = [open(path, errors="replace") for path in paths]  # noqa: SIM115
    for handle in handles:
        handle.seek(0, os.SEEK_END)
    try:
        while True:
            quiet = True
            for handle in handles:
                line = handle.readline()
                if line:
                    quiet = False
                    sys.stdout.write(line)
            sys.stdout.flush()
            if quiet:
                time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for handle in handles:
            handle.close()


def _error(message: str) -> None:
    err.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> NoReturn:
    """Console-script entry point: run the CLI, mapping every failure to one line and a code."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="shipyard", standalone_mode=False)
    except TyperException as exc:  # bad flag, value or command: Typer's usage errors
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "shipyard"
        message = " ".join(exc.format_message().split()).rstrip(".")
        _error(f"{message} (see `{where} --help`)")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        if exc.exit_code == 130:  # Typer's translation of Ctrl-C
            _error("aborted")
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _error("aborted")
        sys.exit(130)
    except ShipyardError as exc:
        _error(str(exc))
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # `python -m shipyard.cli`: how the stack starts its CLI components
    main()
