"""Drift-triggered retraining: a firing drift alert launches a training run of the alert's
model; when the run's gate passes, its challenger is rolled out as a canary.

Rate-limited (``rollout.retrain.min_interval_s`` between two launches per model, remembered in
the store so a restart does not forget it), deduplicated (one run per model at a time, none
while a rollout of that model is in progress) and audited (a ``retrain`` record in the
deployment history at launch and at the end).

One code path for both targets: the run is ``shipyard pipeline run training`` with
``--local`` (embedded) or ``--host <KFP API>`` (cluster, ``rollout.retrain.kfp_host``).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.observability.prometheus import PrometheusApi
from shipyard.rollout.controller import Controller
from shipyard.rollout.history import HistoryRecord
from shipyard.rollout.state import Rollouts
from shipyard.rollout.store import Store
from shipyard.routing import RoutingTable
from shipyard.settings import Settings
from shipyard.stack.layout import StateLayout
from shipyard.stack.supervisor import inherited_env
from shipyard.training.tracking import CHALLENGER, CHAMPION, MlflowRest

log = logging.getLogger(__name__)

ACTOR = "retraining"
# Hyper-parameters `shipyard pipeline run` takes, as the train step logs them to MLflow.
RECIPE = ("n_estimators", "learning_rate", "num_leaves", "min_child_samples")


@dataclass
class Run:
    model: str
    process: subprocess.Popen
    log_file: Path
    challenger_before: str | None
    reason: str


def firing_models(api: PrometheusApi, alerts: list[str]) -> dict[str, list[str]]:
    """Models with a firing alert among ``alerts`` -> the names of those alerts."""
    if not alerts:
        return {}
    names = "|".join(alerts)
    firing: dict[str, list[str]] = {}
    for labels, _ in api.query(f'ALERTS{{alertstate="firing",alertname=~"{names}"}}'):
        if labels.get("model"):
            firing.setdefault(labels["model"], []).append(labels["alertname"])
    return {model: sorted(set(names)) for model, names in firing.items()}


class AlertInbox:
    """Alerts posted by Alertmanager (its webhook receiver format), held as firing until a
    ``resolved`` notification or ``hold_s`` without a repeat."""

    def __init__(self, hold_s: float = 24 * 3600.0, clock: Callable[[], float] = time.time):
        self.hold_s = hold_s
        self.clock = clock
        self._firing: dict[tuple[str, str], float] = {}  # (model, alertname) -> expiry
        self._lock = threading.Lock()

    def receive(self, payload: object) -> int:
        """Take one webhook notification; returns the alerts it carried. Raises ValueError
        naming what is wrong with a malformed payload."""
        if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
            raise ValueError("expected an Alertmanager notification: {'alerts': [...]}")
        now = self.clock()
        with self._lock:
            for index, alert in enumerate(payload["alerts"]):
                labels = alert.get("labels") if isinstance(alert, dict) else None
                if not isinstance(labels, dict) or not labels.get("alertname"):
                    raise ValueError(f"alerts[{index}].labels.alertname is missing")
                if not labels.get("model"):
                    continue  # not about a model: nothing to retrain
                key = (str(labels["model"]), str(labels["alertname"]))
                if alert.get("status") == "resolved":
                    self._firing.pop(key, None)
                else:
                    self._firing[key] = now + self.hold_s
        return len(payload["alerts"])

    def firing(self, alerts: list[str]) -> dict[str, list[str]]:
        now = self.clock()
        with self._lock:
            self._firing = {k: t for k, t in self._firing.items() if t > now}
            found: dict[str, list[str]] = {}
            for model, name in self._firing:
                if name in alerts:
                    found.setdefault(model, []).append(name)
        return found


def merged(*sources: dict[str, list[str]]) -> dict[str, list[str]]:
    """Union of several {model: [alert names]} views."""
    union: dict[str, set[str]] = {}
    for source in sources:
        for model, names in source.items():
            union.setdefault(model, set()).update(names)
    return {model: sorted(names) for model, names in union.items()}


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or [""])[-1][:300]


@dataclass
class Retrainer:
    settings: Settings
    store: Store
    controller: Controller
    mlflow: MlflowRest
    firing: Callable[[], dict[str, list[str]]]
    clock: Callable[[], float] = time.time
    runs: dict[str, Run] = field(default_factory=dict)

    def tick(self) -> None:
        self._reap()
        policy = self.settings.rollout.retrain
        if not policy.enabled:
            return
        for model, alerts in self.firing().items():
            if model in self.runs:
                continue  # one run per model at a time
            _, rollouts = self.store.read()
            rollout = rollouts.rollouts.get(model)
            if rollout is not None and rollout.active:
                continue  # a canary is being judged: its outcome first
            last = rollouts.retrained_at.get(model)
            if last is not None and self.clock() - last < policy.min_interval_s:
                continue
            self._launch(model, alerts)

    def _launch(self, model: str, alerts: list[str]) -> None:
        champion = self.mlflow.model_version_by_alias(model, CHAMPION)
        if champion is None:
            log.warning("%s has no champion: nothing to retrain", model)
            return
        tags = {tag["key"]: tag["value"] for tag in champion.get("tags", [])}
        recipe = self._recipe(champion)
        reason = f"{', '.join(alerts)} firing for {model}"
        now = self.clock()

        def change(table: RoutingTable, rollouts: Rollouts):
            record = HistoryRecord.of_route(
                model, table.models.get(model), "retrain", f"training run launched: {reason}", ACTOR
            )
            retrained = {**rollouts.retrained_at, model: now}
            return table, rollouts.model_copy(update={"retrained_at": retrained}), [record]

        self.store.update(change)  # rate limit and audit record first, then the run
        host = self.settings.rollout.retrain.kfp_host
        where = ["--host", host] if host else ["--local"]
        argv = [
            str(Path(sys.executable).with_name("shipyard")),
            "pipeline",
            "run",
            "training",
            *where,
            "--model-name",
            model,
            "--owner",
            tags.get("owner", ""),
            "--team",
            tags.get("team", ""),
            "--on-call",
            tags.get("on_call", ""),
            *recipe,
        ]
        layout = StateLayout(self.settings.state_dir)
        log_file = layout.logs / f"retrain-{model}-{int(now)}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "w") as output:
            process = subprocess.Popen(
                argv,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**inherited_env(), **self.settings.to_env()},
            )
        before = self.mlflow.alias_version(model, CHALLENGER)
        self.runs[model] = Run(model, process, log_file, before, reason)
        log.info("retraining %s (%s): pid %d, log %s", model, reason, process.pid, log_file)

    def _recipe(self, champion: dict) -> list[str]:
        """The champion's recipe (hyper-parameters, feature service) as pipeline options:
        retraining refits the same model on fresh data, it does not tune."""
        run = self.mlflow.get_run(champion["run_id"]) if champion.get("run_id") else {}
        data = run.get("data", {})
        params = {p["key"]: p["value"] for p in data.get("params", [])}
        run_tags = {t["key"]: t["value"] for t in data.get("tags", [])}
        options = [
            f"--{name.replace('_', '-')}={params[name]}" for name in RECIPE if name in params
        ]
        if run_tags.get("feature_service"):
            options.append(f"--feature-service={run_tags['feature_service']}")
        return options

    def _reap(self) -> None:
        for model, run in list(self.runs.items()):
            code = run.process.poll()
            if code is None:
                continue
            del self.runs[model]
            challenger = self.mlflow.alias_version(model, CHALLENGER) if code == 0 else None
            if code != 0:
                outcome = f"training run failed (exit {code}): {_last_line(run.log_file)}"
            elif challenger is None or challenger == run.challenger_before:
                outcome = "training run finished without a new challenger"
            else:
                outcome = f"training run finished: challenger v{challenger}"
            self._audit(model, outcome)
            log.info("retraining %s: %s", model, outcome)
            new = challenger is not None and challenger != run.challenger_before
            if code == 0 and new and self.settings.rollout.retrain.auto_rollout:
                try:
                    self.controller.start(model, challenger, actor=ACTOR)
                except Exception as exc:
                    self._audit(model, f"canary of v{challenger} not started: {exc}")

    def _audit(self, model: str, reason: str) -> None:
        def change(table: RoutingTable, rollouts: Rollouts):
            record = HistoryRecord.of_route(
                model, table.models.get(model), "retrain", reason, ACTOR
            )
            return table, rollouts, [record]

        self.store.update(change)

    def stop(self) -> None:
        """Stop runs still going (the loop is shutting down); they are recorded as failed."""
        for run in self.runs.values():
            run.process.terminate()
        for run in self.runs.values():
            try:
                run.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                run.process.kill()
        self._reap()
