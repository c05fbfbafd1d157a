"""KFP components of the training pipeline: thin wrappers over ``shipyard.training.steps``.

(No ``from __future__ import annotations`` here: KFP reads the annotations as real types.)

Each component imports what it needs inside its body (KFP ships the function's source, not its
module) and reads the settings from the ``SHIPYARD_*`` environment, so the same component runs
under ``kfp.local`` on this machine and in the pinned image on a cluster.
"""

import functools

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

# The image every step runs in on a cluster: Shipyard and its locked dependencies
# (`make image`, tagged with the package version). Pinned: a moving default would change
# what a pipeline run means.
IMAGE = "ghcr.io/shipyard-mlops/shipyard:0.1.0"

# IMAGE has the locked kfp installed (requirements.lock), as has the local environment, so no
# task starts with KFP's default `pip install kfp==<version>`: a no-op there, ~0.5 s per task.
component = functools.partial(dsl.component, base_image=IMAGE, install_kfp_package=False)


@component
def ingest(raw: Input[Dataset]) -> str:
    """Check the raw data set is complete and unchanged; returns its digest."""
    from pathlib import Path

    from shipyard.training import steps

    steps.exit_when_output_written()

    lineage = steps.ingest(Path(raw.path))
    raw.metadata.update(lineage)
    print(f"raw data {lineage['path']}: {lineage['rows']:,} rows, {lineage['digest']}")
    return lineage["digest"]


@component
def validate(raw: Input[Dataset], as_of: str, report: Output[Markdown]):
    """The quality gate: fails the run, naming column, rule and count, on bad data."""
    from datetime import UTC, datetime
    from pathlib import Path

    from shipyard.settings import load_settings
    from shipyard.training import steps

    steps.exit_when_output_written()

    when = datetime.fromisoformat(as_of) if as_of else datetime.now(UTC)
    text = steps.validate(load_settings(), Path(raw.path), when)
    Path(report.path).write_text(text)
    print(text)


@component
def redact(raw: Input[Dataset], as_of: str, clean: Output[Dataset]):
    """Drop redeliveries and redact PII: nothing downstream ever sees raw PII."""
    from datetime import UTC, datetime
    from pathlib import Path

    from shipyard.settings import load_settings
    from shipyard.training import steps

    steps.exit_when_output_written()

    when = datetime.fromisoformat(as_of) if as_of else datetime.now(UTC)
    manifest = steps.redact(load_settings(), Path(raw.path), Path(clean.path), when)
    clean.metadata.update({"rows": manifest["rows"], "digest": manifest["digest"]})
    print(f"clean data: {manifest['rows']:,} rows, PII policy {manifest['pii_policy']}")


@component
def training_set(clean: Input[Dataset], feature_service: str, training: Output[Dataset]):
    """Feature tables into the feature store, then a point-in-time correct training set."""
    from pathlib import Path

    from shipyard.settings import load_settings
    from shipyard.training import steps

    steps.exit_when_output_written()

    manifest = steps.training_set(
        load_settings(), Path(clean.path), feature_service, Path(training.path)
    )
    training.metadata.update(
        {"rows": manifest["rows"], "digest": manifest["digest"], "feature_service": feature_service}
    )
    print(f"training set: {manifest['rows']:,} rows, {manifest['positives']:,} positive")


@component
def train(
    training: Input[Dataset],
    n_estimators: int,
    learning_rate: float,
    num_leaves: int,
    min_child_samples: int,
    experiment: str,
    pipeline_run: str,
    model: Output[Model],
) -> str:
    """LightGBM on the earlier part of the window; returns the MLflow run id."""
    from pathlib import Path

    from shipyard.settings import load_settings
    from shipyard.training import steps

    steps.exit_when_output_written()

    params = {
        "n_estimators": n_estimators,
        "learning_rate": learning_rate,
        "num_leaves": num_leaves,
        "min_child_samples": min_child_samples,
    }
    run_id = steps.train(
        load_settings(), Path(training.path), params, Path(model.path), experiment, pipeline_run
    )
    model.metadata.update({"mlflow_run_id": run_id, **params})
    print(f"trained; MLflow run {run_id}")
    return run_id


