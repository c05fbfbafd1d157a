"""The gateway's drift and quality monitor, without a server."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score

from serving.models import ServedVersion
from serving.monitoring import Monitor, roc_auc
from shipyard.observability.drift import reference_from
from shipyard.observability.metrics import GatewayMetrics


def test_rank_auc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(2000), 2)  # many ties
    labels = (rng.random(2000) < scores).astype(int)
    assert abs(roc_auc(scores, labels) - roc_auc_score(labels, scores)) < 1e-12
    assert math.isnan(roc_auc(scores, np.zeros(2000, dtype=int)))


def sample(metrics: GatewayMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_psi_waits_for_enough_rows_then_sees_a_shift() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5000, 2)).astype(np.float32)
    scores = rng.random(5000).astype(np.float32)
    served = ServedVersion(
        "m", "1", "svc", ("a", "b"), reference=reference_from(x, ["a", "b"], scores)
    )
    metrics = GatewayMetrics.create("test", "sqlite")
    monitor = Monitor(metrics, min_rows=100)
    labels = {"model": "m", "version": "1"}
    monitor.observe(served, [f"{i:x}" for i in range(50)], x[:50], scores[:50])
    monitor.refresh()
    assert math.isnan(sample(metrics, "shipyard_gateway_feature_psi", **labels, feature="a"))
    shifted = x[:500].copy()
    shifted[:, 0] += 3.0
    monitor.observe(served, [f"{i:x}" for i in range(50, 550)], shifted, scores[:500])
    monitor.refresh()
    assert sample(metrics, "shipyard_gateway_drift_window_rows", **labels) == 550
    assert sample(metrics, "shipyard_gateway_feature_psi", **labels, feature="a") > 1.0
    assert sample(metrics, "shipyard_gateway_feature_psi", **labels, feature="b") < 0.1


def test_feedback_matches_recent_predictions_only() -> None:
    metrics = GatewayMetrics.create("test", "sqlite")
    monitor = Monitor(metrics, recent=3)
    served = ServedVersion("m", "2", "svc", ("a",))
    monitor.observe(served, ["1", "2", "3", "4"], np.zeros((4, 1)), np.array([0.1, 0.9, 0.2, 0.8]))
    assert monitor.feedback("1", 1) is None  # evicted: only the last three are kept
    for prediction_id, label in (("2", 1), ("3", 0), ("4", 1)):
        assert monitor.feedback(prediction_id, label) == ("m", "2")
    monitor.refresh()
    labels = {"model": "m", "version": "2"}
    assert sample(metrics, "shipyard_gateway_online_auc", **labels) == 1.0
    assert sample(metrics, "shipyard_gateway_online_precision", **labels) == 1.0
