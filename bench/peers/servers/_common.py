"""Arguments and the ONNX Runtime session every peer server shares (stdlib + ORT only: each
server runs inside its peer's own environment)."""

from __future__ import annotations

import argparse

INPUT, OUTPUT = "input", "probability"


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True, help="model.onnx")
    parser.add_argument("--batching", action="store_true", help="the peer's dynamic batcher on")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=1.0)
    parser.add_argument("--work-dir", default=None, help="scratch folder for config files")
    return parser.parse_args()


def session(path: str):
    """One single-threaded session, as Shipyard's in-process backend and floor use."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
