"""Live model monitoring in the gateway: data drift (PSI per feature), prediction drift (PSI of
the score) and online quality from delayed labels (concept drift).

* Drift: each prediction's input row and score are copied into a preallocated queue on the
  request path (a slice assignment); every ``refresh_s`` the queue is binned on the version's
  reference edges in one vectorized pass per column. The queue has a fixed size, so the
  background pass costs the same whatever the traffic; a full queue is binned at once.
  Counts live in two half-windows: PSI is computed over the last ``window_s`` (the previous
  half plus the current one), so it follows traffic without jumping at each rotation.
* Quality: ``POST /v1/feedback`` gives a prediction's true label. The prediction's version and
  score are found among this worker's recent predictions; the last ``quality_window``
  labelled predictions per version give a rolling ROC-AUC and precision at the decision
  threshold.

Gauges are refreshed with the drift counts; PSI is NaN (absent traffic is unknown, not "no
drift") until a version has ``min_rows`` rows in its window.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np

from serving.models import ServedVersion
from shipyard.observability.drift import Reference, psi
from shipyard.observability.metrics import GatewayMetrics

log = logging.getLogger("shipyard.gateway.monitoring")

DECISION_THRESHOLD = 0.5
# Rows queued per version between refreshes before they are binned on the spot: 4096 rows of a
# dozen float64 columns is ~400 KB, and binning them takes well under a millisecond.
QUEUE_ROWS = 4096


@dataclass
class _VersionWindow:
    served: ServedVersion
    reference: Reference
    current: list[np.ndarray] = field(default_factory=list)  # per feature, then the score
    previous: list[np.ndarray] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.binned = [*self.reference.features.values(), self.reference.score]
        self.current = self._zeros()
        self.previous = self._zeros()
        # Queued rows: the features, then the score, as the reference's columns are ordered.
        self.queued = np.empty((QUEUE_ROWS, len(self.binned)))
        self.filled = 0
        self.mismatched = False

    def _zeros(self) -> list[np.ndarray]:
        return [np.zeros(len(b.expected), dtype=np.int64) for b in self.binned]

    def queue(self, x: np.ndarray, scores: np.ndarray) -> None:
        """Request path: copy the rows in; bin the queue first if they would not fit."""
        if x.shape[1] != len(self.binned) - 1:
            # Monitoring never fails a prediction: rows whose width is not the reference's are
            # left out, and said once per version.
            if not self.mismatched:
                self.mismatched = True
                log.warning(
                    "drift monitor: %s version %s rows have %d features, its reference %d; "
                    "not monitored", self.served.model, self.served.version, x.shape[1],
                    len(self.binned) - 1,
                )  # fmt: skip
            return
        rows = len(scores)
        if self.filled + rows > QUEUE_ROWS:
            self.fold()
            if rows > QUEUE_ROWS:  # one very large request: bin it directly
                self._count(np.column_stack([x, scores]))
                return
        end = self.filled + rows
        self.queued[self.filled : end, :-1] = x
        self.queued[self.filled : end, -1] = scores
        self.filled = end

    def fold(self) -> None:
        """Bin the queued rows into the current half-window and empty the queue."""
        if self.filled:
            self._count(self.queued[: self.filled])
            self.filled = 0

    def _count(self, rows: np.ndarray) -> None:
        for column, (counts, reference) in enumerate(zip(self.current, self.binned, strict=True)):
            counts += reference.counts(rows[:, column])


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC-AUC by ranks (Mann-Whitney U), ties averaged; NaN without both classes."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    u = ranks[labels == 1].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


class Monitor:
    def __init__(
        self,
        metrics: GatewayMetrics,
        window_s: float = 300.0,
        min_rows: int = 100,
        quality_window: int = 2000,
        recent: int = 200_000,
    ) -> None:
        self.metrics = metrics
        self.window_s = window_s
        self.min_rows = min_rows
        self.quality_window = quality_window
        self._windows: dict[tuple[str, str], _VersionWindow] = {}
        self._recent: OrderedDict[str, tuple[str, str, float]] = OrderedDict()
        self._recent_cap = recent
        self._labelled: dict[tuple[str, str], deque[tuple[float, int]]] = {}

    # request path: cheap

    def observe(
        self, served: ServedVersion, ids: list[str], x: np.ndarray, scores: np.ndarray
    ) -> None:
        key = (served.model, served.version)
        window = self._windows.get(key)
        if window is None and served.reference is not None:
            window = self._windows[key] = _VersionWindow(served, served.reference)
        if window is not None:
            window.queue(x, scores)
        recent = self._recent
        for prediction_id, score in zip(ids, scores.tolist(), strict=True):
            recent[prediction_id] = (served.model, served.version, score)
        while len(recent) > self._recent_cap:
            recent.popitem(last=False)

    def feedback(self, prediction_id: str, label: int) -> tuple[str, str] | None:
        """Record a true label; the (model, version) it matched, or None if unknown here."""
        found = self._recent.get(prediction_id)
        if found is None:
            return None
        model, version, score = found
        labelled = self._labelled.setdefault((model, version), deque(maxlen=self.quality_window))
        labelled.append((score, label))
        return model, version

    # background: every few seconds

    def refresh(self) -> None:
        now = time.monotonic()
        for (model, version), window in self._windows.items():
            window.fold()
            if now - window.started >= self.window_s / 2:
                window.previous, window.current = window.current, window._zeros()
                window.started = now
            self._publish(model, version, window)
        for (model, version), labelled in self._labelled.items():
            if not labelled:
                continue
            scores = np.fromiter((s for s, _ in labelled), float)
            labels = np.fromiter((y for _, y in labelled), int)
            self.metrics.online_auc.labels(model, version).set(roc_auc(scores, labels))
            flagged = scores >= DECISION_THRESHOLD
            precision = labels[flagged].mean() if flagged.any() else float("nan")
            self.metrics.online_precision.labels(model, version).set(precision)
            self.metrics.labelled_predictions.labels(model, version).set(len(labelled))

    def _publish(self, model: str, version: str, window: _VersionWindow) -> None:
        totals = [c + p for c, p in zip(window.current, window.previous, strict=True)]
        rows = int(totals[-1].sum())
        self.metrics.drift_window_rows.labels(model, version).set(rows)
        names = list(window.reference.features)
        values = [
            psi(b.expected, counts) if rows >= self.min_rows else float("nan")
            for b, counts in zip(window.binned, totals, strict=True)
        ]
        for name, value in zip(names, values[:-1], strict=True):
            self.metrics.feature_psi.labels(model, version, name).set(value)
        self.metrics.score_psi.labels(model, version).set(values[-1])
