"""Open-loop HTTP load: requests leave on a fixed schedule whatever the server does.

A dispatcher releases one request every ``1/rate`` seconds into a queue that a pool of
keep-alive connections drains. Latency is measured from the **scheduled** send time, so time a
request waits because every connection is busy counts (no coordinated omission: a closed loop
would slow down with the server and hide its queueing). A tiny HTTP/1.1 client over asyncio
streams keeps the generator's own cost at tens of microseconds per request.

Used as a module (``run_load``) or a process pinned to its own core:

    python bench/loadgen.py --url http://127.0.0.1:8080/v1/models/m/predict \\
        --bodies bodies.jsonl --rate 500 --seconds 10 --warmup 2

``--clients N`` instead of ``--rate`` runs a closed loop of N concurrent clients (``run_closed``,
the batching benchmark B4).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    rate: float
    seconds: float
    sent: int
    ok: int
    errors: int  # non-2xx answers
    failed: int  # no answer (connection error, timeout)
    achieved_rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    statuses: dict[str, int]


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes, timeout_s: float) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        status_line = await asyncio.wait_for(self.reader.readline(), timeout_s)
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        close = chunked = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:  # some servers stream their answers
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _requests(url: str, bodies: list[bytes], headers: dict[str, str]) -> list[bytes]:
    parts = urlsplit(url)
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return [
        (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\n{extra}\r\n"
        ).encode()
        + b
        for b in bodies
    ]


async def run_load(
    url: str,
    bodies: list[bytes],
    rate: float,
    seconds: float,
    warmup_s: float = 1.0,
    connections: int = 64,
    headers: dict[str, str] | None = None,
    timeout_s: float = 5.0,
    drain_s: float = 2.0,
) -> LoadResult:
    """Send ``rate`` requests per second for ``warmup_s + seconds``; measure the last part.
    Answers still missing ``drain_s`` after the last send count as failed."""
    parts = urlsplit(url)
    raw = _requests(url, bodies, headers or {})
    queue: asyncio.Queue[tuple[int, float, bytes, bool] | None] = asyncio.Queue()
    pending: dict[int, float] = {}  # measured requests not answered yet -> scheduled time
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    counts = {"sent": 0, "ok": 0, "errors": 0, "failed": 0}

    async def worker() -> None:
        connection = _Connection(parts.hostname or "127.0.0.1", parts.port or 80)
        while True:
            item = await queue.get()
            if item is None:
                connection.close()
                return
            index, scheduled, request, measured = item
            try:
                status = await connection.request(request, timeout_s)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                connection.close()
                if measured:
                    pending.pop(index, None)
                    counts["failed"] += 1
                continue
            if not measured:
                continue
            pending.pop(index, None)
            latencies.append(time.perf_counter() - scheduled)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            counts["ok" if 200 <= status < 300 else "errors"] += 1

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    interval = 1.0 / rate
    start = time.perf_counter()
    total = int((warmup_s + seconds) * rate)
    warm = int(warmup_s * rate)
    for i in range(total):
        scheduled = start + i * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        measured = i >= warm
        counts["sent"] += measured
        if measured:
            pending[i] = scheduled
        queue.put_nowait((i, scheduled, raw[i % len(raw)], measured))
    for _ in workers:
        queue.put_nowait(None)
    # A saturated server would keep us waiting for its whole backlog: after ``drain_s`` the
    # requests still unanswered count as failed, with their age so far as their latency (a
    # lower bound), so p99 still shows the queueing.
    done, running = await asyncio.wait(workers, timeout=drain_s)
    cutoff = time.perf_counter()
    for task in running:
        task.cancel()
    _raise_first(done)
    for scheduled in pending.values():
        latencies.append(cutoff - scheduled)
        counts["failed"] += 1
    elapsed = min(cutoff, start + warmup_s + seconds + drain_s) - (start + warmup_s)
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return LoadResult(
        rate=rate,
        seconds=seconds,
        sent=counts["sent"],
        ok=counts["ok"],
        errors=counts["errors"],
        failed=counts["failed"],
        achieved_rps=round(counts["ok"] / elapsed, 1) if elapsed > 0 else 0.0,
        p50_ms=round(percentile(ms, 0.50), 3),
        p99_ms=round(percentile(ms, 0.99), 3),
        p999_ms=round(percentile(ms, 0.999), 3),
        max_ms=round(ms[-1], 3) if ms else float("nan"),
        statuses=statuses,
    )


def _raise_first(tasks: set[asyncio.Task]) -> None:
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def run_closed(
    url: str,
    bodies: list[bytes],
    clients: int,
    seconds: float,
    warmup_s: float = 1.0,
    headers: dict[str, str] | None = None,
    timeout_s: float = 5.0,
    drain_s: float = 2.0,
) -> LoadResult:
    """``clients`` concurrent clients, each sending its next request as soon as the last is
    answered (closed loop: the batching benchmark's "N concurrent clients"). ``rate`` in the
    result is the achieved rate; latency is from the send time."""
    parts = urlsplit(url)
    raw = _requests(url, bodies, headers or {})
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    counts = {"sent": 0, "ok": 0, "errors": 0, "failed": 0}
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = measure_from + seconds

    async def client(index: int) -> None:
        connection = _Connection(parts.hostname or "127.0.0.1", parts.port or 80)
        i = index
        while True:
            sent = time.perf_counter()
            if sent >= stop_at:
                break
            measured = sent >= measure_from
            counts["sent"] += measured
            i += clients
            try:
                status = await connection.request(raw[i % len(raw)], timeout_s)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                connection.close()
                counts["failed"] += measured
                continue
            if not measured:
                continue
            latencies.append(time.perf_counter() - sent)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            counts["ok" if 200 <= status < 300 else "errors"] += 1
        connection.close()

    tasks = [asyncio.create_task(client(i)) for i in range(clients)]
    done, running = await asyncio.wait(tasks, timeout=warmup_s + seconds + drain_s)
    for task in running:  # stuck on a saturated server: the request in flight is lost
        task.cancel()
        counts["failed"] += 1
    _raise_first(done)
    elapsed = max(time.perf_counter(), stop_at) - measure_from
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    achieved = round(counts["ok"] / elapsed, 1) if elapsed > 0 else 0.0
    return LoadResult(
        rate=achieved,
        seconds=seconds,
        sent=counts["sent"],
        ok=counts["ok"],
        errors=counts["errors"],
        failed=counts["failed"],
        achieved_rps=achieved,
        p50_ms=round(percentile(ms, 0.50), 3),
        p99_ms=round(percentile(ms, 0.99), 3),
        p999_ms=round(percentile(ms, 0.999), 3),
        max_ms=round(ms[-1], 3) if ms else float("nan"),
        statuses=statuses,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", required=True, help="JSON lines file, one request body each")
    parser.add_argument("--rate", type=float, help="requests per second (open loop)")
    parser.add_argument("--clients", type=int, help="concurrent clients (closed loop), not --rate")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    args = parser.parse_args()
    with open(args.bodies, "rb") as handle:
        bodies = [line.rstrip(b"\n") for line in handle if line.strip()]
    headers = dict(h.split(": ", 1) for h in args.header)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if args.clients:
        load = run_closed(args.url, bodies, args.clients, args.seconds, args.warmup, headers)
    elif args.rate:
        load = run_load(
            args.url, bodies, args.rate, args.seconds, args.warmup, args.connections, headers
        )
    else:
        parser.error("give --rate (open loop) or --clients (closed loop)")
    result = asyncio.run(load)
    json.dump(asdict(result), sys.stdout)
    print()


if __name__ == "__main__":
    main()
