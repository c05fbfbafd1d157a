"""MLServer with a custom runtime running the ONNX model (MLServer ships no ONNX runtime).

Writes ``settings.json`` and ``model-settings.json`` into the work dir and runs
``mlserver start`` there (MLServer's defaults otherwise: one parallel worker, metrics on).
Adaptive batching with ``--batching``: ``max_batch_size`` / ``max_batch_time``.

POST /v2/models/model/infer (Open Inference Protocol)
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

from _common import arguments

RUNTIME = """
import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxModel(MLModel):
    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            self.settings.parameters.uri, options, providers=["CPUExecutionProvider"]
        )
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32)
        y = self.session.run(["probability"], {"input": x})[0]
        return InferenceResponse(
            model_name=self.name, outputs=[NumpyCodec.encode_output("probability", y)]
        )
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    (work / "onnx_runtime.py").write_text(RUNTIME)
    (work / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": args.port, "grpc_port": free_port(),
        "metrics_port": free_port(), "debug": False,
    }))  # fmt: skip
    model = {"name": "model", "implementation": "onnx_runtime.OnnxModel",
             "parameters": {"uri": str(Path(args.model).resolve())}}  # fmt: skip
    if args.batching:
        model |= {"max_batch_size": args.max_batch, "max_batch_time": args.max_wait_ms / 1000}
    (work / "model-settings.json").write_text(json.dumps(model))
    os.chdir(work)
    mlserver = str(Path(sys.executable).with_name("mlserver"))
    os.execv(mlserver, [mlserver, "start", str(work)])


if __name__ == "__main__":
    main()
