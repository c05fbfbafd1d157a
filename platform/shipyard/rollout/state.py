"""A rollout in progress (or finished): which canary, which step, how many failed checks, why.

Kept beside the routing table by the store, so that a restarted loop resumes where it stopped.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["running", "promoting", "succeeded", "failed", "aborted"]
ACTIVE: tuple[Status, ...] = ("running", "promoting")
Outcome = Literal["passed", "failed", "no-data", "skipped"]


class Check(BaseModel):
    """One analysis check of one step: the measured value against its threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    outcome: Outcome
    value: float | None = None
    threshold: float | None = None
    detail: str = ""

    @classmethod
    def of(cls, name: str, value: float, threshold: float, failed: bool, detail: str = "") -> Check:
        if math.isnan(value):
            return cls(name=name, outcome="no-data", threshold=threshold, detail=detail)
        outcome: Outcome = "failed" if failed else "passed"
        return cls(name=name, outcome=outcome, value=value, threshold=threshold, detail=detail)


class Rollout(BaseModel):
    """The rollout of ``canary`` against ``stable`` for one model."""

    model_config = ConfigDict(extra="forbid")

    model: str
    stable: str
    canary: str
    steps: list[float]
    step: int = 0
    status: Status = "running"
    failures: int = 0
    started_at: float
    step_started_at: float
    updated_at: float
    reason: str = ""
    checks: list[Check] = Field(default_factory=list)
    actor: str = ""

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def weight(self) -> float:
        if self.status == "succeeded":
            return 100.0
        if self.status in ("failed", "aborted"):
            return 0.0
        return self.steps[min(self.step, len(self.steps) - 1)]


class Rollouts(BaseModel):
    """Every model's latest rollout (the store's ``rollouts.json``)."""

    model_config = ConfigDict(extra="forbid")

    rollouts: dict[str, Rollout] = Field(default_factory=dict)
    # Per model, Unix time of the last retraining run the loop launched (rate limit).
    retrained_at: dict[str, float] = Field(default_factory=dict)
