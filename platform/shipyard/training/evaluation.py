"""Evaluation of a fraud model on the holdout: ranking, calibration, slices, and plots."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

# scikit-learn is imported where metrics are computed: the gate step only needs the data
# classes, and it runs in a fresh process where an import costs seconds.
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class SliceMetrics:
    rows: int
    positives: int
    roc_auc: float | None  # None when the slice has a single class


@dataclass(frozen=True)
class Evaluation:
    rows: int
    positives: int
    roc_auc: float
    pr_auc: float
    brier: float
    expected_calibration_error: float
    slices: dict[str, dict[str, SliceMetrics]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def flat_metrics(self) -> dict[str, float]:
        """Scalar metrics named for MLflow (slices as ``slice.<column>.<value>.roc_auc``)."""
        metrics = {
            "roc_auc": self.roc_auc,
            "pr_auc": self.pr_auc,
            "brier": self.brier,
            "expected_calibration_error": self.expected_calibration_error,
            "holdout_rows": float(self.rows),
            "holdout_positives": float(self.positives),
        }
        for column, values in self.slices.items():
            for value, metrics_of in values.items():
                if metrics_of.roc_auc is not None:
                    metrics[f"slice.{column}.{value}.roc_auc"] = metrics_of.roc_auc
        return metrics


def evaluate(y: np.ndarray, scores: np.ndarray, slices: dict[str, np.ndarray]) -> Evaluation:
    """Metrics of ``scores`` against labels ``y``, overall and per value of each slice column."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if len(np.unique(y)) < 2:
        raise ValueError("the holdout holds a single class: widen the data window")
    per_slice: dict[str, dict[str, SliceMetrics]] = {}
    for column, values in slices.items():
        per_slice[column] = {}
        for value in np.unique(values):
            mask = values == value
            labels = y[mask]
            auc = (
                float(roc_auc_score(labels, scores[mask])) if len(np.unique(labels)) == 2 else None
            )
            per_slice[column][str(value)] = SliceMetrics(int(mask.sum()), int(labels.sum()), auc)
    return Evaluation(
        rows=len(y),
        positives=int(y.sum()),
        roc_auc=float(roc_auc_score(y, scores)),
        pr_auc=float(average_precision_score(y, scores)),
        brier=float(np.mean((scores - y) ** 2)),
        expected_calibration_error=_ece(y, scores),
        slices=per_slice,
    )


def _ece(y: np.ndarray, scores: np.ndarray) -> float:
    bins = np.minimum((scores * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    error = 0.0
    for b in range(CALIBRATION_BINS):
        mask = bins == b
        if mask.any():
            error += mask.mean() * abs(scores[mask].mean() - y[mask].mean())
    return float(error)


def plot(y: np.ndarray, scores: np.ndarray, out: Path) -> list[Path]:
    """ROC, precision-recall and calibration plots as PNG files in ``out``."""
    import matplotlib
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = []

    fpr, tpr, _ = roc_curve(y, scores)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(y, scores):.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right")
    paths.append(_save(fig, out / "roc.png"))

    precision, recall, _ = precision_recall_curve(y, scores)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(recall, precision, label=f"AP {average_precision_score(y, scores):.3f}")
    ax.axhline(y.mean(), linestyle="--", color="grey", label=f"base rate {y.mean():.3f}")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    ax.legend(loc="upper right")
    paths.append(_save(fig, out / "precision_recall.png"))

    bins = np.minimum((scores * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    predicted = [scores[bins == b].mean() for b in range(CALIBRATION_BINS) if (bins == b).any()]
    observed = [y[bins == b].mean() for b in range(CALIBRATION_BINS) if (bins == b).any()]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(predicted, observed, marker="o", label="model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    ax.set(xlabel="predicted fraud rate", ylabel="observed fraud rate", title="Calibration")
    ax.legend(loc="upper left")
    paths.append(_save(fig, out / "calibration.png"))
    return paths


def _save(fig: object, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
