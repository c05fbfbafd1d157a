"""The pipeline steps' MLflow access without importing MLflow (``shipyard.training.tracking``):
the REST client sends what MLflow's client sends for the same calls, and ``import_mlflow``
leaves out only Feast's inert request-header plugin."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from shipyard.errors import ShipyardError
from shipyard.training.tracking import MlflowRest

URL = "http://127.0.0.1:5000"
RUN = {
    "info": {
        "run_id": "r1",
        "experiment_id": "1",
        "artifact_uri": "mlflow-artifacts:/1/r1/artifacts",
        "end_time": 123,
        "lifecycle_stage": "active",
    },
    "data": {"tags": [{"key": "shipyard.model_uri", "value": "models:/m-1"}]},
    "outputs": {"model_outputs": [{"model_id": "m-1", "step": 0}]},
}


class Recorder:
    """Stands in for ``urllib.request.urlopen``: records requests, answers like the server."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bytes | None]] = []

    def __call__(self, request: urllib.request.Request, timeout: float) -> Recorder:
        self.calls.append((request.get_method(), request.full_url, request.data))
        self.body = json.dumps({"run": RUN} if "/runs/get" in request.full_url else {}).encode()
        return self

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def read(self) -> bytes:
        return self.body


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(urllib.request, "urlopen", recorder)
    return recorder


def test_resumed_run_logs_like_mlflow_start_run(server: Recorder, tmp_path: Path) -> None:
    plot = tmp_path / "roc.png"
    plot.write_bytes(b"\x89PNG")
    rest = MlflowRest(URL)
    before = int(time.time() * 1000)
    with rest.resumed("r1") as run:
        rest.log_metrics(run, {"holdout.roc_auc": 0.9})
        rest.log_artifact(run, plot, artifact_path="plots")
        rest.log_dict(run, {"candidate": {"roc_auc": 0.9}}, "evaluation.json")
    api, artifacts = f"{URL}/api/2.0/mlflow", f"{URL}/api/2.0/mlflow-artifacts/artifacts/1/r1"
    methods_urls = [(method, url) for method, url, _ in server.calls]
    assert methods_urls == [
        ("GET", f"{api}/runs/get?run_id=r1"),
        ("POST", f"{api}/runs/update"),
        ("GET", f"{api}/runs/get?run_id=r1"),
        ("POST", f"{api}/runs/log-batch"),
        ("PUT", f"{artifacts}/artifacts/plots/roc.png"),
        ("PUT", f"{artifacts}/artifacts/evaluation.json"),
        ("POST", f"{api}/runs/update"),
    ]
    bodies = [data for _, _, data in server.calls]
    # RUNNING keeping the previous end time, as mlflow.start_run(run_id=...) does.
    assert json.loads(bodies[1]) == {
        "run_id": "r1",
        "run_uuid": "r1",
        "status": "RUNNING",
        "end_time": 123,
    }
    # Metrics at step 0 are attributed to the model the run logged at step 0, as in MLflow 3.
    (metric,) = json.loads(bodies[3])["metrics"]
    assert metric.pop("timestamp") >= before
    assert metric == {
        "key": "holdout.roc_auc",
        "value": 0.9,
        "step": 0,
        "run_id": "r1",
        "model_id": "m-1",
    }
    assert bodies[4] == b"\x89PNG"
    # MlflowClient.log_dict's serialization.
    assert bodies[5] == json.dumps({"candidate": {"roc_auc": 0.9}}, indent=2).encode()
    finished = json.loads(bodies[6])
    assert finished["status"] == "FINISHED" and finished["end_time"] >= before


def test_a_failure_inside_a_resumed_run_marks_it_failed(server: Recorder) -> None:
    with pytest.raises(RuntimeError), MlflowRest(URL).resumed("r1"):
        raise RuntimeError("boom")
    assert json.loads(server.calls[-1][2])["status"] == "FAILED"


def test_resuming_a_missing_run_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(self: MlflowRest, run_id: str) -> dict:
        raise KeyError(run_id)

    monkeypatch.setattr(MlflowRest, "get_run", missing)
    with pytest.raises(ShipyardError, match="re-run the train step"), MlflowRest(URL).resumed("x"):
        pass


def test_artifact_urls_resolve_like_mlflow() -> None:
    from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository

    for base in ("http://127.0.0.1:5000", "http://127.0.0.1:5000/", "https://ml.example/mlflow"):
        for uri in ("mlflow-artifacts:/1/r1/artifacts", "mlflow-artifacts://other:9/1/r/artifacts"):
            expected = MlflowArtifactsRepository.resolve_uri(uri, base.rstrip("/"))
            assert MlflowRest(base)._artifact_url(uri) == expected
    # Not proxied by the server: the step hands the upload to MLflow's own client.
    for uri in ("s3://bucket/1/r1/artifacts", "/srv/mlflow/1/r1/artifacts", "file:///srv/x"):
        assert MlflowRest(URL)._artifact_url(uri) is None


def test_import_mlflow_leaves_out_only_feasts_inert_header_plugin() -> None:
    script = """
import json, sys
from shipyard.training.tracking import import_mlflow
import_mlflow()
from mlflow.tracking.request_header.registry import _request_header_provider_registry
providers = [type(p).__name__ for p in _request_header_provider_registry]
feast_imported = "feast" in sys.modules
# Why leaving it out changes nothing: outside Feast's own token scope it adds no header.
from feast.infra.data_sources.mlflow.auth import FeastMLflowHeaderProvider
print(json.dumps([providers, feast_imported, FeastMLflowHeaderProvider().in_context()]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    providers, feast_imported, in_context = json.loads(done.stdout.strip().splitlines()[-1])
    assert not feast_imported
    assert "FeastMLflowHeaderProvider" not in providers
    assert {"DatabricksRequestHeaderProvider", "DefaultRequestHeaderProvider"} <= set(providers)
    assert in_context is False
