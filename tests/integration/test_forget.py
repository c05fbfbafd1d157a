"""Right to be forgotten on real stores: Parquet data sets, Feast's SQLite and Redis online
stores, the audit log with a live writer, and the stack's MLflow registry.

After ``forget``: zero rows for the customer in raw and offline data, the online store, audit
payloads and the next training set; other customers untouched; the erasure audited; a crash
mid-way and a re-run converge (shared/RELIABILITY.md item 19).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import polars as pl
import pytest
from mlflow import MlflowClient

from serving.audit import AuditLog, count_records, iter_records
from shipyard.data.offline_source import read_transactions, write_offline_source
from shipyard.data.prepare import prepare
from shipyard.data.synthetic import SyntheticConfig, generate
from shipyard.errors import ShipyardError
from shipyard.features import online
from shipyard.features import store as feature_store
from shipyard.features.job import build_feature_tables
from shipyard.features.training import build_training_set
from shipyard.governance import forget as forget_module
from shipyard.governance.audit import AuditIndex
from shipyard.governance.forget import RETRAIN_TAG, Forgetter, read_trail
from shipyard.settings import Settings
from shipyard.stack.layout import StateLayout
from shipyard.stack.state import StackState
from shipyard.training import steps
from tests.conftest import free_ports, isolated_settings
from tests.integration.conftest import redis_server

START = datetime(2026, 5, 1, tzinfo=UTC)
DAYS = 6
END = START + timedelta(days=DAYS)
SERVICE = "fraud_scoring_v2"


@dataclass
class World:
    settings: Settings
    layout: StateLayout
    customer: int  # the one to forget: the busiest
    other: int  # a customer who must be untouched
    model: str
    audit: AuditLog  # a live gateway writer, still appending


def _build(root: Path, ports: dict[str, int], name: str, **overrides: object) -> World:
    """Raw -> clean -> features (offline, online) -> training set -> a past run's artifacts ->
    audit records -> a registered version trained on that set. ``ports``: servers to use
    (the stack's MLflow, a Redis)."""
    settings = isolated_settings(root / "state", **overrides)
    settings = settings.model_copy(update={"ports": settings.ports.model_copy(update=ports)})
    layout = StateLayout(settings.state_dir)
    config = SyntheticConfig(rows=6_000, start=START, days=DAYS, seed=5)
    write_offline_source(generate(config), config, layout.raw_data)
    prepare(settings, as_of=END)
    build_feature_tables(layout.clean_data, layout.feature_tables)
    feature_store.apply(settings)
    store = feature_store.open_store(settings)
    store.materialize(start_date=START - timedelta(days=1), end_date=END)
    training = build_training_set(
        store, SERVICE, layout.clean_data, layout.feature_tables, layout.training_sets / SERVICE
    )
    # What a local pipeline run leaves behind: its own copies of the clean and training sets.
    run = layout.pipeline_root / "training-pipeline-1"
    shutil.copytree(layout.clean_data, run / "redact" / "clean")
    shutil.copytree(training.path.parent, run / "training-set" / "training_set")

    counts = read_transactions(layout.raw_data).get_column("customer_id").value_counts()
    ranked = counts.sort("count", descending=True).get_column("customer_id").to_list()
    customer, other = ranked[0], ranked[1]

    closed = AuditLog(layout.audit, sync_interval_s=0)
    closed.open()
    closed.append([_record(f"old-{i}", customer if i % 2 else other) for i in range(10)])
    closed.close()
    live = AuditLog(layout.audit, sync_interval_s=0.05)
    live.open()
    live.append([_record(f"live-{i}", customer if i % 2 else other) for i in range(10)])

    mlflow.set_tracking_uri(settings.url("mlflow"))
    mlflow.set_experiment(f"forget-{name}")
    with mlflow.start_run() as started:
        mlflow.log_param("rows", training.rows)
    client = MlflowClient(settings.url("mlflow"))
    model = f"forget-{name}"
    client.create_registered_model(model)
    manifest = json.loads((training.path.parent / "manifest.json").read_text())
    client.create_model_version(
        model,
        f"{started.info.artifact_uri}/model",
        started.info.run_id,
        tags={"dataset_digest": manifest["digest"], "clean_data_digest": "sha256:unrelated"},
    )
    return World(settings, layout, customer, other, model, live)


def _record(prediction_id: str, customer: int) -> dict:
    return {
        "prediction_id": prediction_id,
        "request_id": f"req-{prediction_id}",
        "ts": START.isoformat(),
        "model": "fraud-scoring",
        "version": "1",
        "route": "stable",
        "backend": "triton",
        "customer_id": customer,
        "merchant_id": 3,
        "features_sha256": "0" * 64,
        "score": 0.25,
    }


@pytest.fixture
def world(
    tmp_path: Path, stack: tuple[Settings, StackState], request: pytest.FixtureRequest
) -> Iterator[World]:
    name = request.node.name.replace("_", "-")[:40]
    built = _build(tmp_path, {"mlflow": stack[0].ports.mlflow}, name)
    try:
        yield built
    finally:
        built.audit.close()


def _next_training_set(world: World) -> pl.DataFrame:
    """What the next pipeline run would train on: prepared again from the raw data."""
    settings, layout = world.settings, world.layout
    steps.ingest(layout.raw_data)  # the raw manifest still vouches for its files
    out = layout.root / "next"
    prepare(settings, out=out / "clean", as_of=END)
    build_feature_tables(out / "clean", out / "features")
    store = feature_store.open_store(settings)
    result = build_training_set(store, SERVICE, out / "clean", out / "features", out / "set")
    return pl.read_parquet(result.path)


def test_forget_leaves_nothing_and_is_audited(world: World) -> None:
    forgetter = Forgetter(world.settings)
    before = forgetter.remaining(world.customer)
    assert all(before.values()), before  # every store held the customer
    other_before = forgetter.remaining(world.other)
    records = count_records(world.layout.audit)

    report = forgetter.forget(world.customer)

    assert report.remaining == dict.fromkeys(before, 0)
    assert report.removed == before
    assert forgetter.remaining(world.other) == other_before
    training = _next_training_set(world)
    assert training.filter(pl.col("customer_id") == world.customer).height == 0
    assert training.filter(pl.col("customer_id") == world.other).height > 0

    # Audit: as many records as predictions, the customer's tombstoned, lineage kept; the
    # index finds a tombstone by its prediction id; the live writer went on in a new segment.
    assert count_records(world.layout.audit) == records
    erased = [r for r in iter_records(world.layout.audit) if "erased" in r]
    assert len(erased) == 10 and all("customer_id" not in r and "score" not in r for r in erased)
    assert {r["erased"]["erasure_id"] for r in erased} == {report.erasure_id}
    index = AuditIndex(world.layout.audit, world.layout.audit_index)
    (found,) = index.lookup("old-1")
    assert found["erased"]["erasure_id"] == report.erasure_id and found["version"] == "1"
    world.audit.append([_record("after", world.other)])
    assert count_records(world.layout.audit) == records + 1

    # The version trained on the customer's data is due for retraining.
    client = MlflowClient(world.settings.url("mlflow"))
    (version,) = client.search_model_versions(f"name = '{world.model}'")
    assert version.tags[RETRAIN_TAG] == report.erasure_id
    assert report.models == [f"{world.model}/{version.version}"]

    # The trail names the subject by a keyed hash, never by id.
    trail = read_trail(world.layout)
    assert [e["event"] for e in trail] == ["started", "completed"]
    assert trail[1]["removed"] == before
    subject = forgetter.subject(world.customer).digest
    assert {e["subject"] for e in trail} == {subject}
    journals = [json.loads(p.read_text()) for p in world.layout.erasures.glob("*.json")]
    # (Counts of removed rows are the only numbers there; they are not ids.)
    named = [{k: v for k, v in e.items() if k != "removed"} for e in [*trail, *journals]]
    assert world.customer not in set(_values(named))

    # Idempotent: a second run finds nothing, changes nothing, adds nothing to the trail.
    again = forgetter.forget(world.customer)
    assert again.already_done and again.erasure_id == report.erasure_id
    assert len(read_trail(world.layout)) == 2


def _values(tree: object) -> Iterator[object]:
    if isinstance(tree, dict):
        yield from tree.keys()
        tree = list(tree.values())
    if isinstance(tree, list):
        for item in tree:
            yield from _values(item)
    else:
        yield tree


class Crash(BaseException):
    """The process dying: nothing catches it."""


def test_a_crash_mid_way_and_a_rerun_converge(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    forgetter = Forgetter(world.settings)
    before = forgetter.remaining(world.customer)
    real = forget_module.erase_rows
    calls = []

    def crash_on_the_third_data_set(*args: object, **kwargs: object) -> object:
        calls.append(args[0])
        if len(calls) == 3:
            raise Crash
        return real(*args, **kwargs)

    monkeypatch.setattr(forget_module, "erase_rows", crash_on_the_third_data_set)
    with pytest.raises(Crash):
        forgetter.forget(world.customer)
    monkeypatch.setattr(forget_module, "erase_rows", real)
    partial = forgetter.remaining(world.customer)
    assert partial["raw data"] == 0 and partial["online store"] == before["online store"]

    report = forgetter.forget(world.customer)

    assert report.resumed
    assert report.remaining == dict.fromkeys(before, 0)
    assert report.removed == before  # counted once, across both attempts
    trail = read_trail(world.layout)
    assert [e["event"] for e in trail] == ["started", "completed"]
    assert {e["erasure_id"] for e in trail} == {report.erasure_id}
    assert _next_training_set(world).filter(pl.col("customer_id") == world.customer).height == 0


def test_a_store_that_is_down_fails_before_anything_is_erased(world: World) -> None:
    (closed_port,) = free_ports(1)
    down = world.settings.model_copy(
        update={"ports": world.settings.ports.model_copy(update={"mlflow": closed_port})}
    )
    before = Forgetter(world.settings).remaining(world.customer)
    with pytest.raises(ShipyardError, match="MLflow at .* is not reachable"):
        Forgetter(down).forget(world.customer)
    assert Forgetter(world.settings).remaining(world.customer) == before
    assert not list(world.layout.erasures.glob("*.json")) and read_trail(world.layout) == []


def test_redis_online_store_forgets_the_customer(
    tmp_path: Path, stack: tuple[Settings, StackState]
) -> None:
    with redis_server(tmp_path) as port:
        ports = {"mlflow": stack[0].ports.mlflow, "redis": port}
        built = _build(tmp_path / "world", ports, "redis", profile="redis")
        try:
            settings = built.settings
            store = feature_store.open_store(settings)
            assert online.entity_rows(settings, store, "customer_id", built.customer) == 1
            report = Forgetter(settings).forget(built.customer)
            assert report.removed["online store"] == 1
            assert online.entity_rows(settings, store, "customer_id", built.customer) == 0
            assert online.entity_rows(settings, store, "customer_id", built.other) == 1
        finally:
            built.audit.close()
