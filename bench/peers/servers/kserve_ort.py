"""KServe ModelServer (the ``kserve`` package) with a custom ``Model`` running the ONNX model.

POST /v1/models/model:predict {"instances": [[...]]} -> {"predictions": [p, ...]}
"""

from __future__ import annotations

import numpy as np
from _common import INPUT, OUTPUT, arguments, session
from kserve import Model, ModelServer


class OnnxModel(Model):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        self.session = session(self.path)
        self.ready = True
        return self.ready

    async def predict(self, payload, headers=None, response_headers=None):
        x = np.asarray(payload["instances"], dtype=np.float32)
        return {"predictions": self.session.run([OUTPUT], {INPUT: x})[0][:, 0].tolist()}


def main() -> None:
    import socket

    args = arguments(__doc__.splitlines()[0])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        grpc_port = s.getsockname()[1]
    ModelServer(http_port=args.port, grpc_port=grpc_port, enable_grpc=False, workers=1).start(
        [OnnxModel("model", args.model)]
    )


if __name__ == "__main__":
    main()
