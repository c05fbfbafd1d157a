"""Features end to end on real Feast: point-in-time training sets against the brute-force
oracle, idempotent and out-of-order materialization, the online reader against Feast's SDK,
streaming push, on SQLite and on a real redis-server."""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shipyard.data import pii
from shipyard.data.offline_source import read_transactions, write_offline_source
from shipyard.data.prepare import prepare
from shipyard.data.synthetic import SyntheticConfig, generate
from shipyard.features import store as feature_store
from shipyard.features.catalog import CUSTOMER, FEATURE_SERVICES, MERCHANT, feature_names
from shipyard.features.job import build_feature_tables, events_for_features, table_path
from shipyard.features.online import OnlineFeatureReader
from shipyard.features.push import push_events
from shipyard.features.training import build_training_set
from shipyard.settings import Settings
from shipyard.stack.layout import StateLayout
from tests.conftest import isolated_settings
from tests.integration.conftest import redis_server
from tests.oracle import assert_features_equal, training_row, window_values

START = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 10
END = START + timedelta(days=DAYS)
SERVICE = "fraud_scoring_v2"


@dataclass
class FeatureEnv:
    settings: Settings
    layout: StateLayout
    events: pl.DataFrame  # clean events, as the feature job sees them
    backfill_ids: set[int]


def _raw_with_backfill(seed: int) -> tuple[SyntheticConfig, object]:
    """Generated data plus a backfill: old events (days 2-4) that only arrive on day 8."""
    config = SyntheticConfig(
        rows=12_000, start=START, days=DAYS, seed=seed, late_fraction=0.05, duplicate_fraction=0.01
    )
    data = generate(config)
    frame = pl.from_arrow(data.transactions)
    rng = np.random.default_rng(seed)
    picked = frame.sample(300, seed=seed)
    old = START + timedelta(days=2)
    event_us = int(old.timestamp() * 1e6) + rng.integers(0, 2 * 86_400_000_000, 300)
    arrival_us = int((START + timedelta(days=8)).timestamp() * 1e6) + rng.integers(
        0, 3_600_000_000, 300
    )
    backfill = picked.with_columns(
        transaction_id=pl.int_range(10_000_000, 10_000_300, dtype=pl.Int64),
        event_timestamp=pl.Series(event_us).cast(pl.Datetime("us", "UTC")),
        created_timestamp=pl.Series(arrival_us).cast(pl.Datetime("us", "UTC")),
    )
    merged = pl.concat([frame, backfill]).sort("event_timestamp")
    return config, type(data)(merged.to_arrow(), data.customers, data.merchants)


def _make_env(root: Path, **overrides: object) -> FeatureEnv:
    settings = isolated_settings(root / "state", **overrides)
    layout = StateLayout(settings.state_dir)
    config, data = _raw_with_backfill(seed=21)
    write_offline_source(data, config, layout.raw_data)
    prepare(settings, as_of=END)
    build_feature_tables(layout.clean_data, layout.feature_tables)
    feature_store.apply(settings)
    events = events_for_features(read_transactions(layout.clean_data))
    return FeatureEnv(settings, layout, events, set(range(10_000_000, 10_000_300)))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> FeatureEnv:
    return _make_env(tmp_path_factory.mktemp("features"))


@pytest.fixture(scope="module")
def training(env: FeatureEnv) -> pl.DataFrame:
    store = feature_store.open_store(env.settings)
    result = build_training_set(
        store,
        SERVICE,
        env.layout.clean_data,
        env.layout.feature_tables,
        env.layout.training_sets / SERVICE,
    )
    return pl.read_parquet(result.path)


def test_training_set_keeps_every_labelled_row(env: FeatureEnv, training: pl.DataFrame) -> None:
    assert training.height == env.events.height
    # Same rows in the same order as the clean data: nothing dropped, nothing duplicated.
    assert training.get_column("transaction_id").equals(env.events.get_column("transaction_id"))
    assert training.null_count().sum_horizontal().item() == 0
    services = FEATURE_SERVICES[SERVICE]
    assert set(training.columns) >= {ref.split(":")[1] for ref in services}


