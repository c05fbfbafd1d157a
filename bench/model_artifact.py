"""The one model artifact every model-hop contender serves, and the request payloads.

A LightGBM binary classifier of 100 trees trained with Shipyard's own training code
(``shipyard.training.model.train``, float32-exact thresholds) on a seeded synthetic matrix as
wide as the fraud model's current feature service, exported with Shipyard's export path
(``shipyard.training.export.to_onnx`` + ``check_parity``): ``input`` [-1, n] FP32 →
``probability`` [-1, 1]. The same ``model.onnx`` is written into a Shipyard Triton
model-repository entry (``write_triton_entry``), as the training pipeline's export step does.

Payloads: the same single rows for everyone, in each protocol's own JSON shape —
``instances`` (``{"instances": [[…]]}``: FastAPI, BentoML, KServe v1, Ray Serve, the floor) and
``v2`` (the Open Inference Protocol: MLServer, PyTriton, Shipyard's Triton). The expected score of
each row (in-process ONNX Runtime) is kept so a contender's answer can be checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL_NAME = "bench-model"
TREES = 100
SERVICE = "fraud_scoring_v2"
ROWS = 512


@dataclass(frozen=True)
class Artifact:
    folder: Path
    onnx: Path
    repository: Path  # a Shipyard Triton model repository holding MODEL_NAME version 1
    width: int
    rows: np.ndarray  # payload rows, float32
    expected: np.ndarray  # in-process ONNX Runtime score of each row

    def bodies(self, protocol: str) -> list[bytes]:
        return [body(protocol, row) for row in self.rows]


def body(protocol: str, row: np.ndarray) -> bytes:
    values = [float(v) for v in row]
    if protocol == "instances":
        return json.dumps({"instances": [values]}).encode()
    if protocol == "v2":
        return json.dumps(
            {
                "inputs": [
                    {"name": "input", "shape": [1, len(values)], "datatype": "FP32", "data": values}
                ]
            }
        ).encode()
    raise ValueError(protocol)


def build(folder: Path) -> Artifact:
    """Train, export and check the artifact once; later calls reuse the files."""
    from shipyard.features.encoding import input_names

    names = input_names(SERVICE)
    width = len(names)
    onnx_path = folder / "model.onnx"
    repository = folder / "triton-models"
    rows_path = folder / "rows.npy"
    expected_path = folder / "expected.npy"
    if not (onnx_path.is_file() and rows_path.is_file() and expected_path.is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        from shipyard.training.export import check_parity, to_onnx, write_triton_entry
        from shipyard.training.model import HyperParameters, predict, train

        rng = np.random.default_rng(10)
        x = rng.normal(size=(20_000, width)).astype(np.float32)
        x[:, 0] = np.abs(x[:, 0]) * 100  # an amount-like column
        logit = 0.02 * x[:, 0] + x[:, 1] - 0.5 * x[:, 2] * x[:, 3] + 0.3 * np.sin(x[:, 4] * 3)
        y = (logit + rng.normal(scale=1.0, size=len(x)) > 2.0).astype(np.int32)
        booster = train(x, y, names, HyperParameters(n_estimators=TREES))
        model = to_onnx(booster, width)
        rows = x[:ROWS]
        check_parity(model, predict(booster, rows), rows)
        onnx_path.write_bytes(model)
        write_triton_entry(repository, MODEL_NAME, 1, model, width)
        import onnxruntime as ort

        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        expected = session.run(["probability"], {"input": rows})[0][:, 0]
        np.save(rows_path, rows)
        np.save(expected_path, expected)
    return Artifact(
        folder, onnx_path, repository, width, np.load(rows_path), np.load(expected_path)
    )


def first_numbers(payload: object, limit: int = 4) -> list[float]:
    """The first numbers of a JSON answer, depth first (where each protocol puts the score)."""
    found: list[float] = []

    def walk(value: object) -> None:
        if len(found) >= limit:
            return
        if isinstance(value, bool):
            return
        if isinstance(value, int | float):
            found.append(float(value))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(payload)
    return found
