"""The promotion gate: a candidate must not be worse than the champion on the same holdout.

Judged on the candidate's holdout for both models, so the comparison is like for like. A model
is refused when its ROC-AUC drops more than the tolerance below the champion's, or when any
slice with enough positives falls below the floor or drops more than its own tolerance. The
reasons are returned in words, logged to MLflow and shown by the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shipyard.training.evaluation import Evaluation


@dataclass(frozen=True)
class GatePolicy:
    max_auc_drop: float = 0.01
    min_slice_auc: float = 0.6
    max_slice_auc_drop: float = 0.05
    min_slice_positives: int = 20


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reasons: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verdict = "passed" if self.passed else "refused"
        return f"gate {verdict}: " + ("; ".join(self.reasons) or "no objection")


def judge(
    candidate: Evaluation, champion: Evaluation | None, policy: GatePolicy | None = None
) -> GateDecision:
    """Compare ``candidate`` with ``champion`` (None: no champion yet, only the slice floors)."""
    policy = policy or GatePolicy()
    reasons: list[str] = []
    if champion is not None:
        drop = champion.roc_auc - candidate.roc_auc
        if drop > policy.max_auc_drop:
            reasons.append(
                f"ROC-AUC {candidate.roc_auc:.4f} is {drop:.4f} below the champion's "
                f"{champion.roc_auc:.4f} (tolerance {policy.max_auc_drop})"
            )
    for column, values in candidate.slices.items():
        for value, metrics in values.items():
            if metrics.roc_auc is None or metrics.positives < policy.min_slice_positives:
                continue
            if metrics.roc_auc < policy.min_slice_auc:
                reasons.append(
                    f"slice {column}={value}: ROC-AUC {metrics.roc_auc:.4f} below the floor "
                    f"{policy.min_slice_auc}"
                )
            reference = champion.slices.get(column, {}).get(value) if champion else None
            if reference is not None and reference.roc_auc is not None:
                slice_drop = reference.roc_auc - metrics.roc_auc
                if slice_drop > policy.max_slice_auc_drop:
                    reasons.append(
                        f"slice {column}={value}: ROC-AUC dropped {slice_drop:.4f} "
                        f"(tolerance {policy.max_slice_auc_drop})"
                    )
    return GateDecision(passed=not reasons, reasons=reasons)
