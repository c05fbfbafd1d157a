"""Every Prometheus metric name Shipyard exports, in one place.

Dashboards, recording rules and alerts refer to these names; change one here and the
generators that render dashboards and rules follow.

The gateway may run several uvicorn workers: with ``PROMETHEUS_MULTIPROC_DIR`` set (the stack
sets it, emptied, before every start) prometheus-client keeps values in files shared by the
workers and ``/metrics`` sums them. Gauges therefore name how workers combine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.metrics import MetricWrapperBase

NAMESPACE = "shipyard"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

GATEWAY_BUILD_INFO = f"{NAMESPACE}_gateway_build_info"
REQUESTS = f"{NAMESPACE}_gateway_requests_total"
REQUEST_DURATION = f"{NAMESPACE}_gateway_request_duration_seconds"
PREDICTIONS = f"{NAMESPACE}_gateway_predictions_total"
PREDICTION_SCORE = f"{NAMESPACE}_gateway_prediction_score"
FEATURE_DURATION = f"{NAMESPACE}_gateway_feature_lookup_duration_seconds"
FEATURE_ERRORS = f"{NAMESPACE}_gateway_feature_lookup_errors_total"
BACKEND_DURATION = f"{NAMESPACE}_gateway_backend_duration_seconds"
BACKEND_ERRORS = f"{NAMESPACE}_gateway_backend_errors_total"
FALLBACKS = f"{NAMESPACE}_gateway_fallbacks_total"
CIRCUIT_STATE = f"{NAMESPACE}_gateway_circuit_state"
CIRCUIT_TRANSITIONS = f"{NAMESPACE}_gateway_circuit_transitions_total"
IN_FLIGHT = f"{NAMESPACE}_gateway_in_flight"
REJECTED = f"{NAMESPACE}_gateway_rejected_total"
AUDIT_RECORDS = f"{NAMESPACE}_gateway_audit_records_total"
AUDIT_ERRORS = f"{NAMESPACE}_gateway_audit_write_errors_total"
AUDIT_SYNC_DURATION = f"{NAMESPACE}_gateway_audit_sync_duration_seconds"
ROUTING_RELOADS = f"{NAMESPACE}_gateway_routing_reloads_total"
CANARY_WEIGHT = f"{NAMESPACE}_gateway_canary_weight_percent"
DRIFT_WINDOW_ROWS = f"{NAMESPACE}_gateway_drift_window_rows"
ONLINE_PRECISION = f"{NAMESPACE}_gateway_online_precision"
LABELLED_PREDICTIONS = f"{NAMESPACE}_gateway_labelled_predictions"

# Circuit-breaker states as gauge values (alerts compare against these).
CIRCUIT_CLOSED, CIRCUIT_HALF_OPEN, CIRCUIT_OPEN = 0, 1, 2

# Sub-millisecond resolution where the gateway's own work lives, up to the slowest timeout.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5,
)  # fmt: skip
# Twenty equal bins of [0, 1]: the score histogram is what PSI and canary analysis read.
SCORE_BUCKETS = tuple(round(i / 20, 2) for i in range(1, 21))


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def collecting_registry(path: str) -> CollectorRegistry:
    """A registry that sums every worker's metric files in ``path``."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return registry


def _monitoring_gauges(registry: CollectorRegistry) -> dict[str, Gauge]:
    """The drift monitor's gauges (serving.monitoring). Each worker judges its own share of the
    traffic; across workers the highest value is the one alerts see."""
    version = ["model", "version"]

    def gauge(name: str, text: str, labels: list[str]) -> Gauge:
        return Gauge(name, text, labels, registry=registry, multiprocess_mode="livemax")

    return {
        "feature_psi": gauge(
            FEATURE_PSI, "PSI of a feature's live distribution vs its reference.",
            [*version, "feature"],
        ),
        "score_psi": gauge(SCORE_PSI, "PSI of the served scores vs the reference.", version),
        "drift_window_rows": gauge(
            DRIFT_WINDOW_ROWS, "Predictions in the drift window (PSI is NaN below 100).", version
        ),
        "online_auc": gauge(
            ONLINE_AUC, "Rolling ROC-AUC of predictions whose label arrived.", version
        ),
        "online_precision": gauge(
            ONLINE_PRECISION, "Rolling precision at the 0.5 decision threshold.", version
        ),
        "labelled_predictions": gauge(
            LABELLED_PREDICTIONS, "Labelled predictions in the quality window.", version
        ),
    }  # fmt: skip


