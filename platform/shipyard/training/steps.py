"""The training pipeline's steps as plain functions over paths and values.

Each KFP component (``pipelines/components.py``) is a thin wrapper around one function here, so
every step runs, and is tested, without KFP. Steps are idempotent: re-running one with the same
inputs replaces its outputs atomically or finds the result it already produced.

Each step imports what it uses inside its function: a component runs one step in a fresh
process, where every import is paid again (Polars, LightGBM, MLflow, Feast cost up to seconds
each). Steps that only log to MLflow or change its registry use its REST API
(``shipyard.training.tracking``) instead of importing MLflow.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard import __version__
from shipyard.errors import ShipyardError
from shipyard.stack.layout import StateLayout

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from shipyard.settings import Settings

MODEL_FILE = "model.txt"
MODEL_URI_TAG = "shipyard.model_uri"
SLICE_COLUMNS = ("merchant_category", "channel")


def code_version() -> str:
    """The package version and, in a checkout, the commit: a model names the code it came from."""
    named = os.environ.get("SHIPYARD_CODE_VERSION")
    if named:
        return named
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        return f"{__version__}+{commit}"
    except (OSError, subprocess.SubprocessError):
        return __version__


# --- task exit -----------------------------------------------------------------------------


def exit_when_output_written() -> None:
    """Once KFP has written this task's output, end the process without the interpreter's
    teardown. Called first thing in every component.

    Why: on a loaded machine a native library's thread can abort the process during teardown
    (libstdc++ "terminate called without an active exception", seen after Arrow's dataset
    writer ran) *after* the step succeeded and its output was written, and the runner then
    reports a finished step as failed. The exit happens only when the output file named in
    ``--executor_input`` exists: a step that raised writes none and exits as usual, with its
    traceback and a non-zero code. Outside a KFP task this does nothing.
    """
    import atexit
    import json
    import os
    import sys

    try:
        raw = sys.argv[sys.argv.index("--executor_input") + 1]
        output = json.loads(raw)["outputs"]["outputFile"]
    except (ValueError, IndexError, KeyError, TypeError):
        return

    def leave() -> None:
        if os.path.exists(output):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    atexit.register(leave)


# --- ingest, validate, redact --------------------------------------------------------------


def ingest(raw: Path) -> dict:
    """Check the raw data set is complete and unchanged since it was written; its lineage."""
    from shipyard.data.manifest import content_digest, read_manifest

    manifest = read_manifest(raw)
    digest = content_digest(raw)
    if manifest.get("digest") != digest:
        raise ShipyardError(
            f"{raw} changed after it was written (digest {digest} != manifest "
            f"{manifest.get('digest')}): regenerate it or restore the original files"
        )
    return {"path": str(raw), "digest": digest, "rows": manifest.get("rows")}


def validate(settings: Settings, raw: Path, as_of: datetime) -> str:
    """The quality gate on the raw data; returns the report (markdown), raises if it fails."""
    from shipyard.data.prepare import check, load_raw

    frame, _, rows_in, redeliveries = load_raw(raw)
    report = check(settings, frame, f"raw data {raw}", as_of)
    return (
        f"# Data validation\n\n* raw rows: {rows_in:,}\n* redeliveries dropped: {redeliveries:,}\n"
        f"* validated as of: {as_of.isoformat()}\n* result: {report.summary()}\n"
    )


def redact(settings: Settings, raw: Path, out: Path, as_of: datetime) -> dict:
    """Validated raw data -> the clean data set in ``out`` (PII dropped or tokenized)."""
    from shipyard.data.prepare import prepare

    return prepare(settings, raw=raw, out=out, as_of=as_of).manifest


# --- features ------------------------------------------------------------------------------


def training_set(settings: Settings, clean: Path, service: str, out: Path) -> dict:
    """Feature tables from ``clean`` (into the feature store), then the point-in-time set."""
    from shipyard.features import store as feature_store
    from shipyard.features.job import build_feature_tables
    from shipyard.features.training import build_training_set

    layout = StateLayout(settings.state_dir)
    build_feature_tables(clean, layout.feature_tables)
    feature_store.apply(settings)
    result = build_training_set(
        feature_store.open_store(settings), service, clean, layout.feature_tables, out
    )
    return result.manifest


def load_training_set(folder: Path) -> tuple[pl.DataFrame, dict]:
    import polars as pl

    from shipyard.data.manifest import read_manifest

    return pl.read_parquet(folder / "data.parquet"), read_manifest(folder)


# --- train, evaluate, gate -----------------------------------------------------------------


def train(
    settings: Settings,
    training_dir: Path,
    params: dict,
    model_dir: Path,
    experiment: str,
    pipeline_run: str,
) -> str:
    """Train on the earlier part of the window; log params, model and lineage to MLflow.

    Returns the MLflow run id.
    """
    import polars as pl

    from shipyard.features.encoding import encode_frame, input_names
    from shipyard.training.model import HyperParameters, predict, time_split
    from shipyard.training.model import train as fit
    from shipyard.training.tracking import import_mlflow

    hyper = HyperParameters(**params)
    frame, manifest = load_training_set(training_dir)
    service = manifest["feature_service"]
    names = input_names(service)
    train_rows, _ = time_split(frame)
    x = encode_frame(train_rows, service)
    y = train_rows.get_column("is_fraud").to_numpy()
    booster = fit(x, y, names, hyper)
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_dir / MODEL_FILE))

    mlflow = import_mlflow()
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(settings.url("mlflow"))
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=f"train-{pipeline_run}") as run:
        mlflow.log_params(hyper.as_dict())
        mlflow.set_tags(
            {
                "feature_service": service,
                "dataset_digest": manifest["digest"],
                "clean_data_digest": str(manifest.get("clean_data_digest")),
                "pipeline_run_id": pipeline_run,
                "code_version": code_version(),
            }
        )
        mlflow.log_metrics({"train_rows": float(len(y)), "train_positives": float(y.sum())})
        example = pl.DataFrame(x[:5], schema=names, orient="row").to_pandas()
        info = mlflow.lightgbm.log_model(
            booster,
            name="model",
            signature=infer_signature(example, predict(booster, x[:5])),
            input_example=example,
            # Explicit requirements: inferring them costs seconds and guesses.
            pip_requirements=_pinned("lightgbm", "numpy", "pandas", "scikit-learn"),
        )
        # MLflow 3 keeps logged models apart from run artifacts: remember where this one is.
        mlflow.set_tag(MODEL_URI_TAG, info.model_uri)
        return run.info.run_id


def _pinned(*packages: str) -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in packages]


def evaluate(
    settings: Settings, training_dir: Path, model_dir: Path, run_id: str, model_name: str, out: Path
) -> dict:
    """Metrics, slices and plots of the candidate on the holdout, and of the champion on the same
    rows (with its own feature service); everything logged to the candidate's MLflow run."""
    import lightgbm as lgb
    import polars as pl

    from shipyard.features.encoding import encode_frame
    from shipyard.training.evaluation import evaluate as measure
    from shipyard.training.evaluation import plot
    from shipyard.training.model import predict, time_split
    from shipyard.training.tracking import MlflowRest

    frame, manifest = load_training_set(training_dir)
    _, holdout = time_split(frame)
    y = holdout.get_column("is_fraud").to_numpy()
    slices = {c: holdout.get_column(c).cast(pl.String).to_numpy() for c in SLICE_COLUMNS}
    booster = lgb.Booster(model_file=str(model_dir / MODEL_FILE))
    scores = predict(booster, encode_frame(holdout, manifest["feature_service"]))
    candidate = measure(y, scores, slices)
    champion, champion_version = _champion_evaluation(settings, model_name, holdout, y, slices)

    out.mkdir(parents=True, exist_ok=True)
    plots = plot(y, scores, out / "plots")
    result = {
        "candidate": candidate.as_dict(),
        "champion": champion.as_dict() if champion else None,
        "champion_version": champion_version,
        "holdout_rows": len(y),
    }
    (out / "evaluation.json").write_text(json.dumps(result, indent=2))
    # What `with mlflow.start_run(run_id=…)` + log_metrics/log_artifact/log_dict do, over REST.
    tracking = MlflowRest(settings.url("mlflow"))
    with tracking.resumed(run_id) as run:
        tracking.log_metrics(run, {f"holdout.{k}": v for k, v in candidate.flat_metrics().items()})
        for path in plots:
            tracking.log_artifact(run, path, artifact_path="plots")
        tracking.log_dict(run, result, "evaluation.json")
    return result


def _champion_evaluation(
    settings: Settings, model_name: str, holdout: pl.DataFrame, y: np.ndarray, slices: dict
) -> tuple[object | None, str | None]:
    """The champion's metrics on the same holdout rows, if there is a champion."""
    from shipyard.training.tracking import CHAMPION, MlflowRest

    version = MlflowRest(settings.url("mlflow")).model_version_by_alias(model_name, CHAMPION)
    if version is None:
        return None, None
    import numpy as np

    from shipyard.features import store as feature_store
    from shipyard.features.encoding import encode_frame
    from shipyard.features.training import CONTEXT_COLUMNS, LABEL, point_in_time_join, service_plan
    from shipyard.training.evaluation import evaluate as measure
    from shipyard.training.tracking import import_mlflow

    tags = {tag["key"]: tag["value"] for tag in version.get("tags", [])}
    service = tags.get("feature_service")
    if not service:
        raise ShipyardError(
            f"champion {model_name} v{version['version']} has no feature_service tag"
        )
    joins, on_demand = service_plan(feature_store.open_store(settings), service)
    rows = point_in_time_join(holdout.select(*CONTEXT_COLUMNS, LABEL), joins, on_demand)
    mlflow = import_mlflow()
    mlflow.set_tracking_uri(settings.url("mlflow"))
    model = mlflow.lightgbm.load_model(f"models:/{model_name}@{CHAMPION}")
    scores = np.asarray(model.predict(encode_frame(rows, service)), dtype=np.float64)
    return measure(y, scores, slices), version["version"]


