"""Judging one canary step: canary against stable over the step's window. Pure functions of
what Prometheus measured (``shipyard.rollout.measure``), so every rule is unit-testable.

A step *passes* when every check passes, *fails* when any check fails, and is *inconclusive*
otherwise: too little canary traffic, or a measurement that is missing or NaN. Inconclusive
never promotes and never counts as a failure; the loop keeps observing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from shipyard.observability.drift import psi
from shipyard.rollout.state import Check
from shipyard.routing import Analysis

Verdict = Literal["passed", "failed", "inconclusive"]
# Score bins are merged until each holds this share of stable's scores, so that a PSI over a
# few hundred canary predictions measures a shift and not sampling noise in empty bins.
MIN_BIN_SHARE = 0.05


@dataclass(frozen=True)
class Side:
    """One version's traffic in the window (canary, or stable as the baseline)."""

    requests: float = 0.0
    errors: float = 0.0
    p99_s: float = math.nan
    score_counts: tuple[float, ...] = ()  # predictions per score bin, in bin order
    online_auc: float = math.nan

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests > 0 else math.nan

    @property
    def predictions(self) -> float:
        return float(sum(self.score_counts))


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    checks: list[Check] = field(default_factory=list)

    @property
    def reason(self) -> str:
        failed = [c for c in self.checks if c.outcome == "failed"]
        missing = [c for c in self.checks if c.outcome == "no-data"]
        if failed:
            return "; ".join(_describe(c) for c in failed)
        if missing:
            return "waiting for data: " + "; ".join(c.detail or c.name for c in missing)
        return "all checks passed"


def _describe(check: Check) -> str:
    value = "n/a" if check.value is None else f"{check.value:.4g}"
    return f"{check.name} {value} > {check.threshold:.4g}" + (
        f" ({check.detail})" if check.detail else ""
    )


def merged_bins(baseline: np.ndarray, min_share: float = MIN_BIN_SHARE) -> list[slice]:
    """Adjacent bins grouped so that each group holds ≥ ``min_share`` of ``baseline``."""
    total = baseline.sum()
    groups, start, held = [], 0, 0.0
    for index, count in enumerate(baseline):
        held += count
        if total > 0 and held / total >= min_share:
            groups.append(slice(start, index + 1))
            start, held = index + 1, 0.0
    if start < len(baseline):
        if groups:  # the thin tail joins the last group
            groups[-1] = slice(groups[-1].start, len(baseline))
        else:
            groups.append(slice(0, len(baseline)))
    return groups


def score_psi(canary: Side, stable: Side) -> float:
    """PSI of the canary's score histogram against stable's, over merged bins."""
    if not canary.score_counts or not stable.score_counts:
        return math.nan
    base = np.asarray(stable.score_counts, dtype=float)
    live = np.asarray(canary.score_counts, dtype=float)
    if base.sum() <= 0 or live.sum() <= 0:
        return math.nan
    groups = merged_bins(base)
    expected = np.array([base[g].sum() for g in groups]) / base.sum()
    return psi(expected, np.array([live[g].sum() for g in groups]))


def judge(analysis: Analysis, canary: Side, stable: Side) -> Judgement:
    """The verdict on one step of a canary, with every check's value and threshold."""
    if canary.requests < analysis.min_requests:
        traffic = Check(
            name="traffic",
            outcome="no-data",
            value=canary.requests,
            threshold=analysis.min_requests,
            detail=f"{canary.requests:.0f} canary requests, {analysis.min_requests} needed",
        )
        return Judgement("inconclusive", [traffic])

    checks: list[Check] = []
    # Errors: the canary may fail max_error_ratio more often than stable does right now (a
    # shared dependency failing is not the canary's fault).
    baseline = 0.0 if math.isnan(stable.error_ratio) else stable.error_ratio
    checks.append(
        Check.of(
            "error_ratio",
            canary.error_ratio,
            baseline + analysis.max_error_ratio,
            canary.error_ratio > baseline + analysis.max_error_ratio,
            f"stable {baseline:.4f}",
        )
    )
    # Latency: a ratio, with an absolute tolerance below which bucket interpolation is noise.
    ratio = canary.p99_s / stable.p99_s if stable.p99_s > 0 else math.nan
    slower = (canary.p99_s - stable.p99_s) * 1000 > analysis.p99_tolerance_ms
    checks.append(
        Check.of(
            "p99_ratio",
            ratio,
            analysis.max_p99_ratio,
            ratio > analysis.max_p99_ratio and slower,
            _latency_detail(canary, stable),
        )
    )
    # Scores: the canary's score distribution against stable's, given enough predictions.
    shift = (
        score_psi(canary, stable)
        if min(canary.predictions, stable.predictions) >= analysis.min_requests
        else math.nan
    )
    checks.append(
        Check.of(
            "score_psi",
            shift,
            analysis.max_score_psi,
            shift > analysis.max_score_psi,
            f"{canary.predictions:.0f} canary / {stable.predictions:.0f} stable predictions",
        )
    )
    # Online quality only once labels came back for both versions.
    if math.isnan(canary.online_auc) or math.isnan(stable.online_auc):
        checks.append(Check(name="online_auc_drop", outcome="skipped", detail="no labels yet"))
    else:
        drop = stable.online_auc - canary.online_auc
        checks.append(
            Check.of(
                "online_auc_drop",
                drop,
                analysis.max_auc_drop,
                drop > analysis.max_auc_drop,
                f"canary {canary.online_auc:.3f}, stable {stable.online_auc:.3f}",
            )
        )

    outcomes = {check.outcome for check in checks}
    if "failed" in outcomes:
        return Judgement("failed", checks)
    if "no-data" in outcomes:
        return Judgement("inconclusive", checks)
    return Judgement("passed", checks)


def _latency_detail(canary: Side, stable: Side) -> str:
    def ms(seconds: float) -> str:
        return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"

    return f"p99 canary {ms(canary.p99_s)}, stable {ms(stable.p99_s)}"
