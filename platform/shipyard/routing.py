"""The routing file: desired serving state per model (stable version, canary version and
weight, canary-analysis thresholds).

One file, one schema, three writers and readers: the gateway hot-reloads it, the rollout
analysis and ``shipyard serve route`` rewrite it, and the Helm chart renders the same shape from
``values.models`` into the gateway's ConfigMap::

    models:
      fraud-scoring:
        stable: {version: "3"}
        canary: {version: "4", weight: 20, analysis: {interval_s: 30}}

Writes are atomic (temporary file, fsync, rename): a reader sees the old file or the new one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from shipyard.errors import ConfigError

# Registered-model names double as Triton model names, folder names and metric labels: keep
# them to a safe alphabet (no path traversal, no label escaping).
ModelName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
# MLflow registry versions are positive integers, carried as strings as MLflow does.
Version = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,8}$")]

HEADER = (
    "# Shipyard routing: model -> stable/canary versions and canary weight.\n"
    "# Written by `shipyard serve route`, the rollout analysis and the Helm chart; the gateway\n"
    "# reloads it on change.\n"
)


class Analysis(BaseModel):
    """How the rollout analysis judges a canary (used by ``shipyard rollout``)."""

    model_config = ConfigDict(extra="forbid")

    steps: list[Annotated[float, Field(gt=0, le=100)]] = Field(
        default_factory=lambda: [5.0, 10.0, 25.0, 50.0, 100.0],
        description="Canary weights (percent) stepped through; the last step promotes.",
    )
    interval_s: float = Field(60.0, gt=0, description="Seconds each step is observed.")
    max_failures: int = Field(2, ge=0, description="Failed checks tolerated before rollback.")
    max_error_ratio: float = Field(0.01, ge=0, le=1, description="Canary error ratio ceiling.")
    max_p99_ratio: float = Field(
        1.5, gt=0, description="Canary p99 latency / stable p99 latency ceiling."
    )
    p99_tolerance_ms: float = Field(
        5.0,
        ge=0,
        description="p99 differences below this are noise, whatever their ratio (histogram "
        "buckets are milliseconds apart).",
    )
    max_score_psi: float = Field(
        0.2, ge=0, description="Population stability index between canary and stable scores."
    )
    max_auc_drop: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Online AUC the canary may lose against stable (judged when labels exist).",
    )
    min_requests: int = Field(
        20, ge=1, description="Canary requests a step needs before it is judged."
    )

    @model_validator(mode="after")
    def _increasing(self) -> Analysis:
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise ValueError("analysis.steps must increase")
        return self


class Stable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Version


class Fault(BaseModel):
    """Failure injected into the canary's requests, for game days and for proving that the
    rollout analysis rolls a failing canary back (like a service mesh's fault injection).
    Off unless set, in the routing file or through the authenticated admin API."""

    model_config = ConfigDict(extra="forbid")

    error_ratio: float = Field(
        0.0, ge=0, le=1, description="Share of canary requests answered 500 injected_fault."
    )
    delay_ratio: float = Field(0.0, ge=0, le=1, description="Share of canary requests delayed.")
    delay_ms: int = Field(0, ge=0, le=10_000, description="How long a delayed request waits.")


class Canary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Version
    weight: float = Field(0.0, ge=0, le=100, description="Percent of entities sent here.")
    analysis: Analysis = Field(default_factory=Analysis)
    fault: Fault | None = Field(None, description="Injected failure (testing only).")


class ModelRoute(BaseModel):
    """Desired state of one model's traffic."""

    model_config = ConfigDict(extra="forbid")

    stable: Stable
    canary: Canary | None = None

    @model_validator(mode="after")
    def _distinct_versions(self) -> ModelRoute:
        if self.canary is not None and self.canary.version == self.stable.version:
            raise ValueError(f"canary and stable are both version {self.stable.version}")
        return self

    @property
    def versions(self) -> list[str]:
        extra = [self.canary.version] if self.canary else []
        return [self.stable.version, *extra]


class RoutingTable(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[ModelName, ModelRoute] = Field(default_factory=dict)


def parse(text: str, source: str = "routing file") -> RoutingTable:
    """Validate routing YAML; a mistake is one ConfigError line naming the field."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}".splitlines()[0]) from None
    try:
        return RoutingTable.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{source}: {where}: {message}") from None


def load(path: Path) -> RoutingTable:
    """The routing table in ``path``; a missing file is an empty table (nothing served yet)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return RoutingTable()
    return parse(text, str(path))


def render(table: RoutingTable) -> str:
    body = table.model_dump(mode="json", exclude_none=True)
    return HEADER + yaml.safe_dump(body, sort_keys=True)


def save(path: Path, table: RoutingTable) -> None:
    """Write ``table`` atomically. Raises ConfigError when the file is read-only (a ConfigMap)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path} ({exc.strerror}): on a cluster the routing file is a "
            "ConfigMap; change it with `helm upgrade --set models.…`"
        ) from None
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(render(table))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def with_route(table: RoutingTable, model: str, route: ModelRoute | None) -> RoutingTable:
    """A copy of ``table`` with ``model``'s route replaced (``None`` removes it)."""
    models = dict(table.models)
    if route is None:
        models.pop(model, None)
    else:
        models[model] = route
    return RoutingTable(models=models)


def updated_route(
    model: str,
    current: ModelRoute | None,
    stable: str | None = None,
    canary: str | None = None,
    weight: float | None = None,
    clear_canary: bool = False,
    fault: Fault | None = None,
    clear_fault: bool = False,
) -> ModelRoute:
    """``current`` with the given changes; unset ones keep their value. Raises ConfigError.

    A canary version that changes starts at weight 0 unless a weight is given, and without the
    previous canary's injected fault; the analysis thresholds stay with the model.
    """
    stable = stable or (current.stable.version if current else None)
    if stable is None:
        raise ConfigError(f"{model} has no route yet: give a stable version")
    previous = current.canary if current else None
    new_canary: Canary | None = None
    if not clear_canary:
        version = canary or (previous.version if previous else None)
        if version is None and weight:
            raise ConfigError(f"{model} has no canary: give a canary version")
        if version is not None:
            same = previous is not None and previous.version == version
            if weight is None:
                weight = previous.weight if same else 0.0  # type: ignore[union-attr]
            analysis = previous.analysis if previous else Analysis()
            if fault is None and same and not clear_fault:
                fault = previous.fault  # type: ignore[union-attr]
            new_canary = Canary(
                version=version,
                weight=weight,
                analysis=analysis,
                fault=None if clear_fault else fault,
            )
    if fault is not None and new_canary is None:
        raise ConfigError(f"{model} has no canary to inject a fault into: give a canary version")
    if new_canary is not None and new_canary.version == stable:
        raise ConfigError(f"canary and stable are both version {stable}")
    return ModelRoute(stable=Stable(version=stable), canary=new_canary)
