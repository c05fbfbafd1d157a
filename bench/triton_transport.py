"""The cost of one gateway -> Triton hop by transport: gRPC (the gateway's client) and HTTP/1.1
with binary tensors, against the running embedded stack's primary Triton.

What it measures
    For each transport, ``--calls`` single-row inferences of the published model (the same
    row, the same version), with 1 and ``--concurrency`` calls in flight, in one asyncio loop
    (uvloop, like the gateway): client CPU per call (this process), Triton's CPU per call
    (``tritonserver`` and its Python-backend stubs, from ``/proc``), and calls per second.
    Client, Triton and stubs are pinned to one CPU, as B3 pins the gateway with its Triton.

    * ``grpc``: the gateway's ``TritonGrpcBackend`` (tritonclient's asyncio gRPC client);
    * ``http``: the gateway's ``TritonHttpBackend`` (keep-alive HTTP/1.1, ``POST
      /v2/models/<model>/versions/<v>/infer`` with the input as raw bytes after a JSON header,
      Triton's binary tensor extension, and the output asked for in binary).

    Both answers are checked equal before anything is timed.

Why
    B3 showed the Triton path saturating one core at 500 req/s over gRPC; this isolates what the
    hop itself costs on each side of it, for both transports the gateway can use (HTTP is its
    default because of this measurement).

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

from serving.backends import TritonPool, triton_backend
from serving.models import ServedVersion
from shipyard.settings import load_settings
from shipyard.stack.layout import StateLayout

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


async def backend_calls(pool: TritonPool, model: str, version: str, x: np.ndarray, n: int):
    """``n`` callers sharing one of the gateway's own Triton backends (as its requests do)."""
    backend = triton_backend(pool, timeout_s=5.0)
    served = ServedVersion(model, version, "unused", ())

    async def call() -> np.ndarray:
        return await backend.infer(served, x)

    return backend, [call] * n


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
    pools = {
        "grpc": TritonPool("triton-primary", "grpc", f"127.0.0.1:{settings.ports.triton_grpc}"),
        "http": TritonPool("triton-primary", "http", f"127.0.0.1:{settings.ports.triton_http}"),
    }
    rows = []
    for concurrency in (1, args.concurrency):
        made = {t: await backend_calls(p, args.model, version, x, concurrency)
                for t, p in pools.items()}  # fmt: skip
        try:
            expected, got = await made["grpc"][1][0](), await made["http"][1][0]()
            if not np.allclose(expected, got, atol=1e-6):
                raise SystemExit(f"transports disagree: gRPC {expected}, HTTP {got}")
            for name, (_, calls) in made.items():
                result = await measure(calls, args.calls, pids)
                rows.append({"transport": name, "in_flight": concurrency, **result})
                print(
                    f"{name:4s} in flight {concurrency}: client "
                    f"{result['client_us_per_call']:.0f} µs/call, Triton "
                    f"{result['triton_us_per_call']:.0f} µs/call, "
                    f"{result['calls_per_s']:,.0f} calls/s",
                    flush=True,
                )
        finally:
            for backend, _ in made.values():
                await backend.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