@component
def evaluate(
    training: Input[Dataset],
    model: Input[Model],
    run_id: str,
    model_name: str,
    evaluation: Output[Artifact],
) -> str:
    """Holdout metrics, slices and plots for the candidate and the champion; JSON out."""
    import json
    from pathlib import Path

    from shipyard.settings import load_settings
    from shipyard.training import steps

    steps.exit_when_output_written()

    result = steps.evaluate(
        load_settings(),
        Path(training.path),
        Path(model.path),
        run_id,
        model_name,
        Path(evaluation.path),
    )
    candidate = result["candidate"]
    print(f"candidate ROC-AUC {candidate['roc_auc']:.4f}, PR-AUC {candidate['pr_auc']:.4f}")
    if result["champion"]:
        print(f"champion v{result['champion_version']} ROC-AUC {result['champion']['roc_auc']:.4f}")
    return json.dumps(result)


@component
def gate(
    evaluation: str,
    max_auc_drop: float,
    min_slice_auc: float,
    max_slice_auc_drop: float,
    run_id: str,
) -> str:
    """'passed' or 'refused'; the reasons are printed and logged to the MLflow run."""
    import json

    from shipyard.settings import load_settings
    from shipyard.training import steps

    steps.exit_when_output_written()

    policy = {
        "max_auc_drop": max_auc_drop,
        "min_slice_auc": min_slice_auc,
        "max_slice_auc_drop": max_slice_auc_drop,
    }
    decision = steps.gate(json.loads(evaluation), policy, run_id, load_settings())
    print(decision["summary"])
    return "passed" if decision["passed"] else "refused"


@component
def register(
    run_id: str,
    model_name: str,
    owner: str,
    team: str,
    on_call: str,
    training: Input[Dataset],
    evaluation: str,
    n_estimators: int,
    learning_rate: float,
    num_leaves: int,
    min_child_samples: int,
    pipeline_run: str,
) -> str:
    """Register in MLflow with owner, lineage and model card; returns the version."""
    import json
    from pathlib import Path

    from shipyard.settings import load_settings
    from shipyard.training import steps

    steps.exit_when_output_written()

    params = {
        "n_estimators": n_estimators,
        "learning_rate": learning_rate,
        "num_leaves": num_leaves,
        "min_child_samples": min_child_samples,
    }
    result = steps.register(
        load_settings(),
        run_id,
        model_name,
        owner,
        team,
        on_call,
        Path(training.path),
        json.loads(evaluation),
        params,
        pipeline_run,
    )
    verb = "registered" if result["created"] else "already registered (same inputs)"
    print(f"{model_name} v{result['version']} {verb}")
    return str(result["version"])


@component
def export(model_name: str, version: str, model: Input[Model], training: Input[Dataset]) -> str:
    """ONNX (parity checked on the holdout) and the Triton repository entry."""
    from pathlib import Path

    from shipyard.settings import load_settings
    from shipyard.training import steps

    steps.exit_when_output_written()

    result = steps.export(
        load_settings(), model_name, version, Path(model.path), Path(training.path)
    )
    print(f"exported v{version} to {result['triton_entry']} (parity {result['parity']:.1e})")
    return result["triton_entry"]


@component
def mark_challenger(model_name: str, version: str, exported: str) -> str:
    """Alias the version ``challenger`` (and ``champion`` when there is none yet)."""
    from shipyard.settings import load_settings
    from shipyard.training import steps

    steps.exit_when_output_written()

    result = steps.mark_challenger(load_settings(), model_name, version)
    print(f"{model_name} v{version}: {', '.join(result['aliases'])}")
    return ",".join(result["aliases"])
