"""Triton Python-backend model: runs the version's ``model.onnx`` with ONNX Runtime.

Used by the embedded stack, whose Triton has no ONNX Runtime backend; on a cluster the ONNX
Runtime backend serves the same file. Runs inside Triton's stub environment (numpy<2 and
onnxruntime), so it imports nothing from Shipyard.
"""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]
        folder = Path(args["model_repository"]) / args["model_version"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # Triton scales with instances, not threads
        self.session = ort.InferenceSession(
            str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    def execute(self, requests):
        # Dynamic batching hands over several requests: score them in one ONNX Runtime call.
        inputs = [
            pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy() for r in requests
        ]
        sizes = [len(x) for x in inputs]
        scores = self.session.run([self.output_name], {self.input_name: np.concatenate(inputs)})[0]
        responses = []
        start = 0
        for size in sizes:
            tensor = pb_utils.Tensor(
                self.output_name, scores[start : start + size].astype(np.float32)
            )
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
            start += size
        return responses
