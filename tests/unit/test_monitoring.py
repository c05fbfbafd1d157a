"""The gateway's drift and quality monitor, without a server."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score

from serving.models import ServedVersion
from serving.monitoring import QUEUE_ROWS, Monitor, roc_auc
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


def two_feature_version(
    seed: int, rows: int, reference_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray, ServedVersion]:
    """Random rows of features ``a`` and ``b`` with scores, and a version ``m``/1 whose
    reference is the first ``reference_rows`` of them (all by default)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2)).astype(np.float32)
    scores = rng.random(rows).astype(np.float32)
    n = reference_rows or rows
    reference = reference_from(x[:n], ["a", "b"], scores[:n])
    return x, scores, ServedVersion("m", "1", "svc", ("a", "b"), reference=reference)


def test_psi_waits_for_enough_rows_then_sees_a_shift() -> None:
    x, scores, served = two_feature_version(seed=1, rows=5000)
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


def test_queued_rows_are_all_counted_whether_the_queue_fills_or_not() -> None:
    """Small requests, requests that overflow the queue and one larger than it: every row lands
    in the bin it would land in if all were binned at once."""
    total = 3 * QUEUE_ROWS + 500
    x, scores, served = two_feature_version(seed=2, rows=total, reference_rows=1000)
    reference = served.reference
    assert reference is not None
    monitor = Monitor(GatewayMetrics.create("test", "sqlite"))
    sizes = [1, 7, QUEUE_ROWS - 3, 900, QUEUE_ROWS + 100]
    sizes.append(total - sum(sizes))
    start = 0
    for size in sizes:
        ids = [str(i) for i in range(start, start + size)]
        monitor.observe(served, ids, x[start : start + size], scores[start : start + size])
        start += size
    monitor.refresh()
    (window,) = monitor._windows.values()
    expected = [
        reference.features["a"].counts(x[:, 0].astype(float)),
        reference.features["b"].counts(x[:, 1].astype(float)),
        reference.score.counts(scores.astype(float)),
    ]
    for counted, want in zip(window.current, expected, strict=True):
        np.testing.assert_array_equal(counted, want)
    assert window.filled == 0


def test_rows_that_do_not_match_the_reference_are_left_out_not_raised() -> None:
    x, scores, served = two_feature_version(seed=3, rows=500)
    metrics = GatewayMetrics.create("test", "sqlite")
    monitor = Monitor(metrics, min_rows=100)
    wide = np.hstack([x, x[:, :1]])
    monitor.observe(served, [str(i) for i in range(500)], wide, scores)
    monitor.refresh()
    assert sample(metrics, "shipyard_gateway_drift_window_rows", model="m", version="1") == 0
    assert monitor.feedback("7", 1) == ("m", "1")  # the prediction itself is still known
