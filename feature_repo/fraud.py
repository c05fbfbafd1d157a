"""Feast definitions of the fraud-scoring features: entities, sources, views, services.

Names, windows and TTLs come from ``shipyard.features.catalog`` (the one place that owns them);
the tables are written by ``shipyard features build`` into the state directory, which
``shipyard features apply`` registers. Run Feast through ``shipyard features …``: it renders
``feature_store.yaml`` from the settings (SQLite or Redis online store).
"""

from __future__ import annotations

from typing import Any

from feast import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    Project,
    PushSource,
    RequestSource,
    ValueType,
)
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64

from shipyard.features.catalog import (
    AMOUNT_TO_MEAN,
    AMOUNT_TO_MEAN_BASIS,
    CUSTOMER,
    FEATURE_SERVICES,
    MERCHANT,
    REQUEST_AMOUNT,
    REQUEST_VIEW,
    EntityFeatures,
    feature_names,
    integer_features,
)
from shipyard.features.job import table_path
from shipyard.settings import load_settings
from shipyard.stack.layout import StateLayout

TABLES = StateLayout(load_settings().state_dir).feature_tables

project = Project(name="shipyard", description="Features of the card-fraud scoring models.")

customer = Entity(
    name=CUSTOMER.entity,
    join_keys=[CUSTOMER.join_key],
    value_type=ValueType.INT64,
    description="A card holder.",
)
merchant = Entity(
    name=MERCHANT.entity,
    join_keys=[MERCHANT.join_key],
    value_type=ValueType.INT64,
    description="A card acceptor.",
)


def _source(spec: EntityFeatures) -> FileSource:
    return FileSource(
        name=f"{spec.view}_table",
        path=str(table_path(TABLES, spec)),
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
        description=f"Change-point table of {spec.view}, written by the feature job.",
    )


def _schema(spec: EntityFeatures) -> list[Field]:
    ints = integer_features(spec)
    return [Field(name=n, dtype=Int64 if n in ints else Float64) for n in feature_names(spec)]


# Fresh transactions are pushed here by `shipyard features push`; the batch table backs it.
customer_push = PushSource(name=f"{CUSTOMER.view}_push", batch_source=_source(CUSTOMER))

customer_transactions = FeatureView(
    name=CUSTOMER.view,
    entities=[customer],
    ttl=CUSTOMER.ttl,
    schema=_schema(CUSTOMER),
    source=customer_push,
    online=True,
    description=CUSTOMER.description,
    tags={"owner": "fraud-features", "pii": "none"},
)

merchant_risk = FeatureView(
    name=MERCHANT.view,
    entities=[merchant],
    ttl=MERCHANT.ttl,
    schema=_schema(MERCHANT),
    source=_source(MERCHANT),
    online=True,
    description=MERCHANT.description,
    tags={"owner": "fraud-features", "pii": "none"},
)

transaction_request = RequestSource(
    name="transaction_request", schema=[Field(name=REQUEST_AMOUNT, dtype=Float64)]
)


@on_demand_feature_view(
    name=REQUEST_VIEW,
    sources=[customer_transactions[[AMOUNT_TO_MEAN_BASIS]], transaction_request],
    schema=[Field(name=AMOUNT_TO_MEAN, dtype=Float64)],
    mode="python",
    description="The transaction's amount against the customer's 7-day mean (1.0 without one).",
)
def transaction_request_features(inputs: dict[str, Any]) -> dict[str, Any]:
    # Feast stores this function's source and runs it on its own: import what it needs here.
    from shipyard.features.catalog import request_features

    return request_features(inputs)


_views = {v.name: v for v in (customer_transactions, merchant_risk, transaction_request_features)}


def _service(name: str, refs: list[str]) -> FeatureService:
    by_view: dict[str, list[str]] = {}
    for ref in refs:
        view, feature = ref.split(":")
        by_view.setdefault(view, []).append(feature)
    return FeatureService(
        name=name,
        features=[_views[view][features] for view, features in by_view.items()],
        description=f"Features of the model versions trained on {name}.",
    )


feature_services = [_service(name, refs) for name, refs in FEATURE_SERVICES.items()]
# Feast discovers objects by module-level names.
fraud_scoring_v1, fraud_scoring_v2 = feature_services
