"""The panels of Shipyard's dashboards, as data: the one source of their PromQL.

Grafana JSON (:mod:`shipyard.observability.dashboards`) and ``shipyard report``
(:mod:`shipyard.observability.report`) both render these, so a dashboard and a report never
disagree. Queries prefer the recorded series of :mod:`shipyard.observability.rules` and spell
metric names only through :mod:`shipyard.observability.metrics`; ``$model`` is the dashboards'
model variable (:func:`substitute` fills it in outside Grafana).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shipyard.observability import metrics as m
from shipyard.observability import rules as r
from shipyard.training.tracking import CHAMPION

MODEL_VAR = "model"
# Every model, when the variable selects "All" (and what the report and tests substitute).
ALL_MODELS = ".+"
MODEL = f'model=~"${MODEL_VAR}"'
T = r.THRESHOLDS
Kind = Literal["timeseries", "stat", "heatmap"]


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel; ``legend`` uses Grafana's ``{{label}}`` syntax."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """A panel: what it shows (queries), how (kind, unit, thresholds) and whether
    ``shipyard report`` draws it (``key``)."""

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: Kind = "timeseries"
    width: int = 12
    # Values above the first threshold turn red (below, for ``lower_is_bad`` panels).
    thresholds: tuple[float, ...] = ()
    lower_is_bad: bool = False
    stacked: bool = False
    min: float | None = None
    max: float | None = None
    key: bool = False


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Dashboard:
    name: str
    title: str
    description: str
    rows: tuple[Row, ...]
    tags: tuple[str, ...] = ()

    @property
    def uid(self) -> str:
        return f"shipyard-{self.name}"

    @property
    def filename(self) -> str:
        return f"{self.uid}.json"

    @property
    def panels(self) -> list[Panel]:
        return [panel for row in self.rows for panel in row.panels]


def q(expr: str, legend: str = "") -> Query:
    return Query(expr, legend)


def _in(series: str, *matchers: str) -> str:
    """``series`` restricted to the selected models (and ``matchers``)."""
    return f"{series}{{{', '.join((MODEL, *matchers))}}}"


def _quantile(x: float) -> str:
    return f'quantile="{r._num(x)}"'


def _rate(metric: str, by: tuple[str, ...], *matchers: str, window: str = "5m") -> str:
    return f"sum by ({', '.join(by)}) (rate({_in(metric, *matchers)}[{window}]))"


# Platform overview (SREs)


def _slo_row() -> Row:
    budget = 1 - T.availability_slo
    known = (r.KNOWN_MODEL,)
    total = f"sum by (model) (increase({_in(m.REQUESTS, *known)}[30d]))"
    bad = f"sum by (model) (increase({_in(m.REQUESTS, *known, r.SERVER_ERROR)}[30d]))"
    error_ratio_30d = f"(({bad} or {total} * 0) / {total})"
    burn = tuple(
        q(f"{_in(r.error_ratio(b.long, 'model'))} / {r._num(budget)}", f"{{{{model}}}} {b.long}")
        for b in r.BURN_WINDOWS
    )
    latency_budget = 1 - T.latency_slo
    slow_burn = tuple(
        q(f"{_in(r.slow_ratio(b.long))} / {r._num(latency_budget)}", f"{{{{model}}}} {b.long}")
        for b in r.BURN_WINDOWS
    )
    return Row(
        "SLOs and error budget",
        (
            Panel(
                "Availability, 30 days",
                "Share of predict requests answered without a 5xx "
                f"(SLO {r._pct(T.availability_slo)}).",
                (q(f"1 - {error_ratio_30d}", "{{model}}"),),
                unit="percentunit",
                kind="stat",
                width=6,
                thresholds=(T.availability_slo,),
                lower_is_bad=True,
                key=True,
            ),
            Panel(
                "Error budget left, 30 days",
                "Share of the 30-day availability error budget not spent yet; below 0 the SLO "
                "is missed.",
                (q(f"1 - {error_ratio_30d} / {r._num(budget)}", "{{model}}"),),
                unit="percentunit",
                kind="stat",
                width=6,
                thresholds=(0.25,),
                lower_is_bad=True,
            ),
            Panel(
                "Availability budget burn rate",
                "How many times faster than sustainable the availability budget burns, per "
                "alert window (pages at 14.4x over 1h, 6x over 6h).",
                burn,
                thresholds=(1,),
                key=True,
            ),
            Panel(
                "Latency budget burn rate",
                f"The same for requests slower than {r._num(T.latency_slo_seconds * 1000)} ms "
                f"(SLO {r._pct(T.latency_slo)}).",
                slow_burn,
                thresholds=(1,),
            ),
        ),
    )


def _traffic_row() -> Row:
    quantile = r.latency_quantile("5m")
    return Row(
        "Traffic and latency",
        (
            Panel(
                "Requests by status",
                "Predict requests per second, by model and HTTP status.",
                (q(_rate(m.REQUESTS, ("model", "status")), "{{model}} {{status}}"),),
                unit="reqps",
                stacked=True,
                key=True,
            ),
            Panel(
                "Latency quantiles",
                "Gateway latency of predict requests (worst version and route of each model).",
                tuple(
                    q(
                        f"max by (model, quantile) ({_in(quantile, _quantile(x))})",
                        f"{{{{model}}}} p{r._num(x * 100)}",
                    )
                    for x in r.QUANTILES
                ),
                unit="s",
                thresholds=(T.latency_slo_seconds,),
                key=True,
            ),
        ),
    )


def _backends_row() -> Row:
    fallback = r.fallback_ratio("5m")
    return Row(
        "Backends and fallback",
        (
            Panel(
                "Predictions by backend",
                "Which hop of the chain served: triton-primary (GPU pool), triton-cpu, in-process.",
                (q(_rate(m.PREDICTIONS, ("backend",)), "{{backend}}"),),
                unit="reqps",
                stacked=True,
                key=True,
            ),
            Panel(
                "Fallback ratio",
                "Share of a model's requests that moved on from a backend to the next one "
                "(0 where nothing fell back).",
                (
                    q(
                        f"sum by (model, from_backend, to_backend) ({_in(fallback)})\n"
                        f"or\nsum by (model) ({_in(r.request_rate('5m'))}) * 0",
                        "{{model}} {{from_backend}} → {{to_backend}}",
                    ),
                ),
                unit="percentunit",
                thresholds=(T.fallback_ratio,),
                key=True,
            ),
            Panel(
                "Circuit state",
                "Circuit breaker per backend, worst gateway worker: 0 closed, 1 half-open, 2 open.",
                (q(f"max by (backend) ({m.CIRCUIT_STATE})", "{{backend}}"),),
                thresholds=(m.CIRCUIT_HALF_OPEN,),
                min=0,
                max=m.CIRCUIT_OPEN,
                width=8,
            ),
            Panel(
                "Backend call latency p99",
                "Latency of the call to the backend that answered, seen from the gateway.",
                (
                    q(
                        "histogram_quantile(0.99, "
                        f"{_rate(f'{m.BACKEND_DURATION}_bucket', ('backend', 'le'))})",
                        "{{backend}}",
                    ),
                ),
                unit="s",
                width=8,
            ),
            Panel(
                "Backend errors",
                "Failed backend calls per second, by backend and reason (0 where none failed).",
                (
                    q(
                        f"sum by (backend, reason) (rate({m.BACKEND_ERRORS}[5m]))\n"
                        f"or\nsum by (backend) (rate({m.BACKEND_DURATION}_count[5m])) * 0",
                        "{{backend}} {{reason}}",
                    ),
                ),
                unit="reqps",
                width=8,
            ),
        ),
    )


def _triton_row() -> Row:
    legend = "{{job}} {{model}} v{{version}}"
    return Row(
        "Triton queue and compute",
        (
            Panel(
                "Queue time (mean)",
                "Mean time a request waits in a Triton pool's scheduler queue.",
                (q(_in(r.TRITON_QUEUE_MEAN), legend),),
                unit="s",
                thresholds=(T.triton_queue_seconds,),
                width=8,
                key=True,
            ),
            Panel(
                "Compute time (mean)",
                "Mean model compute time per request in each pool.",
                (q(_in(r.TRITON_COMPUTE_MEAN), legend),),
                unit="s",
                width=8,
            ),
            Panel(
                "Rows per model execution",
                "Dynamic batching at work: inferences per model execution, per pool.",
                (
                    q(
                        f"{_rate(m.TRITON_INFERENCE_COUNT, ('job',))}\n/\n"
                        f"{_rate(m.TRITON_EXEC_COUNT, ('job',))}",
                        "{{job}}",
                    ),
                ),
                width=8,
            ),
        ),
    )


def _feature_store_row() -> Row:
    return Row(
        "Feature store and gateway",
        (
            Panel(
                "Online store read latency",
                "Quantiles of one online feature-store read.",
                (q(r.FEATURE_QUANTILE, "{{store}} p{{quantile}}"),),
                unit="s",
                thresholds=(T.feature_p99_seconds,),
                width=8,
                key=True,
            ),
            Panel(
                "Online store error ratio",
                "Share of online feature-store reads that failed (each one a 503).",
                (q(r.FEATURE_ERROR_RATIO, "{{store}}"),),
                unit="percentunit",
                thresholds=(T.feature_error_ratio,),
                width=8,
            ),
            Panel(
                "In flight and refused",
                "Predict requests in progress, and requests refused before any work.",
                (
                    q(f"sum({m.IN_FLIGHT})", "in flight"),
                    q(f"sum(rate({m.REJECTED}[5m])) or vector(0)", "refused/s"),
                ),
                width=8,
            ),
            Panel(
                "Audit log",
                "Audit records written per second, failed writes, and group-commit sync p99.",
                (
                    q(f"sum(rate({m.AUDIT_RECORDS}[5m]))", "records/s"),
                    q(f"sum(rate({m.AUDIT_ERRORS}[5m]))", "write errors/s"),
                    q(
                        "histogram_quantile(0.99, sum by (le) "
                        f"(rate({m.AUDIT_SYNC_DURATION}_bucket[5m])))",
                        "sync p99 (s)",
                    ),
                ),
            ),
        ),
    )


def overview() -> Dashboard:
    return Dashboard(
        "overview",
        "Shipyard / Platform overview",
        "For SREs: SLOs and error budget, traffic and latency, the backend chain and its "
        "fallbacks, Triton pools, the online feature store and the audit log.",
        (_slo_row(), _traffic_row(), _backends_row(), _triton_row(), _feature_store_row()),
        ("slo", "serving"),
    )


# Model


def model() -> Dashboard:
    version_route = "v{{version}} {{route}}"
    score = m.PREDICTION_SCORE
    return Dashboard(
        "model",
        "Shipyard / Model",
        "One model's versions: traffic split, canary against stable, served scores, data and "
        "prediction drift, and online quality from delayed labels.",
        (
            Row(
                "Traffic split",
                (
                    Panel(
                        "Requests by version and route",
                        "Predict requests per second per version, stable and canary.",
                        (
                            q(
                                f"sum by (version, route) ({_in(r.request_rate('5m'))})",
                                version_route,
                            ),
                        ),
                        unit="reqps",
                        stacked=True,
                        key=True,
                    ),
                    Panel(
                        "Canary weight",
                        "Share of customers routed to the canary version, percent.",
                        (q(f"max by (model, version) ({_in(m.CANARY_WEIGHT)})", "v{{version}}"),),
                        unit="percent",
                        min=0,
                        max=100,
                    ),
                ),
            ),
            Row(
                "Canary vs stable",
                (
                    Panel(
                        "Error ratio by version and route",
                        "Share of 5xx answers; the rollout analysis compares canary with stable.",
                        (q(_in(r.error_ratio("5m")), version_route),),
                        unit="percentunit",
                        thresholds=(T.canary_error_margin,),
                        key=True,
                    ),
                    Panel(
                        "p99 latency by version and route",
                        "Gateway latency p99 per version and route.",
                        (q(_in(r.latency_quantile("5m"), _quantile(r.P99)), version_route),),
                        unit="s",
                        thresholds=(T.latency_slo_seconds,),
                    ),
                ),
            ),
            Row(
                "Scores and drift",
                (
                    Panel(
                        "Score quantiles by version",
                        "Median and p90 of the served scores per version.",
                        tuple(
                            q(
                                f"histogram_quantile({x}, "
                                f"{_rate(f'{score}_bucket', ('version', 'le'))})",
                                f"v{{{{version}}}} p{r._num(x * 100)}",
                            )
                            for x in (0.5, 0.9)
                        ),
                        min=0,
                        max=1,
                        key=True,
                    ),
                    Panel(
                        "Score distribution",
                        "Scores served into each of the 20 score bins over 5 minutes.",
                        (q(f"sum by (le) (increase({_in(f'{score}_bucket')}[5m]))", "{{le}}"),),
                        kind="heatmap",
                    ),
                    Panel(
                        "Prediction drift (score PSI)",
                        "PSI of the served scores against the version's training reference "
                        "(NaN until 100 rows are in the window).",
                        (q(f"max by (version) ({_in(m.SCORE_PSI)})", "v{{version}}"),),
                        thresholds=(T.score_psi,),
                        key=True,
                    ),
                    Panel(
                        "Data drift per feature (PSI)",
                        "PSI of each input feature against the version's training reference.",
                        (
                            q(
                                f"max by (version, feature) ({_in(m.FEATURE_PSI)})",
                                "v{{version}} {{feature}}",
                            ),
                        ),
                        thresholds=(T.feature_psi,),
                        key=True,
                    ),
                ),
            ),
            Row(
                "Online quality",
                (
                    Panel(
                        "Online AUC and precision",
                        "Rolling ROC-AUC and precision at 0.5 of predictions whose true label "
                        "arrived through POST /v1/feedback (concept drift).",
                        (
                            q(f"max by (version) ({_in(m.ONLINE_AUC)})", "v{{version}} AUC"),
                            q(
                                f"max by (version) ({_in(m.ONLINE_PRECISION)})",
                                "v{{version}} precision",
                            ),
                        ),
                        min=0,
                        max=1,
                        key=True,
                    ),
                    Panel(
                        "Labelled predictions and drift window",
                        "Predictions with a label in the quality window, rows in the drift window.",
                        (
                            q(
                                f"max by (version) ({_in(m.LABELLED_PREDICTIONS)})",
                                "v{{version}} labelled",
                            ),
                            q(
                                f"max by (version) ({_in(m.DRIFT_WINDOW_ROWS)})",
                                "v{{version}} drift window",
                            ),
                        ),
                    ),
                ),
            ),
        ),
        ("model", "drift", "canary"),
    )


# Pipelines and registry


def pipelines() -> Dashboard:
    failed = f'status="{m.PIPELINE_FAILED}"'
    return Dashboard(
        "pipelines",
        "Shipyard / Pipelines and registry",
        "Training pipeline runs, durations and failures, time since the last good run, the age and "
        "evaluation of registered versions, canary analysis, and the versions serving.",
        (
            Row(
                "Pipelines",
                (
                    Panel(
                        "Pipeline runs by status",
                        "Finished runs per hour, by pipeline and status.",
                        (
                            q(
                                f"sum by (pipeline, status) (increase({m.PIPELINE_RUNS}[1h]))",
                                "{{pipeline}} {{status}}",
                            ),
                        ),
                        stacked=True,
                        key=True,
                    ),
                    Panel(
                        "Failed runs, last 24 hours",
                        "Failed runs of each pipeline over the last day.",
                        (
                            q(
                                f"sum by (pipeline) (increase({m.PIPELINE_RUNS}{{{failed}}}[1d]))",
                                "{{pipeline}}",
                            ),
                        ),
                        kind="stat",
                        width=6,
                        thresholds=(1,),
                    ),
                    Panel(
                        "Since the last successful run",
                        "Time since each pipeline last succeeded.",
                        (
                            q(
                                f"time() - max by (pipeline) ({m.PIPELINE_LAST_SUCCESS})",
                                "{{pipeline}}",
                            ),
                        ),
                        unit="s",
                        kind="stat",
                        width=6,
                        thresholds=(T.pipeline_window_s,),
                    ),
                    Panel(
                        "Duration of the last successful run",
                        "Wall time of each pipeline's latest successful run, end to end.",
                        (q(f"max by (pipeline) ({m.PIPELINE_LAST_DURATION})", "{{pipeline}}"),),
                        unit="s",
                    ),
                ),
            ),
            Row(
                "Registry",
                (
                    Panel(
                        "Model age by alias",
                        f"Time since the version behind each alias was created ({CHAMPION} "
                        f"is due for retraining after {r._num(T.model_max_age_s / 86400)} days).",
                        (q(f"max by (model, alias) ({_in(m.MODEL_AGE)})", "{{model}} {{alias}}"),),
                        unit="s",
                        thresholds=(T.model_max_age_s,),
                        key=True,
                    ),
                    Panel(
                        "Evaluation AUC per version",
                        "Holdout ROC-AUC the pipeline's evaluate step measured.",
                        (
                            q(
                                f"max by (model, version) ({_in(m.MODEL_EVALUATION_AUC)})",
                                "{{model}} v{{version}}",
                            ),
                        ),
                        min=0,
                        max=1,
                    ),
                    Panel(
                        "Canary analysis: failed checks",
                        "Failed checks of the canary of the rollout in progress.",
                        (
                            q(
                                f"max by (model, version) ({_in(m.CANARY_FAILED_CHECKS)})",
                                "{{model}} v{{version}}",
                            ),
                        ),
                        thresholds=(1,),
                    ),
                    Panel(
                        "Versions serving traffic",
                        "Versions of each model that answered predictions in the last 5 minutes.",
                        (
                            q(
                                "count by (model) "
                                f"({_rate(m.PREDICTIONS, ('model', 'version'))} > 0)",
                                "{{model}}",
                            ),
                        ),
                    ),
                ),
            ),
        ),
        ("pipelines", "registry"),
    )


# Cost


def cost() -> Dashboard:
    spend = r.cost_rate("5m")
    prices = r.CostSettings()
    return Dashboard(
        "cost",
        "Shipyard / Cost",
        "What predictions cost: measured busy time of each backend (Triton compute time, "
        "in-process scoring) times the pool's hourly price (CostSettings / Helm `cost`), per "
        "1,000 predictions, per model, version and backend; GPU against CPU.",
        (
            Row(
                "Spend",
                (
                    Panel(
                        "Spend per day, by model",
                        "USD a day at the last hour's rate "
                        f"(budget {r._num(prices.daily_budget)} USD: ShipyardCostOverBudget).",
                        (q(f"{_in(r.cost_rate('1h', 'model'))} * 86400", "{{model}}"),),
                        unit="currencyUSD",
                        kind="stat",
                        width=8,
                        thresholds=(prices.daily_budget,),
                        key=True,
                    ),
                    Panel(
                        "GPU vs CPU share of spend",
                        "Share of the spend on each pool's hardware.",
                        (
                            q(
                                f"sum by (pool) ({_in(spend)})\n/ ignoring (pool) group_left\n"
                                f"sum ({_in(spend)})",
                                "{{pool}}",
                            ),
                        ),
                        unit="percentunit",
                        stacked=True,
                        min=0,
                        max=1,
                        width=8,
                        key=True,
                    ),
                    Panel(
                        "Prices (cost model)",
                        "Hourly price of one GPU or CPU core behind each backend, after the spot "
                        "discount.",
                        (q(r.COST_PRICE, "{{backend}} ({{pool}})"),),
                        unit="currencyUSD",
                        kind="stat",
                        width=8,
                    ),
                ),
            ),
            Row(
                "Unit cost",
                (
                    Panel(
                        "Cost per 1k predictions by version and backend",
                        "USD per 1,000 predictions over the last 5 minutes.",
                        (q(_in(r.cost_per_1k("5m")), "{{model}} v{{version}} {{backend}}"),),
                        unit="currencyUSD",
                        key=True,
                    ),
                    Panel(
                        "Cost per 1k predictions by model, 1h and 1d",
                        "USD per 1,000 predictions per model (ShipyardCostGrowth compares a day "
                        "with the one before).",
                        (
                            q(_in(r.cost_per_1k("1h", "model")), "{{model}} 1h"),
                            q(_in(r.cost_per_1k("1d", "model")), "{{model}} 1d"),
                        ),
                        unit="currencyUSD",
                    ),
                    Panel(
                        "Busy time by backend",
                        "Seconds of compute per second (GPUs or cores kept busy) by backend.",
                        (q(f"sum by (backend) ({_in(r.busy_seconds('5m'))})", "{{backend}}"),),
                        stacked=True,
                    ),
                    Panel(
                        "Spend rate by backend",
                        "USD per hour by backend.",
                        (q(f"sum by (backend) ({_in(spend)}) * 3600", "{{backend}}"),),
                        unit="currencyUSD",
                        stacked=True,
                    ),
                ),
            ),
        ),
        ("cost",),
    )


def dashboards() -> list[Dashboard]:
    """Every dashboard, in file order."""
    return [overview(), model(), pipelines(), cost()]


def key_panels() -> list[tuple[Dashboard, Panel]]:
    """The panels ``shipyard report`` draws."""
    return [(d, p) for d in dashboards() for p in d.panels if p.key]


def substitute(expr: str, models: str = ALL_MODELS) -> str:
    """A panel query with the dashboard's variables filled in, for use outside Grafana."""
    return expr.replace(f"${MODEL_VAR}", models)