def gate(evaluation: dict, policy: dict, run_id: str, settings: Settings) -> dict:
    """Judge the candidate against the champion; record the decision and reasons on the run."""
    from shipyard.training.evaluation import Evaluation, SliceMetrics
    from shipyard.training.gate import GatePolicy, judge
    from shipyard.training.tracking import MlflowRest

    def load(data: dict | None) -> Evaluation | None:
        if data is None:
            return None
        slices = {
            column: {value: SliceMetrics(**m) for value, m in values.items()}
            for column, values in data["slices"].items()
        }
        return Evaluation(**{**data, "slices": slices})

    decision = judge(
        load(evaluation["candidate"]), load(evaluation["champion"]), GatePolicy(**policy)
    )
    MlflowRest(settings.url("mlflow")).set_run_tags(
        run_id,
        {
            "gate": "passed" if decision.passed else "refused",
            "gate.reason": decision.summary()[:5000],
        },
    )
    return {"passed": decision.passed, "reasons": decision.reasons, "summary": decision.summary()}


# --- register, export, alias ---------------------------------------------------------------


def register(
    settings: Settings,
    run_id: str,
    model_name: str,
    owner: str,
    team: str,
    on_call: str,
    training_dir: Path,
    evaluation: dict,
    params: dict,
    pipeline_run: str,
) -> dict:
    """Register the run's model with owner, lineage and a model card; idempotent."""
    from shipyard.data.manifest import read_manifest
    from shipyard.training.model_card import model_card
    from shipyard.training.registry import Ownership, fingerprint
    from shipyard.training.registry import register as register_version
    from shipyard.training.tracking import MlflowRest, tags_of

    ownership = Ownership(owner, team, on_call)
    manifest = read_manifest(training_dir)  # the training set's manifest, not its rows
    code = code_version()
    print_ = fingerprint(manifest["digest"], manifest["feature_service"], params, code)
    card = model_card(model_name, ownership, manifest, evaluation, params, code)
    rest = MlflowRest(settings.url("mlflow"))
    try:
        run = rest.get_run(run_id)
    except KeyError:
        raise ShipyardError(f"MLflow run {run_id} is gone: re-run the train step") from None
    rest.log_text(run, card, "model_card.md")
    lineage = {
        "dataset_digest": manifest["digest"],
        "clean_data_digest": str(manifest.get("clean_data_digest")),
        "feature_service": manifest["feature_service"],
        "pipeline_run_id": pipeline_run,
        "code_version": code,
        "data_window": " .. ".join(manifest["event_time_range"]),
    }
    model_uri = tags_of(run["data"]).get(MODEL_URI_TAG)
    if not model_uri:
        raise ShipyardError(f"MLflow run {run_id} logged no model: re-run the train step")
    version, created = register_version(
        rest,
        model_name,
        model_uri,
        run_id,
        ownership,
        lineage,
        print_,
        description=card.splitlines()[0].lstrip("# "),
    )
    return {"version": version["version"], "created": created, "fingerprint": print_}