def test_training_set_matches_the_oracle(env: FeatureEnv, training: pl.DataFrame) -> None:
    rng = random.Random(4)
    rows = training.rows(named=True)
    # Rows of customers touched by the backfill are the interesting ones: include many.
    backfilled = set(
        env.events.filter(pl.col("transaction_id").is_in(list(env.backfill_ids)))
        .get_column("customer_id")
        .to_list()
    )
    picked = rng.sample(rows, 150) + rng.sample(
        [r for r in rows if r["customer_id"] in backfilled], 150
    )
    for row in picked:
        expected = training_row(env.events, [CUSTOMER, MERCHANT], row)
        assert_features_equal(row, expected, f"transaction {row['transaction_id']}")


def test_no_value_is_known_before_it_arrives(env: FeatureEnv, training: pl.DataFrame) -> None:
    """Backfilled events must be invisible to training rows between their event and arrival."""
    backfill = env.events.filter(pl.col("transaction_id").is_in(list(env.backfill_ids)))
    arrival = backfill.get_column("created_timestamp").min()
    without = env.events.filter(~pl.col("transaction_id").is_in(list(env.backfill_ids)))
    window = training.filter(
        pl.col("customer_id").is_in(backfill.get_column("customer_id").unique().to_list())
        & (pl.col("event_timestamp") >= START + timedelta(days=2))
        & (pl.col("event_timestamp") < arrival)
    )
    assert window.height > 50
    for row in window.rows(named=True)[:200]:
        expected = window_values(without, CUSTOMER, row["customer_id"], row["event_timestamp"])
        assert_features_equal(row, expected, f"before arrival {row['transaction_id']}")
    # And after arrival they do count: the training set is not simply ignoring them.
    after = training.filter(
        pl.col("customer_id").is_in(backfill.get_column("customer_id").unique().to_list())
        & (pl.col("event_timestamp") > backfill.get_column("created_timestamp").max())
        & (pl.col("event_timestamp") < START + timedelta(days=9))
    )
    differs = 0
    for row in after.rows(named=True)[:200]:
        ignoring = window_values(without, CUSTOMER, row["customer_id"], row["event_timestamp"])
        differs += ignoring["customer_txn_count_7d"] != row["customer_txn_count_7d"]
    assert differs > 0


def test_agrees_with_feast_offline_store_and_keeps_rows_feast_drops(
    env: FeatureEnv, training: pl.DataFrame
) -> None:
    """Feast's own point-in-time join (file offline store) on a small sample: same values on the
    rows it returns; it drops rows without an earlier feature row, which we keep and fill."""
    store = feature_store.open_store(env.settings)
    light = (
        training.group_by("customer_id").len().filter(pl.col("len") <= 3).get_column("customer_id")
    )
    sample = training.filter(pl.col("customer_id").is_in(light.to_list())).head(60)
    entity_df = sample.select(
        "transaction_id", "customer_id", "merchant_id", "event_timestamp", "amount"
    ).to_pandas()
    feast_rows = store.get_historical_features(
        entity_df=entity_df, features=store.get_feature_service(SERVICE)
    ).to_df()
    ours = {r["transaction_id"]: r for r in sample.rows(named=True)}
    features = [ref.split(":")[1] for ref in FEATURE_SERVICES[SERVICE]]
    assert 0 < len(feast_rows) <= len(sample)
    for row in feast_rows.to_dict("records"):
        mine = ours[row["transaction_id"]]
        assert_features_equal(row, {n: mine[n] for n in features}, f"feast {mine}")
    dropped = set(ours) - set(feast_rows["transaction_id"])
    for transaction_id in dropped:  # dropped by Feast: the entity had no earlier feature row
        row = ours[transaction_id]
        assert row["customer_txn_count_7d"] == 0 or row["merchant_txn_count_24h"] == 0


def _sqlite_dump(env: FeatureEnv) -> list[tuple]:
    with sqlite3.connect(env.layout.feast / "online.db") as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = []
        for table in sorted(tables):
            rows += [
                (table, *r)
                for r in conn.execute(
                    f'SELECT entity_key, feature_name, value, event_ts FROM "{table}" ORDER BY 1, 2'
                )
            ]
    return rows


