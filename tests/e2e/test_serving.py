"""Online serving end to end on the real embedded stack: MLflow, two Triton pools, Feast and the
gateway as real processes; models come from the real training pipeline.

Covers: predict with audit and metrics; publishing (a version that fails to load changes
nothing); canary split, stickiness and hot reload under load; the admin API; killing the
primary Triton under load; both Tritons unreachable; online store down; bad inputs; kill -9 of
the gateway under load; schemathesis against the OpenAPI schema.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from serving.audit import count_records, iter_records
from shipyard import routing
from shipyard.data.offline_source import write_offline_source
from shipyard.data.synthetic import SyntheticConfig, generate
from shipyard.routing import Canary, ModelRoute, RoutingTable, Stable
from shipyard.settings import Settings
from shipyard.stack import control
from shipyard.stack.layout import StateLayout
from shipyard.stack.probes import free_ports
from shipyard.stack.state import stack_processes
from shipyard.stack.supervisor import inherited_env
from tests.conftest import isolated_settings
from tests.e2e.test_platform_cli import shipyard, status_json
from tests.load import SteadyLoad

# The module fixture runs two pipelines (about 1.5 min each, more on a loaded machine).
pytestmark = pytest.mark.timeout(900)
MODEL = "fraud-scoring"
PREDICT_KEY = "predict-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef01"
OWNER = ["--owner", "alice", "--team", "fraud-risk"]
RELAXED = ["--max-auc-drop", "1", "--min-slice-auc", "0", "--max-slice-auc-drop", "1"]
PII_FIELDS = {"name", "email", "phone", "card_number", "email_token", "card_number_token"}


@dataclass
class Served:
    settings: Settings
    env: dict[str, str]
    known: list[int]  # customers with online features

    @property
    def url(self) -> str:
        return self.settings.url("gateway")

    def predict_url(self, model: str = MODEL) -> str:
        return f"{self.url}/v1/models/{model}/predict"


def instance(customer: int, **changes: object) -> dict:
    return {
        "customer_id": customer,
        "merchant_id": 1 + customer % 50,
        "amount": 42.5 + customer % 300,
        "merchant_category": "grocery",
        "channel": "online",
        "device_type": "browser",
        **changes,
    }


def body(customer: int) -> dict:
    return {"instances": [instance(customer)]}


def keyed(key: str = PREDICT_KEY) -> dict[str, str]:
    return {"X-API-Key": key}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    settings = isolated_settings(
        tmp_path_factory.mktemp("serving") / "state",
        serving={"api_keys": [PREDICT_KEY], "admin_keys": [ADMIN_KEY], "breaker_open_s": 0.5},
    )
    env = {**inherited_env(), **settings.to_env()}
    control.up(settings)
    try:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        config = SyntheticConfig(rows=20_000, start=today - timedelta(days=10), days=10, seed=5)
        write_offline_source(generate(config), config, StateLayout(settings.state_dir).raw_data)
        for args in (
            ["refresh"],
            ["pipeline", "run", "training", "--local", *OWNER, "--n-estimators", "30"],
            # A second, different version for the canary (the gate is relaxed on purpose).
            ["pipeline", "run", "training", "--local", *OWNER, "--n-estimators", "45", *RELAXED],
            ["serve", "publish", MODEL, "--version", "1"],
        ):
            done = shipyard(env, *args, timeout_s=600)
            assert done.returncode == 0, (args, _failure(done.stdout), done.stderr[-2000:])
        known = _known_customers(settings)
        assert len(known) >= 300, f"only {len(known)} customers have online features"
        yield Served(settings, env, known)
    finally:
        control.down(settings)
    assert stack_processes(settings.state_dir) == []


def _failure(output: str) -> str:
    """The failing step's traceback from a pipeline run's output (the tail hides it)."""
    start = output.rfind("Traceback")
    return output[start : start + 4000] if start >= 0 else output[-3000:]


def _known_customers(settings: Settings) -> list[int]:
    url = f"{settings.url('gateway')}/v1/models/{MODEL}/predict"
    known = []
    with httpx.Client(headers=keyed(), timeout=5) as client:
        for customer in range(1, 1500):
            if client.post(url, json=body(customer)).status_code == 200:
                known.append(customer)
    return known


def audit_dir(settings: Settings) -> Path:
    return StateLayout(settings.state_dir).audit


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def set_routing(served: Served, table: RoutingTable) -> None:
    path = StateLayout(served.settings.state_dir).routing_file
    routing.save(path, table)
    expected = table.models[MODEL]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        detail = httpx.get(f"{served.url}/v1/models/{MODEL}", headers=keyed()).json()
        canary = expected.canary
        if detail["stable_version"] == expected.stable.version and detail["canary_weight"] == (
            canary.weight if canary else 0.0
        ):
            return
        time.sleep(0.1)
    pytest.fail("the gateway did not apply the routing file within 10 s")


def stable_only(served: Served) -> None:
    set_routing(served, RoutingTable(models={MODEL: ModelRoute(stable=Stable(version="1"))}))


@pytest.mark.slow
def test_explanations_add_up_to_the_served_score_and_are_audited(served: Served) -> None:
    stable_only(served)
    customers = served.known[:5]
    response = httpx.post(
        f"{served.url}/v1/models/{MODEL}/explain",
        json={"instances": [instance(c) for c in customers]},
        headers=keyed(),
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    for prediction in predictions:
        explanation = prediction["explanation"]
        contributions = explanation["contributions"]
        assert len(contributions) > 10 and all(math.isfinite(v) for v in contributions.values())
        raw = explanation["base_value"] + sum(contributions.values())
        assert math.isclose(raw, explanation["raw_score"], abs_tol=1e-9)
        # The served score is the sigmoid of the raw score (ONNX parity: 1e-5).
        assert abs(1 / (1 + math.exp(-raw)) - prediction["score"]) < 1e-5
    audited = {r["prediction_id"] for r in iter_records(audit_dir(served.settings))}
    assert {p["prediction_id"] for p in predictions} <= audited
    plain = httpx.post(served.predict_url(), json=body(customers[0]), headers=keyed()).json()
    assert "explanation" not in plain["predictions"][0]


@pytest.mark.slow
def test_predict_is_audited_and_measured(served: Served) -> None:
    customers = served.known[:3]
    response = httpx.post(
        served.predict_url(),
        json={"instances": [instance(c) for c in customers]},
        headers=keyed(),
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model"] == MODEL and answer["latency_ms"] > 0
    assert len(answer["predictions"]) == 3
    for prediction in answer["predictions"]:
        assert 0 <= prediction["score"] <= 1
        assert (prediction["version"], prediction["route"]) == ("1", "stable")
        assert prediction["backend"] == "triton-primary"
        assert prediction["prediction_id"].startswith(answer["request_id"])

    records = {r["prediction_id"]: r for r in iter_records(audit_dir(served.settings))}
    for customer, prediction in zip(customers, answer["predictions"], strict=True):
        record = records[prediction["prediction_id"]]
        assert record["customer_id"] == customer and record["score"] == prediction["score"]
        assert (record["model"], record["version"], record["backend"]) == (
            MODEL,
            "1",
            "triton-primary",
        )
        assert record["feature_service"] and len(record["features_sha256"]) == 64
        assert not PII_FIELDS & set(record) and "features" not in record

    metrics = httpx.get(f"{served.url}/metrics").text
    labels = {"model": MODEL, "version": "1", "route": "stable", "backend": "triton-primary"}
    assert metric(metrics, "shipyard_gateway_predictions_total", **labels) >= 3
    assert metric(metrics, "shipyard_gateway_requests_total", **labels, status="200") >= 1
    assert metric(metrics, "shipyard_gateway_prediction_score_count", model=MODEL) >= 3
    assert metric(metrics, "shipyard_gateway_audit_records_total") >= 3

    detail = httpx.get(f"{served.url}/v1/models/{MODEL}", headers=keyed()).json()
    (v1,) = detail["versions"]
    assert (v1["version"], v1["owner"], v1["team"]) == ("1", "alice", "fraud-risk")
    assert v1["dataset_digest"] and v1["run_id"]
    assert [b["circuit"] for b in detail["backends"]] == ["closed"] * 3


@pytest.mark.slow
def test_predict_answers_alike_through_the_shortcut_and_through_fastapi(served: Served) -> None:
    """An application/json predict request takes GatewayApp's shortcut; one sent as a JSON
    subtype (which FastAPI reads as JSON all the same) goes through the framework. Same answer,
    both audited, both counted."""
    stable_only(served)
    raw = json.dumps({"instances": [instance(c) for c in served.known[:2]]}).encode()
    before = httpx.get(f"{served.url}/metrics").text
    answers = [
        httpx.post(served.predict_url(), content=raw, headers={**keyed(), **content_type})
        for content_type in (
            {"content-type": "application/json"},
            {"content-type": "application/vnd.shipyard+json"},
        )
    ]
    for response in answers:
        assert response.status_code == 200, response.text
    short, framework = (r.json() for r in answers)
    assert short["request_id"] != framework["request_id"]
    for a, b in zip(short["predictions"], framework["predictions"], strict=True):
        assert {**a, "prediction_id": ""} == {**b, "prediction_id": ""}
    audited = {r["prediction_id"] for r in iter_records(audit_dir(served.settings))}
    for answer in (short, framework):
        assert {p["prediction_id"] for p in answer["predictions"]} <= audited
    after = httpx.get(f"{served.url}/metrics").text
    labels = {"model": MODEL, "route": "stable", "status": "200"}
    counted = metric(after, "shipyard_gateway_requests_total", **labels) - metric(
        before, "shipyard_gateway_requests_total", **labels
    )
    assert counted == 2


@pytest.mark.slow
def test_a_version_that_fails_to_load_changes_nothing(served: Served) -> None:
    repository = StateLayout(served.settings.state_dir).triton_models / MODEL
    onnx = repository / "2" / "model.onnx"
    good = onnx.read_bytes()
    backend = repository / "2" / "model.py"
    good_backend = backend.read_text()
    policy_before = (repository / "config.pbtxt").read_text()
    try:
        onnx.write_bytes(b"not an onnx model")
        refused = shipyard(served.env, "serve", "publish", MODEL, "--version", "2")
        assert refused.returncode == 1 and "does not load in ONNX Runtime" in refused.stderr
        assert "Traceback" not in refused.stderr
        onnx.write_bytes(good)
        # Loads in ONNX Runtime but not in Triton (its Python backend model is broken).
        backend.write_text("raise RuntimeError('broken on purpose')\n")
        refused = shipyard(served.env, "serve", "publish", MODEL, "--version", "2")
        assert refused.returncode == 1 and "could not load" in refused.stderr, refused.stderr
    finally:
        onnx.write_bytes(good)
        backend.write_text(good_backend)
    assert (repository / "config.pbtxt").read_text() == policy_before
    assert not (repository / "2" / "serving.json").exists()
    response = httpx.post(served.predict_url(), json=body(served.known[0]), headers=keyed())
    assert response.status_code == 200 and response.json()["predictions"][0]["version"] == "1"
    assert response.json()["predictions"][0]["backend"] == "triton-primary"

    published = shipyard(served.env, "serve", "publish", MODEL, "--version", "2", "--route", "none")
    assert published.returncode == 0, published.stderr
    assert "triton-primary loaded, triton-cpu loaded" in published.stdout


@pytest.mark.slow
def test_canary_split_is_weighted_sticky_and_reloads_under_load(served: Served) -> None:
    with_canary = RoutingTable(
        models={
            MODEL: ModelRoute(stable=Stable(version="1"), canary=Canary(version="2", weight=20))
        }
    )
    set_routing(served, with_canary)
    customers = served.known
    first = _versions(served, customers)
    share = sum(v == "2" for v in first.values()) / len(first)
    sd = math.sqrt(0.2 * 0.8 / len(first))
    assert abs(share - 0.2) < 4.5 * sd, (share, len(first))
    assert _versions(served, customers) == first  # one customer, one version

    url = served.predict_url()
    with SteadyLoad(url, body, customers, keyed(), threads=4, interval_s=0.005) as load:
        for weight in (50, 0, 35, 20):
            canary = Canary(version="2", weight=weight)
            table = RoutingTable(
                models={MODEL: ModelRoute(stable=Stable(version="1"), canary=canary)}
            )
            routing.save(StateLayout(served.settings.state_dir).routing_file, table)
            time.sleep(0.6)
    outcomes = load.snapshot()
    assert len(outcomes) > 200
    assert Counter(o.status for o in outcomes) == {200: len(outcomes)}
    assert {o.prediction["version"] for o in outcomes} == {"1", "2"}

    admin = f"{served.url}/v1/admin/routes/{MODEL}"
    assert httpx.put(admin, json={"canary_weight": 30}).status_code == 401
    assert httpx.put(admin, json={"canary_weight": 30}, headers=keyed()).status_code == 403
    refused = httpx.put(admin, json={"canary_version": "7"}, headers=keyed(ADMIN_KEY))
    assert refused.status_code == 409 and "not published" in refused.json()["error"]["message"]
    changed = httpx.put(admin, json={"canary_weight": 30}, headers=keyed(ADMIN_KEY))
    assert changed.status_code == 200 and changed.json()["canary_weight"] == 30
    on_disk = routing.load(StateLayout(served.settings.state_dir).routing_file)
    assert on_disk.models[MODEL].canary.weight == 30
    stable_only(served)


def _versions(served: Served, customers: list[int]) -> dict[int, str]:
    versions = {}
    with httpx.Client(headers=keyed(), timeout=5) as client:
        for customer in customers:
            response = client.post(served.predict_url(), json=body(customer))
            assert response.status_code == 200, response.text
            versions[customer] = response.json()["predictions"][0]["version"]
    return versions


@pytest.mark.slow
def test_killing_the_primary_triton_under_load_falls_back_and_recovers(served: Served) -> None:
    stable_only(served)
    triton_pid = status_json(served.env)["components"]["triton"]["pid"]
    url = served.predict_url()
    with SteadyLoad(url, body, served.known[:200], keyed(), threads=4, interval_s=0.01) as load:
        time.sleep(1.0)
        os.kill(triton_pid, signal.SIGKILL)
        assert load.wait_for(
            lambda o: o.status == 200 and o.prediction["backend"] == "triton-cpu", 10
        )
        # The supervisor restarts Triton; it loads the published versions; the breaker's probe
        # finds it and closes.
        back = load.wait_for(
            lambda o: o.status == 200 and o.prediction["backend"] == "triton-primary", 60
        )
        time.sleep(0.5)
    assert back, "the primary Triton never served again"
    outcomes = load.snapshot()
    ok = sum(o.status == 200 for o in outcomes)
    assert ok / len(outcomes) >= 0.999, Counter(o.status for o in outcomes)
    scores: dict[int, dict[str, float]] = {}
    for o in outcomes:
        if o.status == 200:
            scores.setdefault(o.customer, {})[o.prediction["backend"]] = o.prediction["score"]
    both = [s for s in scores.values() if {"triton-primary", "triton-cpu"} <= s.keys()]
    assert both and all(abs(s["triton-primary"] - s["triton-cpu"]) < 1e-6 for s in both)

    metrics = httpx.get(f"{served.url}/metrics").text
    transitions = "shipyard_gateway_circuit_transitions_total"
    assert metric(metrics, transitions, backend="triton-primary", state="open") >= 1
    assert metric(metrics, transitions, backend="triton-primary", state="closed") >= 1
    assert metric(metrics, "shipyard_gateway_fallbacks_total", to_backend="triton-cpu") >= 1
    assert metric(metrics, "shipyard_gateway_circuit_state", backend="triton-primary") == 0


class EdgeGateway:
    """A second gateway process over the same model repository, routing file and Feast
    registry, with its own state dir (its own audit log) and overridden settings."""

    def __init__(self, served: Served, root: Path, workers: int = 1, **env: str) -> None:
        (port,) = free_ports(1)
        layout = StateLayout(served.settings.state_dir)
        state = root / "state"
        state.mkdir(parents=True, exist_ok=True)
        if not (state / "feast").exists():
            (state / "feast").symlink_to(layout.feast)
        self.state = state
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **inherited_env(),
            **served.settings.to_env(),
            "SHIPYARD_STATE_DIR": str(state),
            "SHIPYARD_PORTS__GATEWAY": str(port),
            "SHIPYARD_SERVING__ROUTING_FILE": str(layout.routing_file),
            "SHIPYARD_SERVING__MODEL_REPOSITORY": str(layout.triton_models),
            **env,
        }
        self.argv = [
            sys.executable, "-m", "uvicorn", "serving.app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            "--workers", str(workers),
        ]  # fmt: skip
        if workers > 1:  # as the stack does: workers share metric files in an empty folder
            metrics_dir = root / "metrics"
            metrics_dir.mkdir()
            self.env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        self.process: subprocess.Popen | None = None

    def start(self) -> EdgeGateway:
        self.log = open(self.state / "gateway.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(self.argv, env=self.env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        pytest.fail("the edge gateway did not start: " + (self.state / "gateway.log").read_text())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        self.log.close()

    @property
    def predict_url(self) -> str:
        return f"{self.url}/v1/models/{MODEL}/predict"


@pytest.mark.slow
def test_over_grpc_the_primary_triton_answers_the_same_score(
    served: Served, tmp_path: Path
) -> None:
    stable_only(served)
    ports = served.settings.ports
    edge = EdgeGateway(
        served,
        tmp_path,
        SHIPYARD_SERVING__PRIMARY_URL=f"grpc://127.0.0.1:{ports.triton_grpc}",
        SHIPYARD_SERVING__CPU_URL=f"grpc://127.0.0.1:{ports.triton_cpu_grpc}",
    ).start()
    try:
        for customer in served.known[:5]:
            over_http = httpx.post(served.predict_url(), json=body(customer), headers=keyed())
            over_grpc = httpx.post(edge.predict_url, json=body(customer), headers=keyed())
            assert over_grpc.status_code == 200, over_grpc.text
            expected, got = over_http.json()["predictions"][0], over_grpc.json()["predictions"][0]
            assert expected["backend"] == got["backend"] == "triton-primary"
            assert abs(got["score"] - expected["score"]) < 1e-6
        detail = httpx.get(f"{edge.url}/v1/models/{MODEL}", headers=keyed()).json()
        urls = {b["name"]: b["url"] for b in detail["backends"]}
        assert urls["triton-primary"] == f"grpc://127.0.0.1:{ports.triton_grpc}"
    finally:
        edge.stop()


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_with_both_tritons_down_in_process_onnx_runtime_answers(
    served: Served, tmp_path: Path, transport: str
) -> None:
    stable_only(served)
    dead_a, dead_b = free_ports(2)
    edge = EdgeGateway(
        served,
        tmp_path,
        SHIPYARD_SERVING__PRIMARY_URL=f"{transport}://127.0.0.1:{dead_a}",
        SHIPYARD_SERVING__CPU_URL=f"{transport}://127.0.0.1:{dead_b}",
    ).start()
    try:
        customer = served.known[0]
        reference = httpx.post(served.predict_url(), json=body(customer), headers=keyed()).json()
        for _ in range(10):  # enough to open both breakers
            response = httpx.post(edge.predict_url, json=body(customer), headers=keyed())
            assert response.status_code == 200, response.text
            prediction = response.json()["predictions"][0]
            assert prediction["backend"] == "in-process"
            assert abs(prediction["score"] - reference["predictions"][0]["score"]) < 1e-6
        detail = httpx.get(f"{edge.url}/v1/models/{MODEL}", headers=keyed()).json()
        circuits = {b["name"]: b["circuit"] for b in detail["backends"]}
        assert circuits == {"triton-primary": "open", "triton-cpu": "open", "in-process": "closed"}
    finally:
        edge.stop()


@pytest.mark.slow
def test_online_store_down_is_a_fast_clear_503(served: Served, tmp_path: Path) -> None:
    stable_only(served)
    (dead,) = free_ports(1)
    edge = EdgeGateway(
        served, tmp_path, SHIPYARD_PROFILE="redis", SHIPYARD_PORTS__REDIS=str(dead)
    ).start()
    try:
        started = time.monotonic()
        response = httpx.post(edge.predict_url, json=body(served.known[0]), headers=keyed())
        took = time.monotonic() - started
        assert response.status_code == 503 and response.headers["retry-after"]
        error = response.json()["error"]
        assert error["code"] == "feature_store_unavailable" and "redis" in error["message"]
        assert took < 1.0
    finally:
        edge.stop()


@pytest.mark.slow
def test_kill_9_under_load_loses_no_answered_prediction(served: Served, tmp_path: Path) -> None:
    stable_only(served)
    edge = EdgeGateway(served, tmp_path).start()
    with SteadyLoad(edge.predict_url, body, served.known, keyed(), threads=4, interval_s=0) as load:
        time.sleep(2.0)
        edge.stop(signal.SIGKILL)
        time.sleep(0.3)
    outcomes = load.snapshot()
    answered = {o.prediction["prediction_id"] for o in outcomes if o.status == 200}
    unanswered = sum(o.status == 0 for o in outcomes)
    assert len(answered) > 100 and all(o.status in (200, 0) for o in outcomes)
    recorded = {r["prediction_id"] for r in iter_records(edge.state / "audit")}
    assert answered <= recorded  # every answer has its record
    # A record may exist for a request killed after its write and before its answer.
    assert len(recorded - answered) <= unanswered

    edge.start()  # recovery runs; the log keeps appending
    try:
        response = httpx.post(edge.predict_url, json=body(served.known[0]), headers=keyed())
        assert response.status_code == 200
    finally:
        edge.stop()  # graceful: flushed before exit
    assert count_records(edge.state / "audit") == len(recorded) + 1


@pytest.mark.slow
def test_several_workers_share_metrics_and_audit(served: Served, tmp_path: Path) -> None:
    stable_only(served)
    edge = EdgeGateway(served, tmp_path, workers=2).start()
    try:
        with httpx.Client(headers=keyed(), timeout=10) as client:
            for customer in served.known[:60]:
                # A new connection each time: the kernel spreads them over both workers.
                response = httpx.post(edge.predict_url, json=body(customer), headers=keyed())
                assert response.status_code == 200, response.text
            metrics = client.get(f"{edge.url}/metrics").text
    finally:
        edge.stop()
    assert metric(metrics, "shipyard_gateway_predictions_total", model=MODEL) == 60
    assert metric(metrics, "shipyard_gateway_audit_records_total") == 60
    segments = list((edge.state / "audit").glob("*/audit-*.jsonl"))
    # One segment per worker that served (accept() usually spreads 60 connections over both).
    assert count_records(edge.state / "audit") == 60 and 1 <= len(segments) <= 2


@pytest.mark.slow
def test_overload_is_refused_fast_with_retry_after(served: Served, tmp_path: Path) -> None:
    stable_only(served)
    edge = EdgeGateway(served, tmp_path, SHIPYARD_SERVING__MAX_IN_FLIGHT="2").start()
    try:
        url = edge.predict_url
        with SteadyLoad(url, body, served.known, keyed(), threads=16, interval_s=0) as load:
            time.sleep(3)
        outcomes = load.snapshot()
        statuses = Counter(o.status for o in outcomes)
        assert set(statuses) == {200, 503} and statuses[503] > 0 and statuses[200] > 100, statuses
        refused = [o for o in outcomes if o.status == 503]
        assert all(o.body["error"]["code"] == "overloaded" and o.retry_after for o in refused)
        response = httpx.get(f"{edge.url}/metrics")
        assert metric(response.text, "shipyard_gateway_rejected_total", reason="overloaded") == len(
            refused
        )
        with httpx.Client(headers=keyed()) as client:  # and it still answers afterwards
            assert client.post(url, json=body(served.known[0])).status_code == 200
    finally:
        edge.stop()


@pytest.mark.slow
def test_drift_and_online_quality_are_measured(served: Served, tmp_path: Path) -> None:
    stable_only(served)
    edge = EdgeGateway(served, tmp_path).start()  # a fresh monitor: only this test's traffic
    try:
        scores: dict[str, float] = {}
        with httpx.Client(headers=keyed(), timeout=10) as client:
            for i, customer in enumerate(served.known[:400]):
                # Half the traffic with amounts far above every customer's usual spend.
                amount = 50_000.0 if i % 2 else 42.5 + customer % 300
                response = client.post(edge.predict_url, json=body_with(customer, amount))
                assert response.status_code == 200, response.text
                prediction = response.json()["predictions"][0]
                scores[prediction["prediction_id"]] = prediction["score"]
            median = sorted(scores.values())[len(scores) // 2]
            for prediction_id, score in scores.items():
                label = int(score > median)  # a perfectly ranked outcome: AUC 1
                receipt = client.post(
                    f"{edge.url}/v1/feedback", json={"prediction_id": prediction_id, "label": label}
                )
                assert receipt.status_code == 202 and receipt.json()["matched"], receipt.text
            unknown = client.post(
                f"{edge.url}/v1/feedback", json={"prediction_id": "ab", "label": 1}
            )
            assert unknown.status_code == 202 and not unknown.json()["matched"]
            bad = client.post(f"{edge.url}/v1/feedback", json={"prediction_id": "ab", "label": 2})
            assert bad.status_code == 422 and bad.json()["error"]["field"] == "label"
            time.sleep(2.5)  # one monitor refresh
            metrics = client.get(f"{edge.url}/metrics").text
    finally:
        edge.stop()
    version = {"model": MODEL, "version": "1"}
    assert metric(metrics, "shipyard_gateway_drift_window_rows", **version) == 400
    ratio = metric(
        metrics, "shipyard_gateway_feature_psi", **version, feature="amount_to_customer_mean_7d"
    )
    assert ratio > 0.2  # data drift on the feature the shifted amounts move
    assert metric(metrics, "shipyard_gateway_score_psi", **version) >= 0
    assert metric(metrics, "shipyard_gateway_online_auc", **version) == pytest.approx(1.0)
    assert metric(metrics, "shipyard_gateway_labelled_predictions", **version) == 400
    labels = list(iter_records(edge.state / "feedback"))
    assert len(labels) == 401 and sum(r["matched"] for r in labels) == 400


def body_with(customer: int, amount: float) -> dict:
    return {"instances": [instance(customer, amount=amount)]}


BAD_INPUTS = [
    # (description, path suffix, raw body, status, field)
    ("malformed JSON", "", b'{"instances": [', 400, "body"),
    ("NaN amount", "", b'{"instances": [{"customer_id": 1, "merchant_id": 1, "amount": NaN, '
     b'"merchant_category": "grocery", "channel": "pos", "device_type": "chip"}]}',
     422, "instances[0].amount"),
    ("Infinity amount", "", b'{"instances": [{"customer_id": 1, "merchant_id": 1, "amount": '
     b'Infinity, "merchant_category": "grocery", "channel": "pos", "device_type": "chip"}]}',
     422, "instances[0].amount"),
]  # fmt: skip


@pytest.mark.slow
def test_bad_inputs_are_4xx_naming_the_field(served: Served) -> None:
    stable_only(served)
    known = served.known[0]
    amount, channel = "instances[0].amount", "instances[0].channel"
    json_cases = [
        ("amount is text", {"instances": [instance(known, amount="abc")]}, 422, amount),
        ("negative id", {"instances": [instance(-1)]}, 422, "instances[0].customer_id"),
        ("fractional id", {"instances": [instance(1.5)]}, 422, "instances[0].customer_id"),
        ("missing field", {"instances": [{"customer_id": known}]}, 422, "instances[0].merchant_id"),
        ("unknown field", {"instances": [instance(known, ssn="123")]}, 422, "instances[0].ssn"),
        ("no instances", {"instances": []}, 422, "instances"),
        ("instances not a list", {"instances": {"a": 1}}, 422, "instances"),
        ("not an object", [1, 2], 422, "body"),
        ("too many", {"instances": [instance(known)] * 300}, 422, "instances"),
        ("unknown version", {"instances": [instance(known)], "version": "99"}, 404, "version"),
        ("bad version", {"instances": [instance(known)], "version": "../1"}, 422, "version"),
        ("unknown entity", {"instances": [instance(10**12)]}, 404, "instances[0].customer_id"),
        ("huge amount", {"instances": [instance(known, amount=1e300)]}, 422, amount),
        ("long category", {"instances": [instance(known, channel="x" * 65)]}, 422, channel),
    ]  # fmt: skip
    with httpx.Client(headers=keyed(), timeout=10) as client:
        for name, payload, status, field in json_cases:
            response = client.post(served.predict_url(), json=payload)
            _check_error(name, response, status, field)
        for name, _, raw, status, field in BAD_INPUTS:
            response = client.post(
                served.predict_url(), content=raw, headers={"content-type": "application/json"}
            )
            _check_error(name, response, status, field)
        for model, status, field in (
            ("no-such-model", 404, "model"),
            ("UPPER", 422, "model"),
            ("..%2F..%2Fetc", 404, None),  # decoded to another path: no such route
        ):
            response = client.post(served.predict_url(model), json=body(known))
            _check_error(f"model {model}", response, status, field)
        huge = b'{"instances": [' + b" " * (2 * 1024 * 1024) + b"]}"
        response = client.post(
            served.predict_url(), content=huge, headers={"content-type": "application/json"}
        )
        _check_error("oversized body", response, 413, "body")
    for headers in ({}, {"X-API-Key": "wrong-key-wrong-key"}, {"Authorization": "Bearer nope"}):
        response = httpx.post(served.predict_url(), json=body(known), headers=headers)
        _check_error(f"auth {headers}", response, 401, None)
    response = httpx.post(
        served.predict_url(), json=body(known), headers={"Authorization": f"Bearer {PREDICT_KEY}"}
    )
    assert response.status_code == 200
    assert httpx.get(f"{served.url}/healthz").status_code == 200  # no restart happened


def _check_error(name: str, response: httpx.Response, status: int, field: str | None) -> None:
    assert response.status_code == status, (name, response.status_code, response.text)
    error = response.json()["error"]
    assert error["message"], name
    if field is not None:
        assert error["field"] == field, (name, error)
        assert field.split(".")[-1].split("[")[0] in error["message"] or status == 404, (
            name,
            error,
        )


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_or_schema_violation(served: Served) -> None:
    stable_only(served)
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "run",
            f"{served.url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "40",
            "--header",
            f"X-API-Key: {ADMIN_KEY}",
            "--no-color",
            "--seed",
            "7",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:]
    stable_only(served)


@pytest.mark.slow
def test_forget_erases_a_served_customer_everywhere(served: Served) -> None:
    """`shipyard forget` on the running stack: the gateway's live audit segment is rotated and
    tombstoned, the online store and offline data hold nothing, the versions trained on the
    customer are due for retraining, and the gateway no longer knows the customer."""
    stable_only(served)
    customer, other = served.known[-1], served.known[0]
    with httpx.Client(headers=keyed(), timeout=10) as client:
        answers = [client.post(served.predict_url(), json=body(customer)) for _ in range(3)]
    assert all(a.status_code == 200 for a in answers)
    records = count_records(audit_dir(served.settings))

    done = shipyard(served.env, "forget", "--customer", str(customer), "--json", timeout_s=300)
    assert done.returncode == 0, done.stderr[-2000:]
    served.known.remove(customer)  # later tests must not pick the erased customer
    report = json.loads(done.stdout)
    assert set(report["remaining"].values()) == {0}
    assert report["removed"]["audit log"] >= 3 and report["removed"]["online store"] > 0
    assert report["removed"]["raw data"] > 0 and report["removed"]["pipeline artifacts"] > 0
    assert {m.split("/")[0] for m in report["models"]} == {MODEL}

    verified = shipyard(served.env, "forget", "--customer", str(customer), "--verify")
    assert verified.returncode == 0, verified.stdout
    erased = [r for r in iter_records(audit_dir(served.settings)) if "erased" in r]
    assert len(erased) == report["removed"]["audit log"]
    assert all(r["erased"]["erasure_id"] == report["erasure_id"] for r in erased)
    with httpx.Client(headers=keyed(), timeout=10) as client:
        gone = client.post(served.predict_url(), json=body(customer))
        assert gone.status_code == 404, gone.text
        assert gone.json()["error"]["field"] == "instances[0].customer_id"
        assert client.post(served.predict_url(), json=body(other)).status_code == 200
    assert count_records(audit_dir(served.settings)) == records + 1  # the gateway writes on
    again = shipyard(served.env, "forget", "--customer", str(customer))
    assert again.returncode == 0 and "already erased" in again.stdout
    # The erasure is audited, and an erased prediction still resolves to its lineage.
    trail = json.loads(shipyard(served.env, "audit", "erasures", "--json").stdout)
    assert [(e["event"], e["erasure_id"]) for e in trail] == [
        ("started", report["erasure_id"]),
        ("completed", report["erasure_id"]),
    ]
    prediction = answers[0].json()["predictions"][0]["prediction_id"]
    looked_up = shipyard(served.env, "audit", "request", prediction, "--json")
    assert looked_up.returncode == 0, looked_up.stderr
    (record,) = json.loads(looked_up.stdout)
    assert record["erased"]["erasure_id"] == report["erasure_id"]
    assert "customer_id" not in record and record["lineage"]["run_id"]
