"""PyTriton: NVIDIA Triton driven from Python, the model an ``infer_func`` running ONNX Runtime;
``--batching`` turns on Triton's dynamic batcher (``max_queue_delay_microseconds``).

POST /v2/models/model/infer (Open Inference Protocol)
"""

from __future__ import annotations

import socket

import numpy as np
from _common import INPUT, OUTPUT, arguments, session
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    model = session(args.model)

    @batch
    def infer(input):
        return {OUTPUT: model.run([OUTPUT], {INPUT: input.astype(np.float32)})[0]}

    if args.batching:
        config = ModelConfig(
            max_batch_size=args.max_batch,
            batcher=DynamicBatcher(max_queue_delay_microseconds=int(args.max_wait_ms * 1000)),
        )
        shape_in, shape_out = (-1,), (1,)
    else:
        config = ModelConfig(batching=False)
        shape_in, shape_out = (-1, -1), (-1, 1)
    triton_config = TritonConfig(
        http_address="127.0.0.1", http_port=args.port, grpc_address="127.0.0.1",
        grpc_port=free_port(), metrics_port=free_port(), allow_gpu_metrics=False,
    )  # fmt: skip
    with Triton(config=triton_config) as triton:
        triton.bind(
            model_name="model",
            infer_func=infer,
            inputs=[Tensor(name=INPUT, dtype=np.float32, shape=shape_in)],
            outputs=[Tensor(name=OUTPUT, dtype=np.float32, shape=shape_out)],
            config=config,
        )
        triton.serve()


if __name__ == "__main__":
    main()
