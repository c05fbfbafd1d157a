"""The model hop's floor: a raw asyncio HTTP/1.1 echo (no framework, no validation, no routing)
that parses the JSON row, scores it with in-process ONNX Runtime and answers the score.

POST / {"instances": [[...]]} -> {"predictions": [p]}
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
from _common import INPUT, OUTPUT, arguments, session

try:
    import orjson

    loads, dumps = orjson.loads, orjson.dumps
except ImportError:  # pragma: no cover
    loads, dumps = json.loads, lambda v: json.dumps(v).encode()


class Floor(asyncio.Protocol):
    def __init__(self, model) -> None:
        self.model = model
        self.buffer = b""

    def connection_made(self, transport) -> None:
        self.transport = transport

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
                x = np.asarray(loads(body)["instances"], dtype=np.float32)
                scores = self.model.run([OUTPUT], {INPUT: x})[0][:, 0]
                payload = dumps({"predictions": scores.tolist()})
            else:
                payload = b'{"status":"ok"}'
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(payload)).encode() + b"\r\n\r\n" + payload
            )  # fmt: skip


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    model = session(args.model)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Floor(model), "127.0.0.1", args.port)
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
