"""The quality gate names column, rule and count; redaction and the PII scanner."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from shipyard.data import pii
from shipyard.data.manifest import read_manifest
from shipyard.data.offline_source import read_transactions, write_offline_source
from shipyard.data.prepare import drop_redeliveries, prepare
from shipyard.data.quality import DataValidationError, transactions_schema, validate
from shipyard.data.synthetic import SyntheticConfig, generate
from shipyard.errors import ConfigError
from shipyard.settings import PII_COLUMNS, load_settings

START = datetime(2026, 2, 1, tzinfo=UTC)
AS_OF = START + timedelta(days=3)
CONFIG = SyntheticConfig(rows=4_000, start=START, days=3, seed=9, duplicate_fraction=0.02)


@pytest.fixture(scope="module")
def raw_frame() -> pl.DataFrame:
    frame = pl.from_arrow(generate(CONFIG).transactions)
    frame = frame.with_columns(pl.col(pl.Categorical).cast(pl.String))
    return drop_redeliveries(frame)[0]


def schema(**overrides: object) -> object:
    options = {
        "as_of": AS_OF,
        "max_age": timedelta(hours=48),
        "max_amount": 1_000_000.0,
        "pii_columns": dict.fromkeys(PII_COLUMNS, "drop"),
    } | overrides
    return transactions_schema(**options)


def rules(report: object) -> dict[tuple[str, str], int]:
    return {(f.column, f.rule.split("(")[0]): f.count for f in report.failures}


def test_generated_data_passes(raw_frame: pl.DataFrame) -> None:
    report = validate(raw_frame, schema())
    assert report.ok, report.summary()


def test_each_broken_rule_is_named_with_its_count(raw_frame: pl.DataFrame) -> None:
    bad = raw_frame.with_columns(
        amount=pl.when(pl.int_range(pl.len()) < 7).then(-1.0).otherwise(pl.col("amount")),
        channel=pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("fax")).otherwise("channel"),
        merchant_id=pl.when(pl.int_range(pl.len()) < 2).then(None).otherwise("merchant_id"),
        created_timestamp=pl.when(pl.int_range(pl.len()) < 5)
        .then(pl.col("event_timestamp") - timedelta(seconds=1))
        .otherwise("created_timestamp"),
    )
    found = rules(validate(bad, schema()))
    assert found[("amount", "in_range")] == 7
    assert found[("channel", "isin")] == 3
    assert found[("merchant_id", "not_nullable")] == 2
    assert found[("*", "arrives_after_event")] == 5


def test_freshness_and_future_events(raw_frame: pl.DataFrame) -> None:
    stale = validate(raw_frame, schema(as_of=AS_OF + timedelta(days=10)))
    assert [f.rule.split("(")[0] for f in stale.failures] == ["fresh"]
    assert "newest is" in stale.failures[0].example
    future = validate(raw_frame, schema(as_of=START + timedelta(days=1)))
    assert rules(future)[("event_timestamp", "not_after")] > 0


def test_conflicting_duplicates_fail_but_redeliveries_do_not(raw_frame: pl.DataFrame) -> None:
    first = raw_frame.head(1)
    redelivered = first.with_columns(pl.col("created_timestamp") + timedelta(minutes=3))
    conflicting = first.with_columns(pl.col("amount") + 1)
    kept, dropped = drop_redeliveries(pl.concat([raw_frame, redelivered]))
    assert dropped == 1 and kept.height == raw_frame.height
    kept, dropped = drop_redeliveries(pl.concat([raw_frame, conflicting]))
    assert dropped == 0
    assert rules(validate(kept, schema()))[("transaction_id", "field_uniqueness")] == 2


def test_missing_and_unknown_columns(raw_frame: pl.DataFrame) -> None:
    report = validate(raw_frame.drop("amount", "country").with_columns(extra=pl.lit(1)), schema())
    named = {f.column: f.rule for f in report.failures}
    assert named["amount, country"] == "present"
    assert named["extra"] == "expected"


def test_tokens_are_keyed_stable_and_never_raw(raw_frame: pl.DataFrame) -> None:
    policy = {"name": "drop", "email": "tokenize", "phone": "drop", "card_number": "tokenize"}
    one = pii.redact(raw_frame, policy, b"k" * 32)
    again = pii.redact(raw_frame, policy, b"k" * 32)
    other = pii.redact(raw_frame, policy, b"z" * 32)
    assert not set(PII_COLUMNS) & set(one.columns)
    assert {"email_token", "card_number_token"} <= set(one.columns)
    assert one.get_column("email_token").equals(again.get_column("email_token"))
    assert not (one.get_column("email_token") == other.get_column("email_token")).any()
    # Same card, same token: records stay joinable.
    per_card = raw_frame.select("card_number").with_columns(one.get_column("card_number_token"))
    assert per_card.unique().height == raw_frame.get_column("card_number").n_unique()


def test_scanner_finds_raw_pii_and_ignores_tokens(tmp_path: Path, raw_frame: pl.DataFrame) -> None:
    raw = raw_frame.head(200)
    raw.write_parquet(tmp_path / "raw.parquet")
    (tmp_path / "app.log").write_text(
        "2026-02-01T10:00:00 scored 1767225600000000 for Ada Lovelace card 4111111111111111\n"
    )
    policy = {c: "tokenize" for c in PII_COLUMNS}
    pii.redact(raw, policy, b"k" * 32).write_parquet(tmp_path / "clean.parquet")
    known = set(raw.get_column("name").to_list()) | {"Ada Lovelace"}
    by_file: dict[str, set[str]] = {}
    for finding in pii.scan([tmp_path], known):
        by_file.setdefault(finding.path.name, set()).add(finding.kind)
    assert by_file["raw.parquet"] >= {"email", "phone", "card_number", "known raw value"}
    assert by_file["app.log"] == {"card_number", "known raw value"}
    assert "clean.parquet" not in by_file


def test_generated_key_is_private_and_reused(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path / "state")
    first = pii.pii_key(settings, tmp_path / "secrets")
    assert first == pii.pii_key(settings, tmp_path / "secrets")
    mode = stat.S_IMODE(os.stat(tmp_path / "secrets" / pii.KEY_FILE).st_mode)
    assert mode == 0o600


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"pii": {"key": "changeme"}}, "at least 32 characters"),
        ({"pii": {"columns": {"name": "drop"}}}, "no policy for PII column"),
        ({"pii": {"columns": dict.fromkeys([*PII_COLUMNS, "ssn"], "drop")}}, "unknown PII"),
        ({"pii": {"columns": dict.fromkeys(PII_COLUMNS, "encrypt")}}, "SHIPYARD_PII__COLUMNS"),
    ],
)
def test_pii_settings_are_validated(override: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(**override)


def test_prepare_writes_nothing_when_the_gate_fails(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path / "state")
    raw = tmp_path / "state" / "data" / "raw"
    write_offline_source(generate(CONFIG), CONFIG, raw)
    good = prepare(settings, as_of=AS_OF)
    clean = tmp_path / "state" / "data" / "clean"
    assert good.redeliveries_dropped > 0
    assert not set(PII_COLUMNS) & set(read_transactions(clean).columns)
    before = read_manifest(clean)["digest"]
    with pytest.raises(DataValidationError, match=r"event_timestamp: fresh\(") as failure:
        prepare(settings, as_of=AS_OF + timedelta(days=30))
    assert "nothing was written" in str(failure.value)
    assert read_manifest(clean)["digest"] == before
    assert [p.name for p in clean.parent.iterdir() if p.name.startswith(".")] == []


def test_a_card_like_run_inside_a_digest_is_not_a_card(tmp_path: Path) -> None:
    from shipyard.data.pii import luhn_valid, scan

    card = "4111111111111111"  # Luhn-valid, Visa prefix
    assert luhn_valid(card)
    (tmp_path / "manifest.json").write_text(f'{{"digest": "sha256:ab{card}cd", "rows": 3}}')
    assert scan([tmp_path / "manifest.json"]) == []
    (tmp_path / "leak.json").write_text(f'{{"card": "{card}"}}')
    assert [f.kind for f in scan([tmp_path / "leak.json"])] == ["card_number"]
