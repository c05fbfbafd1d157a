"""LightGBM training on a time-split training set.

The holdout is the most recent slice of time, never a random sample: a fraud model is judged on
the future it will face, and a random split would let a customer's later rows teach the model
about their earlier ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import lightgbm as lgb
import numpy as np
import polars as pl


@dataclass(frozen=True)
class HyperParameters:
    """LightGBM knobs exposed as pipeline inputs."""

    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 50
    feature_fraction: float = 0.9
    bagging_fraction: float = 0.8
    seed: int = 7

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.n_estimators <= 10_000, "n_estimators must be in [1, 10000]"),
            (0 < self.learning_rate <= 1, "learning_rate must be in (0, 1]"),
            (2 <= self.num_leaves <= 4096, "num_leaves must be in [2, 4096]"),
            (self.min_child_samples >= 1, "min_child_samples must be >= 1"),
            (0 < self.feature_fraction <= 1, "feature_fraction must be in (0, 1]"),
            (0 < self.bagging_fraction <= 1, "bagging_fraction must be in (0, 1]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def lightgbm(self) -> dict:
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "seed": self.seed,
            "deterministic": True,
            "num_threads": 0,
            "verbose": -1,
        }

    def as_dict(self) -> dict:
        return asdict(self)


def time_split(
    frame: pl.DataFrame, holdout_fraction: float = 0.2
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Train on the earlier ``1 - holdout_fraction`` of the time span, hold out the rest."""
    if not 0 < holdout_fraction < 1:
        raise ValueError("holdout_fraction must be in (0, 1)")
    times = frame.get_column("event_timestamp")
    cut = times.min() + (times.max() - times.min()) * (1 - holdout_fraction)
    train = frame.filter(pl.col("event_timestamp") < cut)
    holdout = frame.filter(pl.col("event_timestamp") >= cut)
    return train, holdout


def train(x: np.ndarray, y: np.ndarray, names: list[str], params: HyperParameters) -> lgb.Booster:
    """A binary LightGBM booster on float32 inputs named ``names``, with float32-exact splits."""
    data = lgb.Dataset(x, label=y, feature_name=names, free_raw_data=True)
    return float32_thresholds(
        lgb.train(params.lightgbm(), data, num_boost_round=params.n_estimators)
    )


def float32_thresholds(booster: lgb.Booster) -> lgb.Booster:
    """The same booster with every split threshold rounded down to a float32 value.

    LightGBM keeps thresholds as doubles halfway between two training values; ONNX tree
    ensembles (and Triton) hold them as float32. A float32 input equal to the training value just
    above a threshold goes right natively but left in ONNX when the threshold rounds up to it —
    enough to move scores by 1e-4 on a million rows. Rounding each threshold *down* to the
    nearest float32 changes no native decision on float32 inputs (no float32 lies between the
    two) and makes the ONNX graph take exactly the native path.
    """
    # tree_sizes= gives each tree's byte length; rewritten numbers change it, and LightGBM
    # parses trees one after another without it.
    lines = [
        line
        for line in booster.model_to_string().splitlines()
        if not line.startswith("tree_sizes=")
    ]
    for i, line in enumerate(lines):
        if line.startswith("threshold="):
            values = np.array(line.removeprefix("threshold=").split(), dtype=np.float64)
            down = values.astype(np.float32)
            up = down.astype(np.float64) > values
            down[up] = np.nextafter(down[up], np.float32(-np.inf))
            lines[i] = "threshold=" + " ".join(repr(float(v)) for v in down)
    return lgb.Booster(model_str="\n".join(lines) + "\n")


def predict(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    """Fraud probabilities."""
    return np.asarray(booster.predict(x), dtype=np.float64)
