"""BentoML service running the ONNX model; ``--batching`` makes the API batchable (BentoML's
adaptive batcher: ``max_batch_size``; it sizes its own wait, ``max_latency_ms`` left default).

POST /predict {"instances": [[...]]} -> [[p], ...]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from _common import arguments

SERVICE = """
import os

import bentoml
import numpy as np
import onnxruntime as ort

BATCHING = os.environ["BENCH_BATCHING"] == "1"


@bentoml.service(workers=1)
class Model:
    def __init__(self) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            os.environ["BENCH_MODEL"], options, providers=["CPUExecutionProvider"]
        )

    if BATCHING:

        # max_latency_ms stays BentoML's default: it is a budget past which requests are
        # refused (503), not a batching wait; the other batchers refuse nothing.
        @bentoml.api(batchable=True, max_batch_size=int(os.environ["BENCH_MAX_BATCH"]))
        def predict(self, instances: np.ndarray) -> np.ndarray:
            return self.session.run(["probability"], {"input": instances.astype(np.float32)})[0]

    else:

        @bentoml.api
        def predict(self, instances: np.ndarray) -> np.ndarray:
            return self.session.run(["probability"], {"input": instances.astype(np.float32)})[0]
"""


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    (work / "bench_service.py").write_text(SERVICE)
    os.environ.update(
        BENCH_MODEL=str(Path(args.model).resolve()),
        BENCH_BATCHING="1" if args.batching else "0",
        BENCH_MAX_BATCH=str(args.max_batch),
        BENTOML_DO_NOT_TRACK="true",
        BENTOML_HOME=str(work / "bentoml-home"),
    )
    os.chdir(work)
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    os.execv(bentoml, [bentoml, "serve", "bench_service:Model", "--host", "127.0.0.1",
                       "--port", str(args.port)])  # fmt: skip


if __name__ == "__main__":
    main()
