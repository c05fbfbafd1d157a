"""The training pipeline end to end through `shipyard pipeline run training --local`, against
the real embedded stack (MLflow, Triton) and real Feast: a champion is registered with owner,
lineage and model card; Triton serves the exported version with the native model's scores; the
same inputs never make a second version; a worse model is refused by the gate; a model without
an owner is refused before any work."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shipyard.data.offline_source import write_offline_source
from shipyard.data.synthetic import SyntheticConfig, generate
from shipyard.settings import Settings
from shipyard.stack import control
from shipyard.stack.layout import StateLayout
from shipyard.stack.state import stack_processes
from shipyard.stack.supervisor import inherited_env
from tests.conftest import isolated_settings
from tests.e2e.test_platform_cli import shipyard

MODEL = "fraud-scoring"
OWNER = ["--owner", "alice", "--team", "fraud-risk", "--on-call", "fraud-oncall"]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dict]]:
    settings = isolated_settings(tmp_path_factory.mktemp("pipeline") / "state")
    control.up(settings)
    try:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        config = SyntheticConfig(
            rows=20_000, start=today - timedelta(days=10), days=10, seed=3, late_fraction=0.01
        )
        write_offline_source(generate(config), config, StateLayout(settings.state_dir).raw_data)
        yield settings, {**inherited_env(), **settings.to_env()}
    finally:
        control.down(settings)
    assert stack_processes(settings.state_dir) == []


def versions(settings: Settings) -> list:
    from mlflow import MlflowClient

    return MlflowClient(settings.url("mlflow")).search_model_versions(f"name = '{MODEL}'")


@pytest.mark.slow
@pytest.mark.timeout(900)  # three pipeline runs of ~90 s each, more on a loaded machine
def test_training_pipeline_end_to_end(platform: tuple[Settings, dict]) -> None:
    settings, env = platform

    refused = shipyard(env, "pipeline", "run", "training", "--local", "--team", "fraud-risk")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "needs an owner and a team" in refused.stderr

    first = shipyard(env, "pipeline", "run", "training", "--local", *OWNER, "--n-estimators", "60")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert f"{MODEL} v1: " in first.stdout and "champion" in first.stdout
    (version,) = versions(settings)
    _check_registration(settings, version)
    _check_triton_serves_it(settings, version)

    again = shipyard(env, "pipeline", "run", "training", "--local", *OWNER, "--n-estimators", "60")
    assert again.returncode == 0, again.stdout[-3000:]
    assert "already registered (same inputs)" in again.stdout
    assert len(versions(settings)) == 1

    worse = shipyard(
        env,
        "pipeline",
        "run",
        "training",
        "--local",
        *OWNER,
        "--n-estimators",
        "1",
        "--num-leaves",
        "2",
        "--min-child-samples",
        "5000",
    )
    assert worse.returncode == 1
    assert "the model was not registered: gate refused: ROC-AUC" in worse.stderr
    assert "below the champion's" in worse.stderr
    assert len(versions(settings)) == 1


def _check_registration(settings: Settings, version: object) -> None:
    from mlflow import MlflowClient

    tags = version.tags
    assert tags["owner"] == "alice" and tags["team"] == "fraud-risk"
    assert tags["on_call"] == "fraud-oncall"
    assert tags["feature_service"] == "fraud_scoring_v2"
    assert tags["dataset_digest"].startswith("sha256:")
    assert tags["pipeline_run_id"] and tags["code_version"]
    assert tags["shipyard.complete"] == "true"
    assert float(tags["onnx_parity_max_abs_diff"]) <= 1e-5
    client = MlflowClient(settings.url("mlflow"))
    artifacts = {a.path for a in client.list_artifacts(version.run_id)}
    # MLflow 3 keeps the logged model itself as a LoggedModel (models:/…), not a run artifact.
    assert {"model_card.md", "evaluation.json", "plots", "onnx"} <= artifacts
    card = Path(client.download_artifacts(version.run_id, "model_card.md")).read_text()
    assert "owner: alice" in card and "## Intended use" in card and "## Limits" in card
    plots = {Path(a.path).name for a in client.list_artifacts(version.run_id, "plots")}
    assert plots == {"roc.png", "precision_recall.png", "calibration.png"}
    assert client.get_model_version_by_alias(MODEL, "champion").version == version.version
    assert client.get_model_version_by_alias(MODEL, "challenger").version == version.version
    # The run's cost, measured from the CPU time of its tasks, is on the MLflow run.
    metrics = client.get_run(version.run_id).data.metrics
    assert metrics["pipeline.cpu_seconds"] > 1 and metrics["pipeline.cost_usd"] > 0
    assert 0 < metrics["pipeline.wall_seconds"] < 3600


def _check_triton_serves_it(settings: Settings, version: object) -> None:
    import mlflow
    import tritonclient.http as triton

    from shipyard.features.encoding import encode_frame
    from shipyard.training.model import time_split

    layout = StateLayout(settings.state_dir)
    # The holdout the export checked parity on: the pipeline's training set artifact.
    sets = sorted((layout.root / "pipelines").rglob("training-set/training/data.parquet"))
    frame = pl.read_parquet(sets[-1])
    _, holdout = time_split(frame)
    x = encode_frame(holdout.head(200), "fraud_scoring_v2")
    mlflow.set_tracking_uri(settings.url("mlflow"))
    native = mlflow.lightgbm.load_model(f"models:/{MODEL}/{version.version}").predict(x)

    client = triton.InferenceServerClient(f"127.0.0.1:{settings.ports.triton_http}")
    client.load_model(MODEL)
    assert client.is_model_ready(MODEL, str(version.version))
    request = triton.InferInput("input", list(x.shape), "FP32")
    request.set_data_from_numpy(x)
    result = client.infer(MODEL, [request], model_version=str(version.version))
    served = result.as_numpy("probability")[:, 0]
    assert np.max(np.abs(served - native)) <= 1e-5


def test_submission_to_an_unreachable_cluster_fails_clearly(tmp_path: Path) -> None:
    env = {**inherited_env(), **isolated_settings(tmp_path / "state").to_env()}
    result = shipyard(
        env, "pipeline", "run", "training", "--host", "http://127.0.0.1:9", *OWNER, timeout_s=120
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "could not submit to http://127.0.0.1:9" in result.stderr
    both = shipyard(env, "pipeline", "run", "training", *OWNER)
    assert both.returncode == 2 and "choose where to run" in both.stderr