def _reset_online(env: FeatureEnv) -> object:
    store = feature_store.open_store(env.settings)
    store.teardown()
    feature_store.apply(env.settings)
    return feature_store.open_store(env.settings)


def test_materialization_is_idempotent_and_order_free(env: FeatureEnv) -> None:
    horizon = END + timedelta(days=40)  # past every change point, including exits
    store = _reset_online(env)
    store.materialize(START, horizon)
    once = _sqlite_dump(env)
    store.materialize(START, horizon)
    assert _sqlite_dump(env) == once
    assert len(once) > 1000

    middle = START + timedelta(days=5)
    store = _reset_online(env)
    store.materialize(middle, horizon)  # newer window first
    store.materialize(START, middle)  # then the older one: must not roll anything back
    assert _sqlite_dump(env) == once


def _latest_offline(env: FeatureEnv, spec: object, key: int, at: datetime) -> dict:
    table = pl.read_parquet(table_path(env.layout.feature_tables, spec))
    rows = table.filter((pl.col(spec.join_key) == key) & (pl.col("event_timestamp") < at))
    if rows.is_empty():
        return dict.fromkeys(feature_names(spec), 0)
    return rows.sort("event_timestamp").row(-1, named=True)


def _check_online(env: FeatureEnv, at: datetime) -> None:
    """Every service's reader against the SDK and the offline tables: v1 reads part of the
    customer view, v2 all of it (the reader plans the two differently)."""
    store = feature_store.open_store(env.settings)
    rng = random.Random(8)
    customers = rng.sample(sorted(set(env.events.get_column("customer_id").to_list())), 40)
    merchants = rng.sample(sorted(set(env.events.get_column("merchant_id").to_list())), 40)
    rows = [
        {"customer_id": c, "merchant_id": m, "amount": 50.0}
        for c, m in zip(customers, merchants, strict=True)
    ]
    rows.append({"customer_id": 99_999_999, "merchant_id": 99_999_999, "amount": 5.0})  # unknown
    plans: set[bool] = set()
    for service in FEATURE_SERVICES:
        reader = OnlineFeatureReader(env.settings, store, service)
        ours = reader.read(rows)
        sdk = store.get_online_features(
            features=store.get_feature_service(service), entity_rows=rows
        ).to_dict()
        for i, (row, got) in enumerate(zip(rows, ours, strict=True)):
            assert set(got) == set(reader.feature_names), service
            sdk_row = {name: sdk[name][i] for name in reader.feature_names}
            filled = {
                k: (v if v is not None else (1.0 if k.startswith("amount_to") else 0))
                for k, v in sdk_row.items()
            }
            assert_features_equal(got, filled, f"{service} reader vs SDK, row {row}")
            for spec in (CUSTOMER, MERCHANT):
                offline = _latest_offline(env, spec, row[spec.join_key], at)
                expected = {n: offline[n] for n in feature_names(spec) if n in got}
                assert_features_equal(got, expected, f"{service} online vs offline {row}")
        plans.update(view.whole for view in reader.views)
        reader.close()
    assert plans == {True, False}, "both plans, whole views and some features of a view"


def test_online_values_equal_latest_offline_values(env: FeatureEnv) -> None:
    store = _reset_online(env)
    at = START + timedelta(days=7)
    store.materialize(START - timedelta(days=40), at)
    _check_online(env, at)


def test_a_read_never_waits_for_a_writer(env: FeatureEnv) -> None:
    """The SQLite store keeps a write-ahead log: while a writer (materialize, push, forget)
    holds its transaction, the gateway's reader still answers at once, with the last
    committed values. With a rollback journal the read would wait for the lock."""
    store = _reset_online(env)
    store.materialize(START - timedelta(days=40), END)
    path = env.layout.feast / "online.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    reader = OnlineFeatureReader(env.settings, store, SERVICE)
    customer = int(env.events.get_column("customer_id")[0])
    row = {"customer_id": customer, "merchant_id": 1, "amount": 10.0}
    committed = reader.read([row])
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")
        for (table,) in writer.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            writer.execute(f'DELETE FROM "{table}"')  # uncommitted: readers must not see it
        started = time.perf_counter()
        during = reader.read([row])
        waited = time.perf_counter() - started
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        reader.close()
    assert during == committed
    # Far below the read deadline (100 ms), which a lock wait would have run into.
    assert waited < env.settings.serving.feature_timeout_ms / 1000 / 2


