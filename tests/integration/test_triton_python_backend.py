"""Triton's Python backend runs in the stub environment the installer builds (numpy<2, ORT).

A tiny model is loaded through explicit model control and asked for a real inference; it also
reports the numpy major version its stub imported, so a stub that picked up numpy 2 fails here.
"""

from __future__ import annotations

import json
import textwrap
import urllib.request

from shipyard.settings import Settings
from shipyard.stack.state import StackState

CONFIG = """
name: "stub_check"
backend: "python"
max_batch_size: 8
input [ { name: "x", data_type: TYPE_FP32, dims: [ 3 ] } ]
output [
  { name: "doubled", data_type: TYPE_FP32, dims: [ 3 ] },
  { name: "numpy_major", data_type: TYPE_INT32, dims: [ 1 ] }
]
instance_group [ { kind: KIND_CPU, count: 1 } ]
"""

MODEL = textwrap.dedent("""
    import numpy as np
    import onnxruntime  # noqa: F401  (the stub environment must provide it)
    import triton_python_backend_utils as pb_utils


    class TritonPythonModel:
        def execute(self, requests):
            major = int(np.__version__.split(".")[0])
            responses = []
            for request in requests:
                x = pb_utils.get_input_tensor_by_name(request, "x").as_numpy()
                version = np.full((x.shape[0], 1), major, dtype=np.int32)
                responses.append(pb_utils.InferenceResponse([
                    pb_utils.Tensor("doubled", (x * 2).astype(np.float32)),
                    pb_utils.Tensor("numpy_major", version),
                ]))
            return responses
""")


def post(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        raw = response.read()
    return json.loads(raw) if raw else {}


def test_python_backend_model_loads_and_infers(stack: tuple[Settings, StackState]) -> None:
    settings, _ = stack
    model_dir = settings.state_dir / "triton" / "models" / "stub_check"
    (model_dir / "1").mkdir(parents=True)
    (model_dir / "config.pbtxt").write_text(CONFIG)
    (model_dir / "1" / "model.py").write_text(MODEL)

    post(settings.url("triton_http", "/v2/repository/models/stub_check/load"))
    answer = post(
        settings.url("triton_http", "/v2/models/stub_check/infer"),
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2, 3],
                    "datatype": "FP32",
                    "data": [1.5, -2.0, 0.25, 10.0, 0.0, 3.0],
                }
            ]
        },
    )
    outputs = {out["name"]: out["data"] for out in answer["outputs"]}
    assert outputs["doubled"] == [3.0, -4.0, 0.5, 20.0, 0.0, 6.0]
    assert outputs["numpy_major"] == [1, 1]
