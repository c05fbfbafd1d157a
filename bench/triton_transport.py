"""The cost of one gateway -> Triton hop by transport: gRPC (the gateway's client) and HTTP/1.1
with binary tensors, against the running embedded stack's primary Triton.

What it measures
    For each transport, ``--calls`` single-row inferences of the published model (the same
    row, the same version), with 1 and ``--concurrency`` calls in flight, in one asyncio loop
    (uvloop, like the gateway): client CPU per call (this process), Triton's CPU per call
    (``tritonserver`` and its Python-backend stubs, from ``/proc``), and calls per second.
    Client, Triton and stubs are pinned to one CPU, as B3 pins the gateway with its Triton.

    * ``grpc``: ``tritonclient.grpc.aio``, exactly as ``serving.backends.TritonBackend`` calls it;
    * ``http``: a keep-alive HTTP/1.1 connection per in-flight call, ``POST
      /v2/models/<model>/versions/<v>/infer`` with the input as raw bytes after a JSON header
      (Triton's binary tensor extension) and the output asked for in binary; asyncio streams,
      no HTTP library.

    Both answers are checked equal before anything is timed.

Why
    B3 shows the Triton path saturating one core at 500 req/s; this isolates what the hop itself
    costs on each side of it. It changes nothing in Shipyard (the gateway speaks gRPC).

How to run (with the platform up: ``make up``)
    .venv/bin/python bench/triton_transport.py [--calls 3000] [--concurrency 4] [--model M]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shipyard.settings import load_settings
from shipyard.stack.layout import StateLayout
from shipyard.training.export import INPUT, OUTPUT

Call = Callable[[], Awaitable[np.ndarray]]


def client_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def triton_pids(grpc_port: int) -> list[int]:
    """The tritonserver listening on ``grpc_port`` and its Python-backend stubs."""
    found = subprocess.run(["pgrep", "-f", f"grpc-port={grpc_port}"], capture_output=True)
    servers = [int(p) for p in found.stdout.split()]
    stubs = []
    for server in servers:
        children = subprocess.run(["pgrep", "-P", str(server)], capture_output=True)
        stubs += [int(p) for p in children.stdout.split()]
    return servers + stubs


def cpu_of(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


async def grpc_calls(url: str, model: str, version: str, x: np.ndarray, n: int) -> list[Call]:
    from tritonclient.grpc import InferInput, InferRequestedOutput, aio

    client = aio.InferenceServerClient(url)

    async def call() -> np.ndarray:
        tensor = InferInput(INPUT, list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        result = await client.infer(
            model, [tensor], model_version=version, outputs=[InferRequestedOutput(OUTPUT)]
        )
        return result.as_numpy(OUTPUT).ravel()

    return [call] * n


async def http_calls(host: str, port: int, model: str, version: str, x: np.ndarray, n: int):
    raw = x.tobytes()
    header = json.dumps(
        {
            "inputs": [
                {"name": INPUT, "shape": list(x.shape), "datatype": "FP32",
                 "parameters": {"binary_data_size": len(raw)}}
            ],
            "outputs": [{"name": OUTPUT, "parameters": {"binary_data": True}}],
        }
    ).encode()  # fmt: skip
    body = header + raw
    request = (
        f"POST /v2/models/{model}/versions/{version}/infer HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Inference-Header-Content-Length: {len(header)}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    calls = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection(host, port)

        async def call(reader=reader, writer=writer) -> np.ndarray:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = json_length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"inference-header-content-length":
                    json_length = int(value)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"Triton answered {head.splitlines()[0].decode()}")
            payload = await reader.readexactly(length)
            return np.frombuffer(payload[json_length:], dtype=np.float32)

        calls.append(call)
    return calls


async def measure(calls: list[Call], total: int, pids: list[int]) -> dict[str, float]:
    async def loop(call: Call, count: int) -> None:
        for _ in range(count):
            await call()

    await asyncio.gather(*(loop(call, 50) for call in calls))  # warm-up
    client0, server0, started = client_cpu_s(), cpu_of(pids), time.perf_counter()
    await asyncio.gather(*(loop(call, total // len(calls)) for call in calls))
    took = time.perf_counter() - started
    done = total // len(calls) * len(calls)
    return {
        "client_us_per_call": (client_cpu_s() - client0) / done * 1e6,
        "triton_us_per_call": (cpu_of(pids) - server0) / done * 1e6,
        "calls_per_s": done / took,
    }


async def run(args: argparse.Namespace) -> list[dict]:
    settings = load_settings()
    version = str(
        httpx.get(settings.url("gateway", f"/v1/models/{args.model}")).json()["stable_version"]
    )
    pids = triton_pids(settings.ports.triton_grpc)
    if not pids:
        raise SystemExit("no Triton found on the configured gRPC port: start the platform first")
    import onnxruntime as ort

    # Triton's configuration leaves the width open: the version's own ONNX file has it.
    onnx = StateLayout(settings.state_dir).triton_models / args.model / version / "model.onnx"
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    width = session.get_inputs()[0].shape[1]
    x = np.random.default_rng(0).random((1, width), dtype=np.float32)
    every_cpu = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    _pin(pids, "0")
    try:
        return await _compare(args, settings, version, pids, x)
    finally:  # the platform keeps running: give its Triton every CPU back
        _pin(pids, every_cpu)


def _pin(pids: list[int], cpus: str) -> None:
    os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    for pid in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)], capture_output=True)


async def _compare(args, settings, version: str, pids: list[int], x: np.ndarray) -> list[dict]:
    grpc_url = f"127.0.0.1:{settings.ports.triton_grpc}"
    rows = []
    for concurrency in (1, args.concurrency):
        grpc = await grpc_calls(grpc_url, args.model, version, x, concurrency)
        http = await http_calls(
            "127.0.0.1", settings.ports.triton_http, args.model, version, x, concurrency
        )
        expected, got = await grpc[0](), await http[0]()
        if not np.allclose(expected, got, atol=1e-6):
            raise SystemExit(f"transports disagree: gRPC {expected}, HTTP {got}")
        for name, calls in (("grpc", grpc), ("http", http)):
            result = await measure(calls, args.calls, pids)
            rows.append({"transport": name, "in_flight": concurrency, **result})
            print(
                f"{name:4s} in flight {concurrency}: client {result['client_us_per_call']:.0f} "
                f"µs/call, Triton {result['triton_us_per_call']:.0f} µs/call, "
                f"{result['calls_per_s']:,.0f} calls/s",
                flush=True,
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="timed calls per row")
    parser.add_argument("--concurrency", type=int, default=4, help="calls in flight, 2nd row")
    parser.add_argument("--model", default="fraud-scoring")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    rows = asyncio.run(run(args))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