def test_push_updates_online_exactly_and_never_rolls_back(env: FeatureEnv) -> None:
    store = _reset_online(env)
    now = END + timedelta(hours=1)
    store.materialize(START - timedelta(days=40), now)
    customer = env.events.group_by("customer_id").len().sort("len").row(-1)[0]
    raw = read_transactions(env.layout.raw_data).filter(pl.col("customer_id") == customer).head(3)
    fresh = raw.with_columns(
        transaction_id=pl.int_range(20_000_000, 20_000_003, dtype=pl.Int64),
        event_timestamp=pl.Series([now - timedelta(minutes=m) for m in (30, 20, 10)]).cast(
            pl.Datetime("us", "UTC")
        ),
        created_timestamp=pl.Series([now - timedelta(minutes=m) for m in (29, 19, 9)]).cast(
            pl.Datetime("us", "UTC")
        ),
    )
    result = push_events(env.settings, store, fresh, now=now)
    assert result.events == 3
    all_events = events_for_features(read_transactions(env.layout.clean_data))
    expected = window_values(all_events, CUSTOMER, customer, now)
    assert expected["customer_txn_count_1h"] == 3
    reader = OnlineFeatureReader(env.settings, store, SERVICE)
    got = reader.read([{"customer_id": customer, "merchant_id": 1, "amount": 1.0}])[0]
    assert_features_equal(got, expected, "after push")
    # Pushing the same events again changes nothing; a stale feature row is ignored.
    assert push_events(env.settings, store, fresh, now=now).events == 0
    stale = pl.DataFrame(
        {
            "customer_id": [customer],
            "event_timestamp": [now - timedelta(days=2)],
            "created_timestamp": [now - timedelta(days=2)],
        }
        | {n: [0] for n in feature_names(CUSTOMER)}
    ).to_pandas()
    store.push(f"{CUSTOMER.view}_push", stale)
    again = reader.read([{"customer_id": customer, "merchant_id": 1, "amount": 1.0}])[0]
    assert_features_equal(again, expected, "after a stale push")
    reader.close()
    # No raw PII reached the clean data through the push.
    assert pii.scan([env.layout.clean_data], pii.known_pii_values(env.layout.raw_data)) == []


def test_no_raw_pii_anywhere_downstream(env: FeatureEnv, training: pl.DataFrame) -> None:
    known = pii.known_pii_values(env.layout.raw_data)
    assert pii.scan([env.layout.raw_data], known), "the scanner must see the seeded PII"
    downstream = [
        env.layout.clean_data,
        env.layout.feature_tables,
        env.layout.training_sets,
        env.layout.feast,
    ]
    assert pii.scan(downstream, known) == []


@pytest.fixture(scope="module")
def redis_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureEnv]:
    root = tmp_path_factory.mktemp("redis")
    with redis_server(root) as port:
        env = _make_env(root / "env", profile="redis")
        # The fixture's own server, not the settings' default port.
        env.settings = env.settings.model_copy(
            update={"ports": env.settings.ports.model_copy(update={"redis": port})}
        )
        feature_store.apply(env.settings)
        yield env


def _redis_dump(env: FeatureEnv) -> dict:
    import redis

    client = redis.Redis(host="127.0.0.1", port=env.settings.ports.redis)
    return {key: client.hgetall(key) for key in sorted(client.keys("*"))}


def test_redis_profile_materializes_idempotently_and_serves_exactly(redis_env: FeatureEnv) -> None:
    store = feature_store.open_store(redis_env.settings)
    assert type(store._get_provider().online_store).__name__ == "RedisOnlineStore"
    at = START + timedelta(days=7)
    store.materialize(START - timedelta(days=40), at)
    once = _redis_dump(redis_env)
    assert len(once) > 100
    store.materialize(START - timedelta(days=40), at)
    assert _redis_dump(redis_env) == once
    store.materialize(START, START + timedelta(days=1))  # older window later: no rollback
    assert _redis_dump(redis_env) == once
    _check_online(redis_env, at)
