"""What the fraud model's features are: windows, names, time-to-live and fill values.

One place owns these facts. The feature job computes them, the Feast repository
(``feature_repo/``) declares them, training sets and the online reader fill them the same way.

Semantics, chosen so that training and serving see the same numbers:

* Every aggregate is the exact value *as known at* an instant T: events with event time in
  ``(T - delay - length, T - delay]`` that had already arrived (``created_timestamp <= T``). A late
  event therefore counts only from its arrival; an event that arrives after its window has
  passed never counts.
* A window's value only changes when an event enters or leaves it, so the feature tables hold
  one row per entity and change point. A point-in-time lookup of the latest row at or before T
  is then exact, not an approximation that decays between events.
* No row before T means no known events: counts and sums are 0, means and rates 0.0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """One rolling window over an entity's events.

    Attributes:
        name: suffix of the feature names, e.g. ``24h``.
        length: how long an event stays in the window.
        delay: how long after its event time an event may enter, e.g. the time a fraud label
            takes to mature (chargebacks); 0 for plain activity windows.
        sums: feature stem -> event column summed over the window (counts are always kept).
    """

    name: str
    length: timedelta
    delay: timedelta = timedelta(0)
    sums: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EntityFeatures:
    """The feature table of one entity: its key, windows and the Feast view that serves it."""

    view: str
    entity: str
    join_key: str
    count_stem: str
    windows: tuple[Window, ...]
    description: str

    @property
    def ttl(self) -> timedelta:
        # Change points of a non-empty window are never further apart than its delay + length;
        # beyond that the latest row says 0, which is also what "no row" means.
        return max(w.delay + w.length for w in self.windows)


CUSTOMER = EntityFeatures(
    view="customer_transactions",
    entity="customer",
    join_key="customer_id",
    count_stem="customer_txn_count",
    windows=(
        Window("1h", HOUR, sums={"customer_amount_sum": "amount_cents"}),
        Window("24h", DAY, sums={"customer_amount_sum": "amount_cents"}),
        Window("7d", 7 * DAY, sums={"customer_amount_sum": "amount_cents"}),
    ),
    description="Rolling count, sum and mean of a customer's card transactions.",
)

LABEL_DELAY = 3 * DAY
MERCHANT = EntityFeatures(
    view="merchant_risk",
    entity="merchant",
    join_key="merchant_id",
    count_stem="merchant_txn_count",
    windows=(
        Window("24h", DAY),
        # Labels mature LABEL_DELAY after the event (chargebacks): the fraud rate may only use
        # transactions whose label was known at lookup time.
        Window("30d", 30 * DAY, delay=LABEL_DELAY, sums={"merchant_fraud_count": "is_fraud"}),
    ),
    description="A merchant's activity and its fraud rate over matured labels.",
)

ENTITIES = (CUSTOMER, MERCHANT)


def count_feature(spec: EntityFeatures, window: Window) -> str:
    return f"{spec.count_stem}_{window.name}"


def sum_feature(stem: str, window: Window) -> str:
    return f"{stem}_{window.name}"


def derived_features(spec: EntityFeatures, window: Window) -> dict[str, tuple[str, str]]:
    """Ratio features of one window: name -> (numerator, denominator count)."""
    ratios = {}
    count = count_feature(spec, window)
    for stem in window.sums:
        if stem == "customer_amount_sum":
            ratios[f"customer_amount_mean_{window.name}"] = (sum_feature(stem, window), count)
        elif stem == "merchant_fraud_count":
            ratios[f"merchant_fraud_rate_{window.name}"] = (sum_feature(stem, window), count)
    return ratios


def feature_names(spec: EntityFeatures) -> list[str]:
    """Every feature column of ``spec``'s table, in table order."""
    names: list[str] = []
    for window in spec.windows:
        names.append(count_feature(spec, window))
        names.extend(sum_feature(stem, window) for stem in window.sums)
        names.extend(derived_features(spec, window))
    return names


def integer_features(spec: EntityFeatures) -> set[str]:
    """Features stored as integers (counts, and sums of integer columns)."""
    ints = {count_feature(spec, w) for w in spec.windows}
    for window in spec.windows:
        ints |= {sum_feature(s, window) for s, col in window.sums.items() if col == "is_fraud"}
    return ints


# Request-time feature (on-demand view): the transaction's amount against the customer's mean.
REQUEST_AMOUNT = "amount"
AMOUNT_TO_MEAN = "amount_to_customer_mean_7d"
AMOUNT_TO_MEAN_BASIS = "customer_amount_mean_7d"


def amount_to_mean(amount: float, mean: float | None) -> float:
    """``amount / mean``; 1.0 (neutral) when the customer has no known history."""
    return amount / mean if mean else 1.0


def request_features(inputs: dict[str, list]) -> dict[str, list]:
    """The on-demand view's transformation, columns in and out (Feast's "python" mode)."""
    amounts = inputs[REQUEST_AMOUNT]
    means = inputs[AMOUNT_TO_MEAN_BASIS]
    return {AMOUNT_TO_MEAN: [amount_to_mean(a, m) for a, m in zip(amounts, means, strict=True)]}


# One FeatureService per model version's feature set: a registered model names the service it
# was trained on, and the gateway fetches exactly that service for it. Features are referenced
# as "view:feature"; the order here is the model's input order.
def _refs(spec: EntityFeatures, names: list[str]) -> list[str]:
    return [f"{spec.view}:{name}" for name in names]


REQUEST_VIEW = "transaction_request_features"
FEATURE_SERVICES: dict[str, list[str]] = {
    "fraud_scoring_v1": [
        *_refs(CUSTOMER, [n for n in feature_names(CUSTOMER) if not n.endswith("_1h")]),
        *_refs(MERCHANT, feature_names(MERCHANT)),
        f"{REQUEST_VIEW}:{AMOUNT_TO_MEAN}",
    ],
    "fraud_scoring_v2": [
        *_refs(CUSTOMER, feature_names(CUSTOMER)),
        *_refs(MERCHANT, feature_names(MERCHANT)),
        f"{REQUEST_VIEW}:{AMOUNT_TO_MEAN}",
    ],
}
DEFAULT_FEATURE_SERVICE = "fraud_scoring_v2"
