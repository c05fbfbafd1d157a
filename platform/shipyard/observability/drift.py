"""Drift maths: binned reference distributions and the population stability index (PSI).

A reference is computed when a model version is exported, from the rows it was evaluated on,
and stored beside the model (``reference.json``): per input feature, bin edges at the
reference's deciles and the share of rows in each bin; for the score, twenty equal bins of
[0, 1]. Live traffic is binned on the same edges; ``psi`` compares the two.

PSI = sum over bins of (actual - expected) * ln(actual / expected). Rules of thumb: < 0.1 no
shift, 0.1-0.2 moderate, > 0.2 significant. Empty bins are smoothed with a small floor so one
empty bin does not make the index infinite.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REFERENCE_FILE = "reference.json"
FEATURE_BINS = 10
SCORE_EDGES = np.linspace(0.0, 1.0, 21)
_FLOOR = 1e-4


@dataclass(frozen=True)
class Binned:
    """Bin edges (inner cut points) and the expected share of each bin."""

    cuts: np.ndarray  # len = bins - 1; a value v falls in bin searchsorted(cuts, v, "right")
    expected: np.ndarray  # len = bins, sums to 1

    def counts(self, values: np.ndarray) -> np.ndarray:
        """How many of ``values`` fall in each bin (NaN counts in the last bin)."""
        index = np.searchsorted(self.cuts, values, side="right")
        return np.bincount(index, minlength=len(self.expected))


@dataclass(frozen=True)
class Reference:
    features: dict[str, Binned]
    score: Binned
    rows: int

    def to_json(self) -> str:
        def dump(binned: Binned) -> dict:
            return {"cuts": binned.cuts.tolist(), "expected": binned.expected.tolist()}

        return json.dumps(
            {
                "rows": self.rows,
                "score": dump(self.score),
                "features": {name: dump(b) for name, b in self.features.items()},
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Reference:
        raw = json.loads(text)

        def load(item: dict) -> Binned:
            return Binned(np.asarray(item["cuts"], float), np.asarray(item["expected"], float))

        return cls(
            features={name: load(item) for name, item in raw["features"].items()},
            score=load(raw["score"]),
            rows=int(raw["rows"]),
        )

    @classmethod
    def read(cls, folder: Path) -> Reference | None:
        path = folder / REFERENCE_FILE
        return cls.from_json(path.read_text()) if path.is_file() else None


def _binned(values: np.ndarray, cuts: np.ndarray) -> Binned:
    counts = np.bincount(np.searchsorted(cuts, values, side="right"), minlength=len(cuts) + 1)
    return Binned(cuts, counts / max(1, counts.sum()))


def reference_from(x: np.ndarray, names: list[str], scores: np.ndarray) -> Reference:
    """The reference of rows ``x`` (columns ``names``) and their ``scores``."""
    features = {}
    for column, name in enumerate(names):
        values = x[:, column].astype(float)
        # Decile cut points; duplicates collapse (a count feature with few values gets fewer
        # bins), so every bin is a real interval of the reference.
        cuts = np.unique(np.quantile(values, np.linspace(0, 1, FEATURE_BINS + 1)[1:-1]))
        cuts = cuts[cuts > values.min()] if len(values) else cuts  # no empty first bin
        features[name] = _binned(values, cuts)
    score = _binned(scores.astype(float), SCORE_EDGES[1:-1])
    return Reference(features=features, score=score, rows=len(x))


def psi(expected: np.ndarray, counts: np.ndarray) -> float:
    """Population stability index of observed bin ``counts`` against ``expected`` shares."""
    total = counts.sum()
    if total == 0:
        return float("nan")  # no traffic: unknown, never "no drift"
    actual = np.maximum(counts / total, _FLOOR)
    expected = np.maximum(expected, _FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))