def export(
    settings: Settings, model_name: str, version: str, model_dir: Path, training_dir: Path
) -> dict:
    """ONNX with a parity check on the holdout, into Triton's repository and MLflow."""
    import lightgbm as lgb

    from shipyard.features.encoding import encode_frame, input_names
    from shipyard.observability.drift import REFERENCE_FILE, reference_from
    from shipyard.training.export import (
        EXPLAINER_FILE,
        check_parity,
        to_onnx,
        write_triton_entry,
    )
    from shipyard.training.model import predict, time_split
    from shipyard.training.tracking import MlflowRest

    frame, manifest = load_training_set(training_dir)
    service = manifest["feature_service"]
    _, holdout = time_split(frame)
    x = encode_frame(holdout, service)
    booster = lgb.Booster(model_file=str(model_dir / MODEL_FILE))
    onnx_model = to_onnx(booster, len(input_names(service)))
    native = predict(booster, x)
    difference = check_parity(onnx_model, native, x)
    # The drift monitor's baseline: inputs and scores of the most recent labelled rows.
    reference = reference_from(x, input_names(service), native).to_json()
    layout = StateLayout(settings.state_dir)
    entry = write_triton_entry(
        layout.triton_models,
        model_name,
        int(version),
        onnx_model,
        len(input_names(service)),
        extra_files={
            REFERENCE_FILE: reference.encode(),
            EXPLAINER_FILE: (model_dir / MODEL_FILE).read_bytes(),
        },
    )
    tracking = MlflowRest(settings.url("mlflow"))
    run = tracking.get_run(tracking.get_model_version(model_name, version)["run_id"])
    tracking.log_text(run, json.dumps(input_names(service)), "onnx/inputs.json")
    tracking.log_text(run, reference, f"monitoring/{REFERENCE_FILE}")
    (model_dir / "model.onnx").write_bytes(onnx_model)
    tracking.log_artifact(run, model_dir / "model.onnx", "onnx")
    tracking.set_model_version_tag(
        model_name, version, "onnx_parity_max_abs_diff", f"{difference:.3e}"
    )
    return {"triton_entry": str(entry.path), "version": entry.version, "parity": difference}


def mark_challenger(settings: Settings, model_name: str, version: str) -> dict:
    """Point ``challenger`` at ``version``; with no champion yet (bootstrap), it is champion too."""
    from shipyard.training.tracking import CHALLENGER, CHAMPION, MlflowRest

    tracking = MlflowRest(settings.url("mlflow"))
    tracking.set_alias(model_name, CHALLENGER, version)
    aliases = [CHALLENGER]
    if tracking.alias_version(model_name, CHAMPION) is None:
        tracking.set_alias(model_name, CHAMPION, version)
        aliases.append(CHAMPION)
    return {"version": version, "aliases": aliases}
