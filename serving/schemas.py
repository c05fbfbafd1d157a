"""The gateway's request and response bodies; their field descriptions are the OpenAPI docs."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shipyard.features.encoding import VOCABULARIES
from shipyard.routing import Analysis, Fault, ModelName, Version

# Entity keys are int64 in the store, but JSON numbers past 2**53 lose precision in most clients
# (and in JSON Schema validators): accept only the exactly representable range.
MAX_ID = 2**53 - 1
Route = Literal["stable", "canary", "pinned"]
Backend = Literal["triton-primary", "triton-cpu", "in-process"]


def _known(field: str) -> str:
    return ", ".join(VOCABULARIES[field])


class Instance(BaseModel):
    """One transaction to score: entity keys plus the request-time fields."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    customer_id: int = Field(ge=0, le=MAX_ID, description="Customer entity key.")
    merchant_id: int = Field(ge=0, le=MAX_ID, description="Merchant entity key.")
    amount: float = Field(ge=0, le=1e9, description="Transaction amount (finite, >= 0).")
    merchant_category: str = Field(
        min_length=1,
        max_length=64,
        description=f"Merchant category; known: {_known('merchant_category')}. Others score "
        "as 'unknown'.",
    )
    channel: str = Field(
        min_length=1, max_length=64, description=f"Channel; known: {_known('channel')}."
    )
    device_type: str = Field(
        min_length=1, max_length=64, description=f"Device; known: {_known('device_type')}."
    )
    event_timestamp: datetime | None = Field(
        None, description="When the transaction happened (ISO 8601); default: now."
    )


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instances: list[Instance] = Field(
        min_length=1, description="Transactions to score (at most the configured maximum)."
    )
    version: Version | None = Field(
        None,
        description="Pin a published version instead of the routed one (route 'pinned').",
    )
    explain: bool = Field(
        False,
        description="Also return each feature's contribution to the score (the version that "
        "served, LightGBM's own attribution). /v1/models/{model}/explain sets it.",
    )


class Explanation(BaseModel):
    base_value: float = Field(description="The model's expected raw score (log-odds).")
    raw_score: float = Field(
        description="base_value plus every contribution: the score before the sigmoid."
    )
    contributions: dict[str, float] = Field(
        description="Per model input, its additive effect on the raw score (log-odds)."
    )


class Prediction(BaseModel):
    prediction_id: str = Field(description="Audit id of this prediction.")
    score: float = Field(description="Probability of fraud, in [0, 1].")
    version: str = Field(description="Model version that scored it.")
    route: Route = Field(description="Why that version: stable, canary or pinned.")
    backend: Backend = Field(description="Which backend computed the score.")
    explanation: Explanation | None = Field(
        None, description="Why this score, when the request asked (explain)."
    )


class PredictResponse(BaseModel):
    request_id: str = Field(description="Id of this request; prefixes every prediction id.")
    model: str = Field(description="Model name.")
    predictions: list[Prediction] = Field(description="One per instance, in order.")
    latency_ms: float = Field(description="Time spent inside the gateway, milliseconds.")


class BackendHealth(BaseModel):
    name: Backend
    url: str | None = Field(None, description="Where it is, for Triton pools.")
    circuit: Literal["closed", "half-open", "open"]


class VersionInfo(BaseModel):
    version: str
    feature_service: str = Field(description="Feature service the version reads.")
    owner: str | None = None
    team: str | None = None
    run_id: str | None = Field(None, description="MLflow run that trained it.")
    dataset_digest: str | None = None


class ModelSummary(BaseModel):
    name: str
    stable_version: str
    canary_version: str | None = None
    canary_weight: float = Field(0.0, description="Percent of entities on the canary.")


class ModelDetail(ModelSummary):
    versions: list[VersionInfo] = Field(description="Published versions, newest last.")
    analysis: Analysis | None = Field(None, description="Canary analysis thresholds.")
    backends: list[BackendHealth]


class ModelList(BaseModel):
    models: list[ModelSummary]


class Health(BaseModel):
    status: str
    detail: str | None = None


class Feedback(BaseModel):
    """The true outcome of a prediction, once known (e.g. a chargeback days later)."""

    model_config = ConfigDict(extra="forbid")

    prediction_id: str = Field(
        min_length=1, max_length=64, pattern=r"^[0-9a-f]+(-[0-9]+)?$", description="From predict."
    )
    label: int = Field(ge=0, le=1, description="1: the transaction was fraud; 0: not.")

    @field_validator("label", mode="before")
    @classmethod
    def _a_number(cls, value: object) -> object:
        # JSON Schema's integer: 1 and 1.0 are labels; true and "1" are not (pydantic's lax
        # mode would take both, its strict mode would refuse 1.0).
        if isinstance(value, bool | str):
            raise ValueError("must be the number 0 or 1")
        return value


class FeedbackReceipt(BaseModel):
    prediction_id: str
    matched: bool = Field(
        description="The prediction was found among this gateway's recent ones and counts "
        "towards its version's online quality. Every label is recorded either way."
    )
    model: str | None = None
    version: str | None = None


class RouteUpdate(BaseModel):
    """New desired state of one model's traffic (admin)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    stable_version: Version | None = Field(None, description="New stable version; default: keep.")
    canary_version: Version | None = Field(
        None, description="Canary version; default: keep the current one."
    )
    canary_weight: float | None = Field(
        None, ge=0, le=100, description="Percent of entities on the canary."
    )
    clear_canary: bool = Field(False, description="Remove the canary (weight 0, no version).")
    canary_fault: Fault | None = Field(
        None,
        description="Inject failures into the canary's requests (testing the rollout analysis); "
        "default: keep the current one.",
    )
    clear_fault: bool = Field(False, description="Stop injecting failures into the canary.")


__all__ = ["ModelName", "Version"]
