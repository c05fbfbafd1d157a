"""Model inputs: a feature service's features plus the request's own fields, as one float32
row in a fixed order. Training, ONNX export and the gateway all build rows here, so a model
sees the same encoding offline and online.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import polars as pl

from shipyard.data.synthetic import CATEGORIES, CHANNELS, DEVICES
from shipyard.features.catalog import FEATURE_SERVICES

# Request-time fields the model takes besides the feature service. Categories are coded by
# their position in the data set's vocabulary; an unknown value is -1 (trees handle it).
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "merchant_category": tuple(CATEGORIES.tolist()),
    "channel": tuple(CHANNELS.tolist()),
    "device_type": tuple(DEVICES.tolist()),
}
HOUR_OF_DAY = "hour_of_day"
REQUEST_INPUTS = [f"{name}_code" for name in VOCABULARIES] + [HOUR_OF_DAY]


def input_names(service: str) -> list[str]:
    """The model's input columns for ``service``, in order."""
    features = [ref.split(":")[1] for ref in FEATURE_SERVICES[service]]
    return features + REQUEST_INPUTS


def encode_frame(frame: pl.DataFrame, service: str) -> np.ndarray:
    """Rows of a training set (features, raw request fields, ``event_timestamp``) as float32."""
    coded = frame.with_columns(
        *[
            pl.col(name)
            .cast(pl.String)
            .replace_strict(list(vocab), list(range(len(vocab))), default=-1, return_dtype=pl.Int32)
            .alias(f"{name}_code")
            for name, vocab in VOCABULARIES.items()
        ],
        pl.col("event_timestamp").dt.hour().alias(HOUR_OF_DAY),
    )
    return coded.select(input_names(service)).to_numpy().astype(np.float32)


def encode_rows(
    features: Sequence[Mapping[str, float]],
    requests: Sequence[Mapping[str, object]],
    at: datetime,
    service: str,
) -> np.ndarray:
    """Online rows (fetched features + request fields) as float32, same order as training."""
    names = [ref.split(":")[1] for ref in FEATURE_SERVICES[service]]
    out = np.empty((len(features), len(names) + len(REQUEST_INPUTS)), dtype=np.float32)
    for i, (values, request) in enumerate(zip(features, requests, strict=True)):
        row = [float(values[name]) for name in names]
        for field, vocab in VOCABULARIES.items():
            value = request.get(field)
            row.append(float(vocab.index(value)) if value in vocab else -1.0)
        row.append(float(at.hour))
        out[i] = row
    return out
