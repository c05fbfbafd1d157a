"""`shipyard pipeline …`: run, compile or submit the KFP training pipeline.

One pipeline definition (``pipelines/training.py``), three ways to run it: ``--local`` through
``kfp.local`` against the embedded stack, ``compile`` to IR YAML, ``--host`` to a KFP cluster.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from shipyard.errors import ConfigError, ShipyardError, StackNotRunningError
from shipyard.settings import load_settings
from shipyard.stack.layout import StateLayout

app = typer.Typer(
    help="Run, compile or submit the training pipeline (KFP v2).", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)
PIPELINES = ("training",)
DEFAULT_OUT = Path("pipelines/compiled/training.yaml")


def _pipeline(name: str):
    if name not in PIPELINES:
        raise ConfigError(f"unknown pipeline {name!r}: known are {', '.join(PIPELINES)}")
    from pipelines.training import training_pipeline

    return training_pipeline


@app.command("compile")
def compile_command(
    name: Annotated[str, typer.Argument(help="Pipeline to compile.")] = "training",
    output: Annotated[Path, typer.Option("--out", help="IR YAML file to write.")] = DEFAULT_OUT,
) -> None:
    """Compile the pipeline to KFP IR YAML (what a cluster runs)."""
    from kfp import compiler

    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(_pipeline(name), str(output))
    out.print(f"Compiled {name} to {output}")


@app.command("run")
def run_command(
    name: Annotated[str, typer.Argument(help="Pipeline to run.")] = "training",
    local: Annotated[bool, typer.Option("--local", help="Run here with kfp.local.")] = False,
    host: Annotated[
        str | None, typer.Option(help="Submit to the KFP API at this URL instead.")
    ] = None,
    owner: Annotated[str, typer.Option(help="Owner of the model (required).")] = "",
    team: Annotated[str, typer.Option(help="Team owning the model (required).")] = "",
    on_call: Annotated[str, typer.Option(help="On-call rotation or pager.")] = "",
    model_name: Annotated[str, typer.Option(help="Registered model name.")] = "fraud-scoring",
    feature_service: Annotated[str, typer.Option(help="Feature service to train on.")] = (
        "fraud_scoring_v2"
    ),
    raw: Annotated[
        Path | None, typer.Option(help="Raw data set [default: <state dir>/data/raw].")
    ] = None,
    as_of: Annotated[str, typer.Option(help="Validation time (ISO) [default: now].")] = "",
    n_estimators: Annotated[int, typer.Option(help="LightGBM boosting rounds.")] = 200,
    learning_rate: Annotated[float, typer.Option(help="LightGBM learning rate.")] = 0.05,
    num_leaves: Annotated[int, typer.Option(help="LightGBM leaves per tree.")] = 31,
    min_child_samples: Annotated[int, typer.Option(help="LightGBM minimum leaf size.")] = 50,
    max_auc_drop: Annotated[
        float, typer.Option(help="Gate: largest ROC-AUC drop allowed against the champion.")
    ] = 0.01,
    min_slice_auc: Annotated[float, typer.Option(help="Gate: ROC-AUC floor of every slice.")] = 0.6,
) -> None:
    """Train, evaluate, gate, register, export and mark the challenger.

    Example: shipyard pipeline run training --local --owner alice --team fraud
    """
    from shipyard.training.model import HyperParameters
    from shipyard.training.registry import Ownership

    if local == bool(host):
        raise ConfigError("choose where to run: --local, or --host URL of a KFP API")
    Ownership(owner, team, on_call)  # refuse an owner-less model before any work
    try:
        HyperParameters(n_estimators, learning_rate, num_leaves, min_child_samples)
    except ValueError as exc:
        raise ConfigError(f"invalid hyper-parameter: {exc}") from None
    settings = load_settings()
    layout = StateLayout(settings.state_dir)
    arguments = {
        "raw_uri": str((raw or layout.raw_data).absolute()),
        "owner": owner,
        "team": team,
        "on_call": on_call,
        "model_name": model_name,
        "feature_service": feature_service,
        "as_of": as_of,
        "n_estimators": n_estimators,
        "learning_rate": learning_rate,
        "num_leaves": num_leaves,
        "min_child_samples": min_child_samples,
        "max_auc_drop": max_auc_drop,
        "min_slice_auc": min_slice_auc,
    }
    pipeline = _pipeline(name)
    if host:
        _submit(host, pipeline, arguments)
        return
    _run_local(settings, layout, pipeline, arguments)


def _run_local(settings, layout: StateLayout, pipeline, arguments: dict) -> None:
    from kfp import local

    from shipyard.stack.probes import HttpProbe

    if not HttpProbe(settings.ports.mlflow, "/health")():
        raise StackNotRunningError("MLflow is not reachable: start the platform with `shipyard up`")
    # Components run as subprocesses: give them exactly these settings.
    os.environ.update(settings.to_env())
    root = layout.root / "pipelines"
    root.mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    began = time.perf_counter()
    try:
        pipeline(**arguments)
    except Exception as exc:  # kfp.local reports the failing task; say which and stop
        raise ShipyardError(f"pipeline failed: {exc}; the step's log is above") from None
    _report(settings, arguments, time.perf_counter() - began)


def _report(settings, arguments: dict, seconds: float) -> None:
    import mlflow
    from mlflow import MlflowClient

    from shipyard.training.registry import CHALLENGER, alias_version

    mlflow.set_tracking_uri(settings.url("mlflow"))
    client = MlflowClient()
    experiment = client.get_experiment_by_name("fraud-scoring")
    runs = client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1
    )
    gate = runs[0].data.tags.get("gate.reason", "no gate decision recorded") if runs else ""
    challenger = alias_version(client, arguments["model_name"], CHALLENGER)
    out.print(f"Pipeline finished in {seconds:.0f}s. {gate}")
    if runs and runs[0].data.tags.get("gate") == "refused":
        raise ShipyardError(f"the model was not registered: {gate}")
    if challenger is not None:
        aliases = ", ".join(challenger.aliases)
        out.print(f"{arguments['model_name']} v{challenger.version}: {aliases}")


def _submit(host: str, pipeline, arguments: dict) -> None:
    import kfp

    try:
        client = kfp.Client(host=host)
        run = client.create_run_from_pipeline_func(pipeline, arguments=arguments)
    except Exception as exc:
        raise ShipyardError(f"could not submit to {host}: {exc}") from None
    out.print(f"Submitted run {run.run_id} to {host}")
