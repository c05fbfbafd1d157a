"""The rollout loop's /metrics: the canary verdicts it holds and the registry's state, under the
names ``shipyard.observability.metrics`` fixes (the lifecycle and rollout alerts read them).

Registry series come from MLflow and are refreshed by the loop (``refresh``), never at scrape
time: a slow MLflow then delays a refresh, not Prometheus.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from shipyard.errors import ShipyardError
from shipyard.observability import metrics as m
from shipyard.rollout.state import Rollouts
from shipyard.training.tracking import MlflowRest

log = logging.getLogger(__name__)

PIPELINE = "training"  # the pipeline whose runs log to MLflow (pipelines/training.py)
EVALUATION_METRIC = "holdout.roc_auc"  # what the evaluate step logs for the candidate
# The whole run's wall time, logged by local runs (commands/pipeline.py); without it (a KFP
# cluster run) the MLflow run's own span stands in, train to register.
WALL_TIME_METRIC = "pipeline.wall_seconds"
# MLflow run states: a pipeline run is one MLflow training run (tagged pipeline_run_id).
FINISHED, FAILED_STATES = "FINISHED", ("FAILED", "KILLED")


@dataclass
class RegistrySnapshot:
    """What the last refresh read from MLflow."""

    ages: dict[tuple[str, str], float] = field(default_factory=dict)  # (model, alias) -> created s
    evaluation_auc: dict[tuple[str, str], float] = field(default_factory=dict)  # (model, version)
    runs: dict[str, int] = field(default_factory=dict)  # status -> count
    last_success: float | None = None
    last_duration: float | None = None  # seconds, of the last successful run


def read_registry(mlflow: MlflowRest) -> RegistrySnapshot:
    """Aliases, their versions' age and evaluation AUC, and pipeline runs by outcome."""
    snapshot = RegistrySnapshot()
    for registered in mlflow.registered_models():
        name = registered["name"]
        for alias in registered.get("aliases", []):
            version = mlflow.get_model_version(name, alias["version"])
            snapshot.ages[(name, alias["alias"])] = int(version["creation_timestamp"]) / 1000
            run_id = version.get("run_id")
            if run_id:
                metrics = mlflow.get_run(run_id)["data"].get("metrics", [])
                for metric in metrics:
                    if metric["key"] == EVALUATION_METRIC:
                        snapshot.evaluation_auc[(name, alias["version"])] = float(metric["value"])
    counts = {m.PIPELINE_SUCCEEDED: 0, m.PIPELINE_FAILED: 0}
    for run in mlflow.search_runs(list(mlflow.experiments()), "tags.pipeline_run_id LIKE '%'"):
        info = run["info"]
        if info["status"] == FINISHED:
            counts[m.PIPELINE_SUCCEEDED] += 1
            ended = int(info.get("end_time") or 0) / 1000
            if ended >= (snapshot.last_success or 0):
                snapshot.last_success = ended
                snapshot.last_duration = _wall_seconds(run)
        elif info["status"] in FAILED_STATES:
            counts[m.PIPELINE_FAILED] += 1
    snapshot.runs = counts
    return snapshot


def _wall_seconds(run: dict) -> float | None:
    for metric in run.get("data", {}).get("metrics", []):
        if metric["key"] == WALL_TIME_METRIC:
            return float(metric["value"])
    info = run["info"]
    if info.get("start_time") and info.get("end_time"):
        return (int(info["end_time"]) - int(info["start_time"])) / 1000
    return None


class LoopCollector:
    """Collects from the loop's latest view; registered once in the loop's registry."""

    def __init__(self) -> None:
        self.rollouts = Rollouts()
        self.registry_snapshot: RegistrySnapshot | None = None

    def refresh(self, mlflow: MlflowRest) -> None:
        try:
            self.registry_snapshot = read_registry(mlflow)
        except (ShipyardError, KeyError) as exc:
            log.warning("registry metrics not refreshed: %s", exc)

    def collect(self) -> Iterator[Metric]:
        failed = GaugeMetricFamily(
            m.CANARY_FAILED_CHECKS,
            "Failed analysis checks of the canary in the rollout in progress.",
            labels=list(m.EXPORTER_LABELS[m.CANARY_FAILED_CHECKS]),
        )
        for rollout in self.rollouts.rollouts.values():
            if rollout.active:
                failed.add_metric([rollout.model, rollout.canary], rollout.failures)
        yield failed
        snapshot = self.registry_snapshot
        if snapshot is None:
            return
        now = time.time()
        age = GaugeMetricFamily(
            m.MODEL_AGE,
            "Seconds since the version behind a registry alias was created.",
            labels=list(m.EXPORTER_LABELS[m.MODEL_AGE]),
        )
        for (model, alias), created in sorted(snapshot.ages.items()):
            age.add_metric([model, alias], max(now - created, 0.0))
        yield age
        auc = GaugeMetricFamily(
            m.MODEL_EVALUATION_AUC,
            "Holdout ROC-AUC the evaluate step measured for the version.",
            labels=list(m.EXPORTER_LABELS[m.MODEL_EVALUATION_AUC]),
        )
        for (model, version), value in sorted(snapshot.evaluation_auc.items()):
            auc.add_metric([model, version], value)
        yield auc
        runs = CounterMetricFamily(
            m.PIPELINE_RUNS.removesuffix("_total"),
            "Finished pipeline runs by outcome (MLflow training runs).",
            labels=list(m.EXPORTER_LABELS[m.PIPELINE_RUNS]),
        )
        for status, count in sorted(snapshot.runs.items()):
            runs.add_metric([PIPELINE, status], count)
        yield runs
        if snapshot.last_success is not None:
            last = GaugeMetricFamily(
                m.PIPELINE_LAST_SUCCESS,
                "Unix time of the pipeline's last successful run.",
                labels=list(m.EXPORTER_LABELS[m.PIPELINE_LAST_SUCCESS]),
            )
            last.add_metric([PIPELINE], snapshot.last_success)
            yield last
        if snapshot.last_duration is not None:
            took = GaugeMetricFamily(
                m.PIPELINE_LAST_DURATION,
                "Wall time of the pipeline's last successful run.",
                labels=list(m.EXPORTER_LABELS[m.PIPELINE_LAST_DURATION]),
            )
            took.add_metric([PIPELINE], snapshot.last_duration)
            yield took


def loop_registry(collector: LoopCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry
