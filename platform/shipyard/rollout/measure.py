"""What a canary step is judged on, read from Prometheus: the gateway's request counters,
latency and score histograms and online AUC, for the canary and for stable.

The canary is measured over the step's own window (``interval_s``), and so is stable while it
serves enough of the traffic; at the last steps, when stable gets little or none, its baseline
is the last ``BASELINE_MIN_S`` (the traffic it served just before).
"""

from __future__ import annotations

import math

from shipyard.observability import metrics as m
from shipyard.observability.prometheus import PrometheusApi
from shipyard.rollout.analysis import Side

BASELINE_MIN_S = 300.0
# Prometheus needs two samples in a range: never ask for less than two embedded scrapes.
MIN_WINDOW_S = 10.0


def _window(seconds: float) -> str:
    return f"{max(math.ceil(seconds), int(MIN_WINDOW_S))}s"


def measure_side(api: PrometheusApi, model: str, version: str, route: str, window_s: float) -> Side:
    """One version's traffic on one route over the last ``window_s`` seconds."""
    sel = f'model="{model}",version="{version}",route="{route}"'
    w = _window(window_s)
    requests = api.scalar(f"sum(increase({m.REQUESTS}{{{sel}}}[{w}]))", 0.0)
    errors = api.scalar(f'sum(increase({m.REQUESTS}{{{sel},status=~"5.."}}[{w}]))', 0.0)
    p99 = api.scalar(
        f"histogram_quantile(0.99, sum by (le) "
        f'(rate({m.REQUEST_DURATION}_bucket{{{sel},status!~"5.."}}[{w}])))'
    )
    cumulative = api.query(f"sum by (le) (increase({m.PREDICTION_SCORE}_bucket{{{sel}}}[{w}]))")
    online_auc = api.scalar(f'max({m.ONLINE_AUC}{{model="{model}",version="{version}"}})')
    return Side(
        requests=requests,
        errors=errors,
        p99_s=p99,
        score_counts=_bin_counts(cumulative),
        online_auc=online_auc,
    )


def _bin_counts(cumulative: list[tuple[dict[str, str], float]]) -> tuple[float, ...]:
    """Per-bin counts from a histogram's cumulative ``le`` buckets (``+Inf`` dropped: scores
    are probabilities, the last finite bucket is 1.0)."""
    finite = sorted(
        (float(labels["le"]), value)
        for labels, value in cumulative
        if labels.get("le") not in (None, "+Inf")
    )
    counts, previous = [], 0.0
    for _, value in finite:
        value = 0.0 if math.isnan(value) else value
        counts.append(max(value - previous, 0.0))
        previous = max(value, previous)
    return tuple(counts)


def measure_step(
    api: PrometheusApi,
    model: str,
    canary: str,
    stable: str,
    window_s: float,
    min_requests: int = 1,
) -> tuple[Side, Side]:
    """(canary, stable) for one step of a rollout. Stable is measured over the same window
    when it served enough requests in it (both then see the same moment: a load spike on the
    machine is nobody's regression); else over the longer baseline (the last steps)."""
    baseline = measure_side(api, model, stable, m.ROUTE_STABLE, window_s)
    if baseline.requests < min_requests:
        baseline = measure_side(api, model, stable, m.ROUTE_STABLE, max(window_s, BASELINE_MIN_S))
    return measure_side(api, model, canary, m.ROUTE_CANARY, window_s), baseline
