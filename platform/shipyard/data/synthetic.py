"""Seeded synthetic card transactions: the reference data set of the fraud-scoring use case.

Everything is vectorized with numpy and built into Arrow columns, so millions of rows take
seconds. The same config and seed give byte-identical tables.

What it models, and why:
* customers, merchants and cards with raw PII (name, email, phone, Luhn-valid card number): the
  material that governance must redact before features and training;
* transactions with event timestamps over a window, amount, merchant category, channel,
  country and device: what a feature store aggregates;
* a fraud label drawn from a logistic score of real signals (amount against the customer's
  usual, risky categories, card-not-present, foreign country, night hours, new device) plus
  noise, so it is learnable but imperfect;
* knobs for drift (amounts and category mix shift from a date), late arrivals (ingestion long
  after the event) and duplicate deliveries: what monitoring and idempotent pipelines face.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

CATEGORIES = np.array(
    [
        "grocery",
        "fuel",
        "restaurants",
        "travel",
        "electronics",
        "fashion",
        "health",
        "entertainment",
        "utilities",
        "gambling",
        "crypto",
        "gift_cards",
    ]
)
# Base share of transactions per category, and how much each raises fraud odds (log-odds).
CATEGORY_WEIGHTS = np.array([22, 12, 16, 5, 6, 9, 7, 8, 9, 2, 1.5, 2.5])
CATEGORY_RISK = np.array([0.0, 0.1, 0.0, 0.6, 0.9, 0.3, 0.0, 0.2, -0.3, 1.2, 1.6, 1.4])
# Categories that gain share after the drift date.
DRIFT_CATEGORIES = np.isin(CATEGORIES, ["electronics", "crypto", "gift_cards", "travel"])
CHANNELS = np.array(["pos", "online", "atm"])
CHANNEL_WEIGHTS = np.array([0.58, 0.37, 0.05])
CHANNEL_RISK = np.array([0.0, 0.8, 0.4])
COUNTRIES = np.array(["US", "GB", "DE", "FR", "ES", "IT", "NL", "BR", "IN", "NG"])
DEVICES = np.array(["chip", "contactless", "mobile_wallet", "browser", "app"])
FIRST_NAMES = np.array(
    [
        "Ada",
        "Alan",
        "Grace",
        "Linus",
        "Margaret",
        "Dennis",
        "Barbara",
        "Ken",
        "Radia",
        "Tim",
        "Frances",
        "John",
        "Katherine",
        "Edsger",
        "Hedy",
        "Donald",
        "Sophie",
        "Guido",
        "Anita",
        "Niklaus",
    ]
)
LAST_NAMES = np.array(
    [
        "Lovelace",
        "Turing",
        "Hopper",
        "Torvalds",
        "Hamilton",
        "Ritchie",
        "Liskov",
        "Thompson",
        "Perlman",
        "Berners",
        "Allen",
        "Backus",
        "Johnson",
        "Dijkstra",
        "Lamarr",
        "Knuth",
        "Wilson",
        "Rossum",
        "Borg",
        "Wirth",
    ]
)

MAX_ROWS = 50_000_000


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the generator. Defaults give a realistic 100k-row month."""

    rows: int = 100_000
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    days: int = 30
    seed: int = 7
    customers: int | None = None  # default: one per 20 transactions
    merchants: int | None = None  # default: one per 200 transactions (at least 50)
    fraud_rate: float = 0.02
    drift_from: datetime | None = None
    drift_amount_factor: float = 1.0
    drift_category_shift: float = 0.0  # share of traffic moved into DRIFT_CATEGORIES
    late_fraction: float = 0.0  # rows ingested 1-72 h after their event
    duplicate_fraction: float = 0.0  # rows delivered twice (same transaction_id)

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.rows <= MAX_ROWS, f"rows must be between 1 and {MAX_ROWS:,}"),
            (1 <= self.days <= 3650, "days must be between 1 and 3650"),
            (0 < self.fraud_rate < 0.5, "fraud_rate must be in (0, 0.5)"),
            (self.drift_amount_factor > 0, "drift_amount_factor must be positive"),
            (0 <= self.drift_category_shift <= 1, "drift_category_shift must be in [0, 1]"),
            (0 <= self.late_fraction <= 1, "late_fraction must be in [0, 1]"),
            (0 <= self.duplicate_fraction <= 1, "duplicate_fraction must be in [0, 1]"),
            (self.start.tzinfo is not None, "start must be timezone-aware"),
            (self.customers is None or self.customers >= 1, "customers must be at least 1"),
            (self.merchants is None or self.merchants >= 1, "merchants must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def n_customers(self) -> int:
        return self.customers or max(1, self.rows // 20)

    @property
    def n_merchants(self) -> int:
        return self.merchants or max(50, self.rows // 200)


@dataclass(frozen=True)
class SyntheticData:
    """The generated tables: transactions (with raw PII), and the customer and merchant masters."""

    transactions: pa.Table
    customers: pa.Table
    merchants: pa.Table


def generate(config: SyntheticConfig) -> SyntheticData:
    """Generate the data set described by ``config``; deterministic in ``config.seed``."""
    rng = np.random.default_rng(config.seed)
    customers = _customers(rng, config.n_customers)
    merchants = _merchants(rng, config.n_merchants)
    transactions = _transactions(rng, config, customers, merchants)
    return SyntheticData(transactions, customers, merchants)


def _customers(rng: np.random.Generator, n: int) -> pa.Table:
    ids = np.arange(1, n + 1, dtype=np.int64)
    first = FIRST_NAMES[rng.integers(0, len(FIRST_NAMES), n)]
    last = LAST_NAMES[rng.integers(0, len(LAST_NAMES), n)]
    names = np.char.add(np.char.add(first, " "), last)
    emails = np.char.add(
        np.char.add(np.char.lower(first), "."),
        np.char.add(np.char.lower(last), np.char.add(ids.astype(str), "@example.com")),
    )
    phones = np.char.add("+1-555-", np.char.zfill((ids % 10_000_000).astype(str), 7))
    return pa.table(
        {
            "customer_id": ids,
            "name": names,
            "email": emails,
            "phone": phones,
            "card_number": _luhn_card_numbers(rng, n),
            "home_country": COUNTRIES[rng.choice(len(COUNTRIES), n, p=_country_weights())],
            # Typical spend differs a lot between people: log-normal around ~40.
            "typical_amount": np.round(rng.lognormal(3.7, 0.6, n), 2),
        }
    )


def _merchants(rng: np.random.Generator, n: int) -> pa.Table:
    return pa.table(
        {
            "merchant_id": np.arange(1, n + 1, dtype=np.int64),
            "merchant_category": CATEGORIES[
                rng.choice(len(CATEGORIES), n, p=CATEGORY_WEIGHTS / CATEGORY_WEIGHTS.sum())
            ],
            # A few merchants are compromised: their fraud odds are much higher.
            "merchant_risk": np.where(rng.random(n) < 0.03, 1.5, rng.normal(0, 0.25, n)),
        }
    )


def _transactions(
    rng: np.random.Generator, config: SyntheticConfig, customers: pa.Table, merchants: pa.Table
) -> pa.Table:
    n = config.rows
    start_us = int(config.start.timestamp() * 1_000_000)
    span_us = config.days * 86_400_000_000
    event_us = np.sort(start_us + rng.integers(0, span_us, n, dtype=np.int64))
    drifted = (
        event_us >= int(config.drift_from.timestamp() * 1_000_000)
        if config.drift_from is not None
        else np.zeros(n, dtype=bool)
    )

    # Heavy users transact more: Zipf-like customer popularity.
    customer_idx = _skewed_index(rng, config.n_customers, n, exponent=1.1)
    merchant_category = merchants.column("merchant_category").to_numpy(zero_copy_only=False)
    merchant_idx = _merchant_index(rng, config, merchant_category, drifted, n)
    code_of = {name: code for code, name in enumerate(CATEGORIES)}
    category_code = np.array([code_of[c] for c in merchant_category])[merchant_idx]

    channel_code = rng.choice(len(CHANNELS), n, p=CHANNEL_WEIGHTS)
    home = customers.column("home_country").to_numpy(zero_copy_only=False)[customer_idx]
    abroad = rng.random(n) < 0.06
    country = np.where(abroad, COUNTRIES[rng.integers(0, len(COUNTRIES), n)], home)
    device_code = np.where(
        channel_code == 1, rng.choice([2, 3, 4], n), rng.choice([0, 1, 2], n, p=[0.5, 0.4, 0.1])
    )
    new_device = rng.random(n) < 0.04

    typical = customers.column("typical_amount").to_numpy()[customer_idx]
    amount_ratio = rng.lognormal(0.0, 0.7, n)
    amount = typical * amount_ratio * np.where(drifted, config.drift_amount_factor, 1.0)
    hour = (event_us // 3_600_000_000) % 24
    night = (hour < 5) | (hour >= 23)

    # Fraud: logistic in real signals plus noise; the intercept is solved for the target rate.
    signal = (
        1.1 * np.log(amount_ratio)
        + CATEGORY_RISK[category_code]
        + CHANNEL_RISK[channel_code]
        + 0.9 * (country != home)
        + 0.7 * night
        + 1.0 * new_device
        + merchants.column("merchant_risk").to_numpy()[merchant_idx]
        + rng.normal(0.0, 1.0, n)
    )
    fraud = rng.random(n) < _sigmoid(signal + _intercept_for_rate(signal, config.fraud_rate))
    # Fraudsters spend more than the card owner would.
    amount = np.round(np.where(fraud, amount * rng.uniform(1.5, 4.0, n), amount), 2)

    created_us = event_us + rng.integers(50_000, 5_000_000, n)  # normal ingestion: < 5 s
    late = rng.random(n) < config.late_fraction
    created_us = np.where(
        late, event_us + rng.integers(3_600, 72 * 3_600, n) * 1_000_000, created_us
    )

    transaction_id = np.arange(1, n + 1, dtype=np.int64)
    columns = {
        "transaction_id": transaction_id,
        "event_timestamp": pa.array(event_us, pa.timestamp("us", tz="UTC")),
        "created_timestamp": pa.array(created_us, pa.timestamp("us", tz="UTC")),
        "customer_id": customers.column("customer_id").to_numpy()[customer_idx],
        "merchant_id": merchants.column("merchant_id").to_numpy()[merchant_idx],
        "amount": amount,
        "merchant_category": pa.DictionaryArray.from_arrays(
            pa.array(category_code.astype(np.int8)), pa.array(CATEGORIES)
        ),
        "channel": pa.DictionaryArray.from_arrays(
            pa.array(channel_code.astype(np.int8)), pa.array(CHANNELS)
        ),
        "country": country,
        "device_type": pa.DictionaryArray.from_arrays(
            pa.array(device_code.astype(np.int8)), pa.array(DEVICES)
        ),
        "is_fraud": fraud.astype(np.int8),
    }
    table = pa.table(columns)
    pii = customers.select(["name", "email", "phone", "card_number"]).take(pa.array(customer_idx))
    for name in pii.column_names:
        table = table.append_column(name, pii.column(name))
    return _with_duplicates(rng, table, config.duplicate_fraction)


def _merchant_index(
    rng: np.random.Generator,
    config: SyntheticConfig,
    merchant_category: np.ndarray,
    drifted: np.ndarray,
    n: int,
) -> np.ndarray:
    index = _skewed_index(rng, len(merchant_category), n, exponent=0.9)
    if config.drift_category_shift > 0 and drifted.any():
        # Move a share of drifted traffic to merchants of the drift categories.
        pool = np.flatnonzero(np.isin(merchant_category, CATEGORIES[DRIFT_CATEGORIES]))
        if len(pool):
            moved = drifted & (rng.random(n) < config.drift_category_shift)
            index = np.where(moved, pool[rng.integers(0, len(pool), n)], index)
    return index


def _with_duplicates(rng: np.random.Generator, table: pa.Table, fraction: float) -> pa.Table:
    if fraction <= 0:
        return table
    picked = np.flatnonzero(rng.random(table.num_rows) < fraction)
    if not len(picked):
        return table
    duplicates = table.take(pa.array(picked))
    # A redelivery arrives later than the original.
    redelivered = pa.array(
        duplicates.column("created_timestamp").to_numpy().astype("datetime64[us]").astype(np.int64)
        + rng.integers(1_000_000, 600_000_000, len(picked)),
        pa.timestamp("us", tz="UTC"),
    )
    duplicates = duplicates.set_column(
        duplicates.schema.get_field_index("created_timestamp"), "created_timestamp", redelivered
    )
    merged = pa.concat_tables([table, duplicates])
    order = np.argsort(merged.column("event_timestamp").to_numpy().astype(np.int64), kind="stable")
    return merged.take(pa.array(order))


def _skewed_index(rng: np.random.Generator, size: int, n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, size + 1) ** exponent
    cumulative = np.cumsum(weights)
    draws = rng.random(n) * cumulative[-1]
    ranks = np.minimum(np.searchsorted(cumulative, draws), size - 1)
    # Scatter popularity over ids so that id order says nothing about activity.
    return rng.permutation(size)[ranks]


def _luhn_card_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    digits = rng.integers(0, 10, (n, 16))
    digits[:, 0] = 4  # Visa-like prefix
    # Luhn: double every second digit from the right, excluding the check digit.
    body = digits[:, :15].copy()
    doubled = body[:, ::-2] * 2  # positions 14, 12, …, 0 (rightmost of the body first)
    body[:, ::-2] = np.where(doubled > 9, doubled - 9, doubled)
    digits[:, 15] = (10 - body.sum(axis=1) % 10) % 10
    as_bytes = (digits.astype(np.uint8) + ord("0")).tobytes()
    return np.frombuffer(as_bytes, dtype="S16").astype("U16")


def _country_weights() -> np.ndarray:
    weights = np.array([40, 10, 10, 8, 7, 7, 5, 5, 5, 3], dtype=float)
    return weights / weights.sum()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _intercept_for_rate(signal: np.ndarray, rate: float) -> float:
    """The intercept b with mean(sigmoid(signal + b)) == rate, by bisection."""
    low, high = -30.0, 30.0
    sample = signal[:: max(1, len(signal) // 200_000)]
    for _ in range(50):
        mid = (low + high) / 2
        if _sigmoid(sample + mid).mean() > rate:
            high = mid
        else:
            low = mid
    return (low + high) / 2
