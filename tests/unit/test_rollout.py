"""Canary analysis and the rollout state machine, on a real routing file store; Prometheus'
measurements are given as data (the e2e tests read them from a real Prometheus)."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from shipyard import routing
from shipyard.rollout.analysis import Side, judge, merged_bins, score_psi
from shipyard.rollout.controller import Controller, RolloutError
from shipyard.rollout.history import HistoryFile, HistoryRecord, served_at
from shipyard.rollout.retrain import AlertInbox, merged
from shipyard.rollout.store import ConfigMapStore, FileStore
from shipyard.routing import Analysis, ModelRoute, RoutingTable, Stable

MODEL = "fraud-scoring"
SCORES = (900.0, 60.0, 20.0, 10.0, 5.0, 3.0, 2.0) + (0.0,) * 13


def side(requests: float = 500, errors: float = 0, p99_ms: float = 3.0, scores=SCORES) -> Side:
    return Side(requests=requests, errors=errors, p99_s=p99_ms / 1000, score_counts=scores)


ANALYSIS = Analysis(steps=[10, 50, 100], interval_s=30, max_failures=1, min_requests=20)


# --- judging one step --------------------------------------------------------------------


def test_a_canary_like_stable_passes_every_check() -> None:
    verdict = judge(ANALYSIS, side(), side(requests=4000))
    assert verdict.verdict == "passed", verdict.reason
    assert {c.name: c.outcome for c in verdict.checks} == {
        "error_ratio": "passed",
        "p99_ratio": "passed",
        "score_psi": "passed",
        "online_auc_drop": "skipped",
    }


def test_too_little_canary_traffic_is_inconclusive_never_a_pass() -> None:
    verdict = judge(ANALYSIS, side(requests=5), side())
    assert verdict.verdict == "inconclusive"
    assert "5 canary requests, 20 needed" in verdict.reason


def test_errors_beyond_stable_plus_the_margin_fail() -> None:
    verdict = judge(ANALYSIS, side(errors=50), side(requests=4000, errors=4))
    assert verdict.verdict == "failed"
    assert verdict.reason.startswith("error_ratio 0.1 > 0.011")


def test_errors_shared_with_stable_are_not_the_canary_s_fault() -> None:
    verdict = judge(ANALYSIS, side(errors=50), side(requests=4000, errors=400))
    assert verdict.verdict == "passed", verdict.reason


def test_latency_fails_on_ratio_beyond_the_noise_tolerance_only() -> None:
    assert judge(ANALYSIS, side(p99_ms=4.0), side(p99_ms=2.0)).verdict == "passed"  # 2 ms apart
    slow = judge(ANALYSIS, side(p99_ms=40.0), side(p99_ms=4.0))
    assert slow.verdict == "failed" and "p99_ratio 10 > 1.5" in slow.reason


def test_nan_latency_is_no_data() -> None:
    verdict = judge(ANALYSIS, side(), side(p99_ms=math.nan))
    assert verdict.verdict == "inconclusive"


def test_a_shifted_score_distribution_fails() -> None:
    shifted = (100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0) + (0.0,) * 10
    verdict = judge(ANALYSIS, side(scores=shifted), side())
    assert verdict.verdict == "failed" and "score_psi" in verdict.reason


def test_a_few_hundred_predictions_from_the_same_distribution_stay_under_the_threshold() -> None:
    rng = np.random.default_rng(3)
    shares = np.array(SCORES) / sum(SCORES)
    for _ in range(20):
        sample = tuple(float(x) for x in rng.multinomial(300, shares))
        assert score_psi(side(scores=sample), side(scores=SCORES)) < ANALYSIS.max_score_psi


def test_bins_merge_until_each_holds_five_percent_of_stable() -> None:
    groups = merged_bins(np.array(SCORES))
    shares = [sum(SCORES[g]) / sum(SCORES) for g in groups]
    assert all(share >= 0.05 for share in shares[:-1])
    assert groups[0] == slice(0, 1) and groups[-1].stop == len(SCORES)


def test_online_auc_is_judged_once_labels_exist() -> None:
    worse = Side(500, 0, 0.003, SCORES, online_auc=0.70)
    verdict = judge(ANALYSIS, worse, Side(4000, 0, 0.003, SCORES, online_auc=0.85))
    assert verdict.verdict == "failed" and "online_auc_drop" in verdict.reason


# --- the state machine ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """Measurements handed to the controller in order, one per judged step."""

    def __init__(self, *canaries: Side) -> None:
        self.canaries = list(canaries)
        self.calls = 0

    def __call__(self, model: str, canary: str, stable: str, window_s: float, min_requests: int):
        self.calls += 1
        return self.canaries.pop(0), side(requests=4000)


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    routing_file = tmp_path / "serving" / "routing.yaml"
    routing.save(routing_file, RoutingTable(models={MODEL: ModelRoute(stable=Stable(version="1"))}))
    return FileStore(routing_file, tmp_path / "rollout" / "rollouts.json", tmp_path / "history")


def controller(store: FileStore, *canaries: Side) -> tuple[Controller, Clock, list]:
    clock, promoted, prepared = Clock(), [], []
    made = Controller(
        store=store,
        measure=Scripted(*canaries),
        promote_in_registry=lambda model, version: promoted.append((model, version)),
        prepare=lambda model, version: prepared.append((model, version)),
        clock=clock,
    )
    return made, clock, promoted


def weight(store: FileStore) -> float:
    route = store.read()[0].models[MODEL]
    return route.canary.weight if route.canary else math.nan


def test_a_good_canary_steps_through_every_weight_and_is_promoted(store: FileStore) -> None:
    rollouts, clock, promoted = controller(store, side(), side(), side())
    rollouts.start(MODEL, "2", actor="alice", analysis=ANALYSIS)
    assert weight(store) == 10
    rollouts.tick()  # the first interval has not passed: nothing judged
    assert weight(store) == 10 and rollouts.measure.calls == 0
    for expected in (50, 100):
        clock.now += 31
        rollouts.tick()
        assert weight(store) == expected
    clock.now += 31
    rollouts.tick()
    table, state = store.read()
    assert table.models[MODEL] == ModelRoute(stable=Stable(version="2"))
    assert state.rollouts[MODEL].status == "succeeded"
    assert promoted == [(MODEL, "2")]
    events = [(r.event, r.stable, r.canary, r.weight) for r in store.history()]
    assert events == [
        ("started", "1", "2", 10),
        ("step", "1", "2", 50),
        ("step", "1", "2", 100),
        ("promoted", "2", None, 0),
    ]


def test_a_bad_canary_is_rolled_back_after_max_failures_plus_one(store: FileStore) -> None:
    bad = side(errors=100)
    rollouts, clock, promoted = controller(store, bad, bad)
    rollouts.start(MODEL, "2", actor="alice", analysis=ANALYSIS)
    clock.now += 31
    rollouts.tick()
    assert weight(store) == 10  # one failure tolerated (max_failures=1)
    assert store.read()[1].rollouts[MODEL].failures == 1
    clock.now += 31
    rollouts.tick()
    rollout = store.read()[1].rollouts[MODEL]
    assert rollout.status == "failed" and weight(store) == 0
    assert "rolled back after 2 failed checks: error_ratio" in rollout.reason
    assert store.history()[-1].event == "rolled_back"
    assert store.history()[-1].reason == rollout.reason
    assert promoted == []


def test_no_traffic_never_promotes(store: FileStore) -> None:
    quiet = side(requests=0)
    rollouts, clock, promoted = controller(store, *([quiet] * 10))
    rollouts.start(MODEL, "2", actor="alice", analysis=ANALYSIS)
    for _ in range(10):
        clock.now += 31
        rollouts.tick()
    rollout = store.read()[1].rollouts[MODEL]
    assert (rollout.status, rollout.step, rollout.failures) == ("running", 0, 0)
    assert rollout.reason.startswith("waiting for data")
    assert promoted == []


def test_one_rollout_per_model_and_never_of_the_stable_version(store: FileStore) -> None:
    rollouts, _, _ = controller(store)
    with pytest.raises(RolloutError, match="already the stable version"):
        rollouts.start(MODEL, "1", actor="alice")
    rollouts.start(MODEL, "2", actor="alice", analysis=ANALYSIS)
    with pytest.raises(RolloutError, match="rollout abort"):
        rollouts.start(MODEL, "3", actor="alice")


def test_abort_sends_the_canary_to_zero_and_is_recorded(store: FileStore) -> None:
    rollouts, _, _ = controller(store)
    rollouts.start(MODEL, "2", actor="alice", analysis=ANALYSIS)
    rollouts.abort(MODEL, actor="bob", reason="paged")
    assert weight(store) == 0 and store.read()[1].rollouts[MODEL].status == "aborted"
    last = store.history()[-1]
    assert (last.event, last.actor, last.reason, last.weight) == ("aborted", "bob", "paged", 0)
    with pytest.raises(RolloutError, match="no rollout of fraud-scoring is in progress"):
        rollouts.abort(MODEL, actor="bob")


def test_a_routing_change_by_hand_stops_the_rollout_without_touching_routing(
    store: FileStore,
) -> None:
    rollouts, clock, _ = controller(store, side())
    rollouts.start(MODEL, "2", actor="alice", analysis=ANALYSIS)
    by_hand = RoutingTable(models={MODEL: ModelRoute(stable=Stable(version="3"))})
    routing.save(store.routing_file, by_hand)
    clock.now += 31
    rollouts.tick()
    assert store.read()[0] == by_hand
    assert "routing changed outside the rollout" in store.read()[1].rollouts[MODEL].reason


def test_a_promotion_interrupted_after_marking_converges_on_the_next_pass(
    store: FileStore,
) -> None:
    rollouts, _, promoted = controller(store)
    rollouts.start(MODEL, "2", actor="alice", analysis=ANALYSIS)
    first = rollouts.promote_in_registry

    def failing(model: str, version: str) -> None:
        raise RolloutError("MLflow is not reachable")

    rollouts.promote_in_registry = failing  # the registry is away: stops after marking
    with pytest.raises(RolloutError):
        rollouts.promote(MODEL, actor="alice")
    assert store.read()[1].rollouts[MODEL].status == "promoting"
    rollouts.promote_in_registry = first
    rollouts.tick()
    assert store.read()[0].models[MODEL].stable.version == "2"
    assert promoted == [(MODEL, "2")]


def test_history_answers_what_served_at_any_instant(tmp_path: Path) -> None:
    history = HistoryFile(tmp_path / "history.jsonl")
    start = HistoryRecord(model=MODEL, event="started", stable="1", canary="2", weight=10)
    later = start.time + timedelta(minutes=5)
    promoted = HistoryRecord(time=later, model=MODEL, event="promoted", stable="2")
    retrain = HistoryRecord(time=later + timedelta(minutes=1), model=MODEL, event="retrain")
    history.append([start, promoted, retrain])
    records = history.records()
    assert served_at(records, start.time - timedelta(seconds=1)) == {}
    assert served_at(records, start.time + timedelta(minutes=1))[MODEL] == start
    assert served_at(records, later + timedelta(hours=1))[MODEL] == promoted  # retrain skipped


def test_a_torn_last_history_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    HistoryFile(path).append([HistoryRecord(model=MODEL, event="route", stable="1")])
    with open(path, "a") as handle:
        handle.write('{"time": "2026-')
    assert [r.stable for r in HistoryFile(path).records()] == ["1"]


# --- Alertmanager notifications ----------------------------------------------------------


def test_alertmanager_notifications_hold_alerts_as_firing_until_resolved() -> None:
    clock = Clock()
    inbox = AlertInbox(hold_s=600, clock=clock)
    firing = {"status": "firing", "labels": {"alertname": "ShipyardDataDrift", "model": MODEL}}
    other = {"status": "firing", "labels": {"alertname": "ShipyardTritonQueueHigh"}}
    assert inbox.receive({"alerts": [firing, other]}) == 2
    assert inbox.firing(["ShipyardDataDrift"]) == {MODEL: ["ShipyardDataDrift"]}
    assert inbox.firing(["ShipyardPredictionDrift"]) == {}
    inbox.receive({"alerts": [{**firing, "status": "resolved"}]})
    assert inbox.firing(["ShipyardDataDrift"]) == {}
    inbox.receive({"alerts": [firing]})
    clock.now += 601  # no repeat within the hold: forgotten
    assert inbox.firing(["ShipyardDataDrift"]) == {}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "expected an Alertmanager notification"),
        ({"alerts": [{"labels": {}}]}, "alerts[0].labels.alertname is missing"),
    ],
)
def test_malformed_notifications_are_refused_naming_the_field(payload, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        AlertInbox().receive(payload)


def test_alert_sources_merge() -> None:
    assert merged({MODEL: ["A"]}, {MODEL: ["B", "A"]}, {"other": ["C"]}) == {
        MODEL: ["A", "B"],
        "other": ["C"],
    }


# --- the cluster adapter ------------------------------------------------------------------


class FakeConfigMaps:
    """The two calls ConfigMapStore makes, with the API server's optimistic concurrency: a
    patch naming a stale resourceVersion is refused with 409."""

    class Conflict(Exception):
        status = 409
        body = '{"message": "the object has been modified"}'

    def __init__(self, data: dict[str, str]) -> None:
        self.data, self.version, self.interleave = dict(data), 1, None

    def read_namespaced_config_map(self, name: str, namespace: str):
        from types import SimpleNamespace

        return SimpleNamespace(
            data=dict(self.data), metadata=SimpleNamespace(resource_version=str(self.version))
        )

    def patch_namespaced_config_map(self, name: str, namespace: str, body: dict) -> None:
        if self.interleave is not None:  # another writer gets in first, once
            self.interleave, writer = None, self.interleave
            writer(self)
        if body["metadata"]["resourceVersion"] != str(self.version):
            raise self.Conflict()
        self.data.update(body["data"])
        self.version += 1


def test_the_configmap_store_applies_a_rollout_in_one_guarded_patch() -> None:
    table = RoutingTable(models={MODEL: ModelRoute(stable=Stable(version="1"))})
    api = FakeConfigMaps({"routing.yaml": routing.render(table)})
    store = ConfigMapStore("serving", "shipyard-routing", api=api)

    def someone_else(server: FakeConfigMaps) -> None:
        server.data["note"] = "written in between"
        server.version += 1

    api.interleave = someone_else
    made = Controller(store=store, clock=Clock())
    made.start(MODEL, "2", actor="alice", analysis=ANALYSIS)
    assert api.data["note"] == "written in between"  # the retry kept the other write
    assert routing.parse(api.data["routing.yaml"]).models[MODEL].canary.weight == 10
    assert store.read()[1].rollouts[MODEL].status == "running"
    assert [r.event for r in store.history()] == ["started"]
