"""The maturity report's classification (facts from MLflow and Prometheus given as data)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from shipyard.governance.maturity import Facts, classify

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
TODAY = NOW.date()
MATURE = Facts(
    model="fraud-scoring",
    champion="3",
    owner="alice",
    team="fraud-risk",
    on_call="fraud-oncall",
    review_by=TODAY + timedelta(days=90),
    predictions_1h=1200.0,
    slo_series=True,
    online_auc=0.91,
    drift_series=True,
    last_successful_run=NOW - timedelta(days=2),
)


def test_a_model_passing_all_four_tests_is_infrastructure() -> None:
    report = classify(MATURE, TODAY, NOW)
    assert report.level == "infrastructure" and report.missing == {}


def test_a_model_without_an_owner_is_a_pilot_and_says_so() -> None:
    report = classify(replace(MATURE, owner="", on_call=""), TODAY, NOW)
    assert report.level == "pilot"
    assert report.missing == {"owned": ["no owner", "no on-call"]}


def test_a_model_without_drift_monitoring_is_a_pilot_and_says_so() -> None:
    report = classify(replace(MATURE, drift_series=False), TODAY, NOW)
    assert report.level == "pilot"
    assert report.missing == {"maintained": ["no drift monitoring (no PSI series)"]}


def test_overdue_review_stale_pipeline_and_no_traffic_each_named() -> None:
    facts = replace(
        MATURE,
        review_by=date(2026, 11, 1),
        last_successful_run=NOW - timedelta(days=45),
        predictions_1h=0.0,
        online_auc=float("nan"),
    )
    report = classify(facts, TODAY, NOW)
    assert report.passed == {
        "embedded": False,
        "owned": True,
        "measured": False,
        "maintained": False,
    }
    assert "review overdue since 2026-11-01" in report.missing["maintained"]
    assert "no successful pipeline run in the last 30 days" in report.missing["maintained"]
    assert report.missing["embedded"] == ["no predictions served in the last hour"]


def test_a_champion_trained_on_erased_data_is_not_maintained() -> None:
    report = classify(replace(MATURE, retrain_required="er_1,er_2"), TODAY, NOW)
    assert report.level == "pilot"
    assert report.missing == {
        "maintained": ["champion trained on data erased since (er_1,er_2): retrain it"]
    }
