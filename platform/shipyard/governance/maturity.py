"""Ownership and maturity: is a model infrastructure, or still a pilot?

Four tests, each passed or failed with what is missing:

* **embedded**: it serves real traffic (predictions in the last hour);
* **owned**: its champion names an owner, a team and an on-call rotation;
* **measured**: its SLO series (requests and latency) exist and online quality (AUC from
  labelled feedback) is measured;
* **maintained**: drift monitoring is active (PSI series), the retraining path works (a
  pipeline run succeeded within ``retrain_window``), no erasure removed data its champion was
  trained on since (``shipyard forget``), and its review date has not passed.

A model passing all four is *infrastructure*; anything else is a *pilot*, with the reasons.
The facts are gathered from MLflow and Prometheus (``gather``); ``classify`` is pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from shipyard.observability import metrics as m
from shipyard.observability.prometheus import PrometheusApi, PrometheusError
from shipyard.training.tracking import CHAMPION, RETRAIN_REQUIRED, MlflowRest, tags_of

TESTS = ("embedded", "owned", "measured", "maintained")
RETRAIN_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class Facts:
    model: str
    champion: str | None = None
    owner: str = ""
    team: str = ""
    on_call: str = ""
    review_by: date | None = None
    predictions_1h: float = math.nan
    slo_series: bool = False
    online_auc: float = math.nan
    drift_series: bool = False
    last_successful_run: datetime | None = None
    retrain_required: str = ""  # erasures that removed data the champion was trained on


@dataclass(frozen=True)
class Maturity:
    facts: Facts
    passed: dict[str, bool]
    missing: dict[str, list[str]] = field(default_factory=dict)

    @property
    def level(self) -> str:
        return "infrastructure" if all(self.passed.values()) else "pilot"


def classify(facts: Facts, today: date, now: datetime) -> Maturity:
    missing: dict[str, list[str]] = {test: [] for test in TESTS}
    if facts.champion is None:
        missing["embedded"].append("no champion version")
    if not facts.predictions_1h > 0:  # NaN (Prometheus away) fails too
        missing["embedded"].append("no predictions served in the last hour")
    for name, value in (("owner", facts.owner), ("team", facts.team), ("on-call", facts.on_call)):
        if not value.strip():
            missing["owned"].append(f"no {name}")
    if not facts.slo_series:
        missing["measured"].append("no request/latency series (SLO) in Prometheus")
    if math.isnan(facts.online_auc):
        missing["measured"].append("no online quality: no labels through POST /v1/feedback")
    if not facts.drift_series:
        missing["maintained"].append("no drift monitoring (no PSI series)")
    if facts.last_successful_run is None or now - facts.last_successful_run > RETRAIN_WINDOW:
        missing["maintained"].append(
            f"no successful pipeline run in the last {RETRAIN_WINDOW.days} days"
        )
    if facts.retrain_required:
        missing["maintained"].append(
            f"champion trained on data erased since ({facts.retrain_required}): retrain it"
        )
    if facts.review_by is None:
        missing["maintained"].append("no review date")
    elif facts.review_by < today:
        missing["maintained"].append(f"review overdue since {facts.review_by.isoformat()}")
    passed = {test: not missing[test] for test in TESTS}
    return Maturity(facts, passed, {k: v for k, v in missing.items() if v})


def gather(mlflow: MlflowRest, prometheus: PrometheusApi) -> list[Facts]:
    """Facts about every registered model."""
    facts = []
    last_success = _last_successful_runs(mlflow)
    for registered in mlflow.registered_models():
        name = registered["name"]
        champion = mlflow.model_version_by_alias(name, CHAMPION)
        tags = tags_of(champion or {})
        review = tags.get("review_by")
        try:
            review_by = date.fromisoformat(review) if review else None
        except ValueError:
            review_by = None
        sel = f'model="{name}"'
        try:
            predictions = prometheus.scalar(
                f"sum(increase({m.PREDICTIONS}{{{sel}}}[1h]))", default=0.0
            )
            slo = bool(prometheus.query(f"{m.REQUEST_DURATION}_count{{{sel}}}"))
            auc = prometheus.scalar(f"max({m.ONLINE_AUC}{{{sel}}})")
            drift = bool(prometheus.query(f"{m.FEATURE_PSI}{{{sel}}}"))
        except PrometheusError:
            predictions, slo, auc, drift = math.nan, False, math.nan, False
        facts.append(
            Facts(
                model=name,
                champion=champion["version"] if champion else None,
                owner=tags.get("owner", ""),
                team=tags.get("team", ""),
                on_call=tags.get("on_call", ""),
                review_by=review_by,
                predictions_1h=predictions,
                slo_series=slo,
                online_auc=auc,
                drift_series=drift,
                last_successful_run=last_success.get(name),
                retrain_required=tags.get(RETRAIN_REQUIRED, ""),
            )
        )
    return facts


def _last_successful_runs(mlflow: MlflowRest) -> dict[str, datetime]:
    """Per registered model name (the training experiment), the end of its last finished run."""
    latest: dict[str, datetime] = {}
    experiments = mlflow.experiments()
    runs = mlflow.search_runs(list(experiments), "tags.pipeline_run_id LIKE '%'")
    for run in runs:
        info = run["info"]
        if info["status"] != "FINISHED" or not info.get("end_time"):
            continue
        name = experiments.get(info["experiment_id"], "")
        ended = datetime.fromtimestamp(int(info["end_time"]) / 1000, UTC)
        if name and (name not in latest or ended > latest[name]):
            latest[name] = ended
    return latest
