"""The synthetic transaction generator: deterministic, realistic where it matters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from shipyard.data.synthetic import CATEGORIES, DRIFT_CATEGORIES, SyntheticConfig, generate

START = datetime(2026, 3, 1, tzinfo=UTC)


def luhn_valid(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def auc(score: np.ndarray, label: np.ndarray) -> float:
    ranks = np.argsort(np.argsort(score)) + 1
    positives = label.sum()
    negatives = len(label) - positives
    return float(
        (ranks[label == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    )


def test_same_seed_same_data_other_seed_other_data() -> None:
    config = SyntheticConfig(rows=5_000, start=START, days=3, seed=11, duplicate_fraction=0.01)
    first, again = generate(config), generate(config)
    assert first.transactions.equals(again.transactions)
    assert first.customers.equals(again.customers)
    other = generate(SyntheticConfig(rows=5_000, start=START, days=3, seed=12))
    assert not first.transactions.column("amount").equals(other.transactions.column("amount"))


def test_events_fall_in_the_window_and_are_ordered() -> None:
    table = generate(SyntheticConfig(rows=20_000, start=START, days=7)).transactions
    events = table.column("event_timestamp")
    assert pc.min(events).as_py() >= START
    assert pc.max(events).as_py() < START + timedelta(days=7)
    micros = events.cast("int64").to_numpy()
    assert (np.diff(micros) >= 0).all()
    created = table.column("created_timestamp").cast("int64").to_numpy()
    assert (created > micros).all()


def test_fraud_rate_hits_the_target_and_the_label_is_learnable_but_imperfect() -> None:
    data = generate(SyntheticConfig(rows=200_000, start=START, fraud_rate=0.03))
    table = data.transactions
    fraud = table.column("is_fraud").to_numpy()
    assert fraud.mean() == pytest.approx(0.03, abs=0.003)
    # One honest signal alone: the amount against the customer's usual amount.
    typical = dict(
        zip(
            data.customers.column("customer_id").to_pylist(),
            data.customers.column("typical_amount").to_pylist(),
            strict=True,
        )
    )
    usual = np.array([typical[c] for c in table.column("customer_id").to_pylist()])
    score = table.column("amount").to_numpy() / usual
    assert 0.7 < auc(score, fraud) < 0.97


def test_drift_shifts_amounts_and_category_mix_after_the_date() -> None:
    drift_from = START + timedelta(days=15)
    config = SyntheticConfig(
        rows=100_000,
        start=START,
        days=30,
        drift_from=drift_from,
        drift_amount_factor=1.6,
        drift_category_shift=0.3,
    )
    table = generate(config).transactions
    after = table.column("event_timestamp").cast("int64").to_numpy() >= int(
        drift_from.timestamp() * 1e6
    )
    amount = table.column("amount").to_numpy()
    assert np.median(amount[after]) > 1.4 * np.median(amount[~after])
    risky = np.isin(
        table.column("merchant_category").to_numpy(zero_copy_only=False),
        CATEGORIES[DRIFT_CATEGORIES],
    )
    assert risky[after].mean() > risky[~after].mean() + 0.2


def test_late_and_duplicate_records_appear_in_the_asked_proportions() -> None:
    config = SyntheticConfig(rows=100_000, start=START, late_fraction=0.05, duplicate_fraction=0.02)
    table = generate(config).transactions
    delay = (
        table.column("created_timestamp").cast("int64").to_numpy()
        - table.column("event_timestamp").cast("int64").to_numpy()
    )
    assert (delay >= 3_600_000_000).mean() == pytest.approx(0.05, abs=0.006)
    ids = table.column("transaction_id").to_numpy()
    unique, counts = np.unique(ids, return_counts=True)
    assert table.num_rows - len(unique) == pytest.approx(2_000, rel=0.1)
    assert counts.max() == 2
    # A redelivery has the same event and arrives later than the original.
    twice = set(unique[counts == 2][:50].tolist())
    chosen = pc.is_in(table.column("transaction_id"), value_set=pa.array(list(twice)))
    frame = table.filter(chosen).to_pandas()
    for _, pair in frame.groupby("transaction_id"):
        assert pair["event_timestamp"].nunique() == 1
        assert pair["created_timestamp"].nunique() == 2


def test_pii_is_present_raw_and_card_numbers_are_luhn_valid() -> None:
    data = generate(SyntheticConfig(rows=2_000, start=START))
    cards = data.transactions.column("card_number").to_pylist()
    assert all(len(card) == 16 and luhn_valid(card) for card in cards)
    emails = data.transactions.column("email").to_pylist()
    assert all("@example.com" in email for email in emails)
    assert data.transactions.column("name").null_count == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("rows", 0), ("days", 0), ("fraud_rate", 0.7), ("late_fraction", 1.5), ("customers", 0)],
)
def test_invalid_knobs_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        SyntheticConfig(**{field: value})
