"""Ray Serve deployment running the ONNX model (a local Ray instance, one replica);
``--batching`` wraps the model call in ``@serve.batch``.

POST /predict {"instances": [[...]]} -> {"predictions": [p, ...]}
"""

from __future__ import annotations

import time

import numpy as np
import ray
from _common import INPUT, OUTPUT, arguments, session
from ray import serve
from starlette.requests import Request


def build(path: str, batching: bool, max_batch: int, max_wait_s: float):
    if batching:

        @serve.deployment
        class Model:
            def __init__(self) -> None:
                self.session = session(path)

            @serve.batch(max_batch_size=max_batch, batch_wait_timeout_s=max_wait_s)
            async def score(self, rows: list[np.ndarray]) -> list[list[float]]:
                x = np.concatenate(rows)
                y = self.session.run([OUTPUT], {INPUT: x})[0][:, 0]
                out, start = [], 0
                for r in rows:
                    out.append(y[start : start + len(r)].tolist())
                    start += len(r)
                return out

            async def __call__(self, request: Request) -> dict:
                x = np.asarray((await request.json())["instances"], dtype=np.float32)
                return {"predictions": await self.score(x)}

    else:

        @serve.deployment
        class Model:
            def __init__(self) -> None:
                self.session = session(path)

            async def __call__(self, request: Request) -> dict:
                x = np.asarray((await request.json())["instances"], dtype=np.float32)
                return {"predictions": self.session.run([OUTPUT], {INPUT: x})[0][:, 0].tolist()}

    return Model.bind()


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    app = build(args.model, args.batching, args.max_batch, args.max_wait_ms / 1000)
    serve.run(app, route_prefix="/predict")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