@dataclass
class GatewayMetrics:
    """The gateway's collectors. Label values are bounded: model and version come from the
    routing table, backends and reasons from fixed sets, never from request payloads."""

    registry: CollectorRegistry
    build_info: Gauge
    requests: Counter
    request_duration: Histogram
    predictions: Counter
    prediction_score: Histogram
    feature_duration: Histogram
    feature_errors: Counter
    backend_duration: Histogram
    backend_errors: Counter
    fallbacks: Counter
    circuit_state: Gauge
    circuit_transitions: Counter
    in_flight: Gauge
    rejected: Counter
    audit_records: Counter
    audit_errors: Counter
    audit_sync_duration: Histogram
    routing_reloads: Counter
    canary_weight: Gauge
    feature_psi: Gauge
    score_psi: Gauge
    drift_window_rows: Gauge
    online_auc: Gauge
    online_precision: Gauge
    labelled_predictions: Gauge
    # Decided once, at creation: importing Feast later sets PROMETHEUS_MULTIPROC_DIR for its
    # own use, and reading the variable at scrape time would then serve an empty page.
    multiprocess_path: str | None = None
    _children: dict[tuple[MetricWrapperBase, tuple[str, ...]], Any] = field(
        default_factory=dict, repr=False
    )

    def child(self, metric: MetricWrapperBase, *values: str) -> Any:
        """``metric.labels(*values)``, remembered. On the request path: prometheus-client
        checks and converts label values on every ``labels()`` call (about 2 µs, several calls
        per request). ``values`` are strings, in the metric's label order."""
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    @classmethod
    def create(cls, version: str, profile: str) -> GatewayMetrics:
        """Collectors for one gateway process (in multiprocess mode, values land in files)."""
        # Collectors register here; in multiprocess mode /metrics reads the files instead.
        registry = CollectorRegistry()
        route = ["model", "version", "route", "backend"]
        metrics = cls(
            registry=registry,
            build_info=Gauge(
                GATEWAY_BUILD_INFO,
                "Always 1; labels carry the gateway's version and online-store profile.",
                ["version", "profile"],
                registry=registry,
                multiprocess_mode="max",
            ),
            requests=Counter(
                REQUESTS,
                "Predict requests answered, by what served them and the HTTP status.",
                [*route, "status"],
                registry=registry,
            ),
            request_duration=Histogram(
                REQUEST_DURATION,
                "Predict request latency inside the gateway, seconds.",
                [*route, "status"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            predictions=Counter(
                PREDICTIONS,
                "Predictions served (one per instance), each with one audit record.",
                route,
                registry=registry,
            ),
            prediction_score=Histogram(
                PREDICTION_SCORE,
                "Scores served, per model version (drift and canary analysis read it).",
                ["model", "version", "route"],
                buckets=SCORE_BUCKETS,
                registry=registry,
            ),
            feature_duration=Histogram(
                FEATURE_DURATION,
                "Online feature-store read latency, seconds.",
                ["store"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            feature_errors=Counter(
                FEATURE_ERRORS,
                "Online feature-store reads that failed.",
                ["store"],
                registry=registry,
            ),
            backend_duration=Histogram(
                BACKEND_DURATION,
                "Model backend call latency, seconds, by backend that answered.",
                ["backend", "model", "version"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            backend_errors=Counter(
                BACKEND_ERRORS,
                "Model backend calls that failed, by backend and reason.",
                ["backend", "reason"],
                registry=registry,
            ),
            fallbacks=Counter(
                FALLBACKS,
                "Calls that moved on from a backend to the next one in the chain.",
                ["model", "from_backend", "to_backend"],
                registry=registry,
            ),
            circuit_state=Gauge(
                CIRCUIT_STATE,
                "Circuit breaker per backend: 0 closed, 1 half-open, 2 open (worst worker).",
                ["backend"],
                registry=registry,
                multiprocess_mode="livemax",
            ),
            circuit_transitions=Counter(
                CIRCUIT_TRANSITIONS,
                "Circuit breaker state changes, by backend and new state.",
                ["backend", "state"],
                registry=registry,
            ),
            in_flight=Gauge(
                IN_FLIGHT,
                "Predict requests in progress.",
                registry=registry,
                multiprocess_mode="livesum",
            ),
            rejected=Counter(
                REJECTED,
                "Requests refused before any work: overload, too large, unauthorized.",
                ["reason"],
                registry=registry,
            ),
            audit_records=Counter(AUDIT_RECORDS, "Audit records written.", registry=registry),
            audit_errors=Counter(
                AUDIT_ERRORS,
                "Audit writes or syncs that failed (the request was refused).",
                registry=registry,
            ),
            audit_sync_duration=Histogram(
                AUDIT_SYNC_DURATION,
                "Group-commit fdatasync latency of the audit log, seconds.",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            routing_reloads=Counter(
                ROUTING_RELOADS,
                "Routing file reloads, by result (applied, rejected).",
                ["result"],
                registry=registry,
            ),
            canary_weight=Gauge(
                CANARY_WEIGHT,
                "Canary weight in effect, percent, per model and canary version.",
                ["model", "version"],
                registry=registry,
                multiprocess_mode="livemax",
            ),
            **_monitoring_gauges(registry),
        )
        metrics.multiprocess_path = multiprocess_dir()
        metrics.build_info.labels(version=version, profile=profile).set(1)
        for backend in ("triton-primary", "triton-cpu", "in-process"):
            metrics.circuit_state.labels(backend=backend).set(CIRCUIT_CLOSED)
        return metrics

    def exposition_registry(self) -> CollectorRegistry:
        if self.multiprocess_path is None:
            return self.registry
        return collecting_registry(self.multiprocess_path)


# -------------------------------------------------------------------------------------------
# Series exported by the drift monitor / rollout analysis / registry exporter / pipeline
# runner — see issues 6 and 7. Named here ahead of their exporters because the rules
# (shipyard.observability.rules) already alert on them: an exporter must use exactly these names
# and labels. An exporter leaves a series out (or NaN) while its window holds too little data
# to judge, so that no alert fires on an empty window.

# Gauge: population stability index of one feature's live distribution (the drift monitor's
# rolling window, per model version) against the reference binned at training time.
FEATURE_PSI = f"{NAMESPACE}_gateway_feature_psi"
# Gauge: the same for the served score (the 20 SCORE_BUCKETS bins) — prediction drift.
SCORE_PSI = f"{NAMESPACE}_gateway_score_psi"
# Gauge: rolling AUC over predictions whose true label arrived through POST /v1/feedback.
ONLINE_AUC = f"{NAMESPACE}_gateway_online_auc"
# Gauge: holdout AUC the evaluate step measured for the version (registry exporter); the
# baseline an online quality drop is measured against.
MODEL_EVALUATION_AUC = f"{NAMESPACE}_model_evaluation_auc"
# Gauge: failed analysis checks of the canary in the rollout in progress; the series is
# removed when the rollout ends (promoted or rolled back).
CANARY_FAILED_CHECKS = f"{NAMESPACE}_rollout_canary_failed_checks"
# Gauge: seconds since the version behind a registry alias (champion, challenger) was created.
MODEL_AGE = f"{NAMESPACE}_model_age_seconds"
# Counter: finished pipeline runs by status; both statuses start at 0 for every pipeline so
# that the first failure shows in increase().
PIPELINE_RUNS = f"{NAMESPACE}_pipeline_runs_total"
# Gauge: Unix time of the pipeline's last successful run.
PIPELINE_LAST_SUCCESS = f"{NAMESPACE}_pipeline_last_success_timestamp_seconds"
# Gauge: wall time of the pipeline's last successful run.
PIPELINE_LAST_DURATION = f"{NAMESPACE}_pipeline_last_duration_seconds"

EXPORTER_LABELS: dict[str, tuple[str, ...]] = {
    FEATURE_PSI: ("model", "version", "feature"),
    SCORE_PSI: ("model", "version"),
    ONLINE_AUC: ("model", "version"),
    MODEL_EVALUATION_AUC: ("model", "version"),
    CANARY_FAILED_CHECKS: ("model", "version"),
    MODEL_AGE: ("model", "alias"),
    PIPELINE_RUNS: ("pipeline", "status"),
    PIPELINE_LAST_SUCCESS: ("pipeline",),
    PIPELINE_LAST_DURATION: ("pipeline",),
}
PIPELINE_SUCCEEDED, PIPELINE_FAILED = "succeeded", "failed"

# Label values the rules match on. serving/ spells them too (backend names, routes, the value
# of a label the request could not fill); tests/unit/test_rules.py keeps the two in step.
BACKENDS = ("triton-primary", "triton-cpu", "in-process")
ROUTE_STABLE, ROUTE_CANARY = "stable", "canary"
UNLABELLED = "none"

# -------------------------------------------------------------------------------------------
# Exported by Triton Inference Server itself (labels model, version), per pool. Not ours to
# name; listed once so that the rules and dashboards never spell them out.
TRITON_REQUEST_SUCCESS = "nv_inference_request_success"
TRITON_REQUEST_FAILURE = "nv_inference_request_failure"
TRITON_INFERENCE_COUNT = "nv_inference_count"
TRITON_EXEC_COUNT = "nv_inference_exec_count"
TRITON_QUEUE_DURATION_US = "nv_inference_queue_duration_us"
TRITON_COMPUTE_INFER_DURATION_US = "nv_inference_compute_infer_duration_us"
TRITON_METRICS = (
    TRITON_REQUEST_SUCCESS,
    TRITON_REQUEST_FAILURE,
    TRITON_INFERENCE_COUNT,
    TRITON_EXEC_COUNT,
    TRITON_QUEUE_DURATION_US,
    TRITON_COMPUTE_INFER_DURATION_US,
)
