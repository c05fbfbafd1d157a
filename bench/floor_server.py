"""The floor of the gateway's end-to-end path: the same work with every avoidable layer removed.

A raw asyncio HTTP/1.1 server (no framework, no validation, no routing, no metrics, no audit)
that, per request, parses the JSON body, reads the customer's and the merchant's features with
one ``SELECT`` each from the same Feast SQLite online store (pre-serialized keys, values decoded
with the gateway's decoder), builds the same input row and scores it with an in-process ONNX
Runtime session of the same model file, then echoes the score as JSON.

    python bench/floor_server.py --port 9999 --model-dir <repo>/<model>/<version> \\
        --state-dir <state dir>
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort
import orjson


def build_scorer(state_dir: Path, model_dir: Path):
    """Plan the reads once (as the gateway does) and return ``score(instance) -> float``."""
    import os

    os.environ.setdefault("SHIPYARD_STATE_DIR", str(state_dir))
    from shipyard.features.encoding import encode_rows
    from shipyard.features.online import OnlineFeatureReader
    from shipyard.features.store import open_store
    from shipyard.settings import load_settings

    settings = load_settings(state_dir=state_dir)
    metadata = json.loads((model_dir / "serving.json").read_text())
    service = metadata["feature_service"]
    reader = OnlineFeatureReader(settings, open_store(settings), service)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"]
    )

    def score(instance: dict) -> float:
        features = reader.read([instance])
        x = encode_rows(features, [instance], datetime.now(UTC), service)
        return float(session.run(["probability"], {"input": x})[0][0, 0])

    return score


class FloorProtocol(asyncio.Protocol):
    def __init__(self, score) -> None:
        self.score = score
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            marker = head.find(b"content-length:")
            length = 0
            if marker >= 0:
                stop = head.find(b"\r\n", marker)
                length = int(head[marker + 15 : stop if stop >= 0 else len(head)])
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body, self.buffer = self.buffer[head_end + 4 : end], self.buffer[end:]
            if body:
                instance = orjson.loads(body)["instances"][0]
                payload = orjson.dumps({"score": self.score(instance)})
            else:  # a probe (GET): alive
                payload = b'{"status":"ok"}'
            self.transport.write(  # type: ignore[attr-defined]
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(payload)).encode()
                + b"\r\n\r\n"
                + payload
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    args = parser.parse_args()
    score = build_scorer(args.state_dir, args.model_dir)
    score({"customer_id": 1, "merchant_id": 1, "amount": 1.0, "merchant_category": "x",
           "channel": "pos", "device_type": "chip"})  # fmt: skip
    np.seterr(all="ignore")

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: FloorProtocol(score), "127.0.0.1", args.port)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve())


if __name__ == "__main__":
    main()
