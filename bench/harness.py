"""The runner every serving benchmark shares: start a contender, check it, load it, account for
its CPU, stop it, and summarize repetitions.

* **Contenders** are real processes (``Contender``): started in their own session, probed with
  the benchmark's first payload until they answer it correctly (the score must equal in-process
  ONNX Runtime's, so every contender does the same work), stopped by process group and pid.
* **Load** comes from ``bench/loadgen.py`` in its own process: open loop at fixed rates after a
  warm-up (latency from the scheduled send time), or a closed loop of N clients (batching).
* **CPU** per request is the utime+stime the contender's whole process tree spent
  (``/proc/<pid>/stat``, children and threads included) over the requests sent. The rest of the
  machine's busy time during a run is reported as ``other_load_cores``: what other builds and
  tests took from the 2 cores while we measured.
* **Pinning** (``taskset``): contender on CPU 0, load generator on CPU 1, when there are ≥ 2.
* **Repetitions**: each point runs ≥ 3 times; reported as the median with min-max spread.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SLO_P99_MS = 10.0
TICK = os.sysconf("SC_CLK_TCK")


def say(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- machine


def machine() -> dict:
    """Cores, CPU model, load: printed beside every table."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_gib = 0.0
    with contextlib.suppress(OSError, ValueError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        memory_gib = round(int(first.split()[1]) / 2**20, 1)
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": memory_gib,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "pinning": can_pin(),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def can_pin() -> bool:
    return (os.cpu_count() or 1) >= 2 and _which("taskset")


def _which(program: str) -> bool:
    import shutil

    return shutil.which(program) is not None


def busy_seconds() -> float:
    """Machine-wide non-idle CPU seconds so far (all cores)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    # guest time is already counted in user
    return (sum(values[:8]) - idle) / TICK


# --------------------------------------------------------------------------- processes


def tree(root: int) -> list[int]:
    """``root`` and every descendant."""
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        found.append(pid)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                stack += [int(c) for c in children]
    return found


def cpu_seconds(roots: list[int]) -> float:
    """utime + stime of ``roots`` and their descendants, all threads."""
    total = 0.0
    for root in roots:
        for pid in tree(root):
            with contextlib.suppress(OSError, IndexError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def pin(pids: list[int], cpu: str) -> None:
    for pid in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", cpu, str(pid)], capture_output=True)


@dataclass
class Contender:
    """One thing to measure: a command that serves ``url``, or an already running server."""

    name: str
    url: str
    bodies: list[bytes]
    argv: list[str] | None = None  # None: started elsewhere; give ``pids``
    # With ``argv``: processes it relies on that run elsewhere (their CPU counts as its own).
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    pids: list[int] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    # Checks one answer (the parsed JSON, the body index); raises AssertionError when wrong.
    check: Callable[[object, int], None] | None = None
    # Processes (with their trees) placed on the load generator's CPU instead of the
    # contender's: a component that has its own machine on a cluster (e.g. Triton's pod).
    beside_load: list[int] = field(default_factory=list)
    kind: str = "peer"  # "shipyard", "peer" or "floor"
    note: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    start_timeout_s: float = 180.0


class ContenderFailed(Exception):
    """A contender could not be started or answered wrongly; the message says why."""


@dataclass
class Running:
    contender: Contender
    process: subprocess.Popen | None
    log: Path | None
    roots: list[int]
    started_s: float
    idle_cores: float = 0.0

    def stop(self) -> None:
        if self.process is None:
            return
        pids = tree(self.process.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # Descendants that left the group (daemonized helpers): only those we saw in our tree.
        deadline = time.monotonic() + 5
        for pid in pids[1:]:
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def log_tail(path: Path | None, lines: int = 8) -> str:
    if path is None or not path.is_file():
        return ""
    text = path.read_text(errors="replace").strip().splitlines()
    return " | ".join(line.strip()[:200] for line in text[-lines:])


def start(contender: Contender, logs: Path, pinned: bool) -> Running:
    """Start (or adopt) the contender and wait until it answers a payload correctly."""
    process = log = None
    if contender.argv is not None:
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{contender.name}.log"
        handle = log.open("wb")
        env = {**os.environ, **contender.env}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        process = subprocess.Popen(
            contender.argv,
            env=env,
            cwd=contender.cwd,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        handle.close()
        roots = [process.pid, *contender.pids]  # pids: processes it uses that run elsewhere
    else:
        roots = list(contender.pids)
    running = Running(contender, process, log, roots, time.monotonic())
    try:
        _wait_ready(running)
    except ContenderFailed:
        running.stop()
        raise
    if pinned:
        place(running)
    running.idle_cores = settle(roots)
    if pinned:  # helpers started while settling
        place(running)
    return running


def place(running: Running) -> None:
    """The contender on CPU 0, but for what it keeps ``beside_load`` (CPU 1, with the load
    generator). Done before every load run: contenders may share processes (the stack's
    Triton) and place them differently."""
    beside = {p for root in running.contender.beside_load for p in tree(root)}
    pin([p for root in running.roots for p in tree(root) if p not in beside], "0")
    pin(sorted(beside), "1")


def settle(roots: list[int], max_s: float = 60.0, quiet_cores: float = 0.1) -> float:
    """Wait until the contender is idle (background start-up work done: worker pools, compiles,
    health checks) so that every contender is measured in its steady state. Returns the CPU
    (cores) it burns while idle."""
    deadline = time.monotonic() + max_s
    cores = 0.0
    while time.monotonic() < deadline:
        before = cpu_seconds(roots)
        time.sleep(1.0)
        cores = cpu_seconds(roots) - before
        if cores <= quiet_cores:
            break
    return round(cores, 3)


def _wait_ready(running: Running) -> None:
    contender = running.contender
    deadline = time.monotonic() + contender.start_timeout_s
    last = "no answer"
    errors_since = 0.0
    headers = {"content-type": "application/json", **contender.headers}
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            if running.process is not None and running.process.poll() is not None:
                raise ContenderFailed(
                    f"exited with {running.process.returncode}: {log_tail(running.log)}"
                )
            try:
                answer = client.post(contender.url, content=contender.bodies[0], headers=headers)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}"
                time.sleep(0.5)
                continue
            if answer.status_code != 200:
                last = f"HTTP {answer.status_code}: {answer.text[:300]}"
                errors_since = errors_since or time.monotonic()
                if answer.status_code >= 500 and time.monotonic() - errors_since > 30:
                    break  # it answers, and keeps failing: no need to wait it out
                time.sleep(0.5)
                continue
            # Ready: check a few answers against in-process ONNX Runtime.
            for index in range(min(5, len(contender.bodies))):
                reply = client.post(contender.url, content=contender.bodies[index], headers=headers)
                try:
                    if contender.check is not None:
                        contender.check(reply.json(), index)
                except (AssertionError, ValueError) as exc:
                    raise ContenderFailed(
                        f"wrong answer to payload {index}: {exc}: {reply.text[:300]}"
                    ) from None
            return
    raise ContenderFailed(
        f"not ready after {contender.start_timeout_s:.0f} s ({last}); log: {log_tail(running.log)}"
    )


# --------------------------------------------------------------------------- load


def load(
    running: Running,
    bodies_file: Path,
    *,
    rate: float | None = None,
    clients: int | None = None,
    seconds: float,
    warmup_s: float,
    pinned: bool,
) -> dict:
    """One run of the load generator against a running contender; the row it reports plus
    CPU-µs per request and the other processes' load."""
    contender = running.contender
    argv = [
        sys.executable,
        str(ROOT / "bench" / "loadgen.py"),
        "--url",
        contender.url,
        "--bodies",
        str(bodies_file),
        "--seconds",
        str(seconds),
        "--warmup",
        str(warmup_s),
    ]
    argv += ["--rate", str(rate)] if rate else ["--clients", str(clients)]
    for name, value in contender.headers.items():
        argv += ["--header", f"{name}: {value}"]
    if pinned:
        argv = ["taskset", "-c", "1", *argv]
        place(running)
    busy_before = busy_seconds()
    cpu_before = cpu_seconds(running.roots)
    wall_before = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    out, err = child.communicate()
    wall = time.perf_counter() - wall_before
    used = cpu_seconds(running.roots) - cpu_before
    busy = busy_seconds() - busy_before
    if child.returncode != 0:
        raise ContenderFailed(f"load generator failed: {err.strip()[-500:]}")
    row = json.loads(out)
    requests = row["sent"] / seconds * (seconds + warmup_s) if row["sent"] else 0
    row["cpu_us_per_request"] = round(used / requests * 1e6, 1) if requests else None
    row["server_cpu_cores"] = round(used / wall, 2)
    loadgen_cpu = usage.ru_utime + usage.ru_stime
    row["other_load_cores"] = round(max(0.0, busy - used - loadgen_cpu) / wall, 2)
    return row


def passes(row: dict, rate: float) -> bool:
    """p99 within the SLO, no errors, and the offered rate actually achieved."""
    return (
        row["p99_ms"] <= SLO_P99_MS
        and row["errors"] + row["failed"] == 0
        and row["achieved_rps"] >= 0.95 * rate
    )


def ladder(
    running: Running,
    bodies_file: Path,
    rates: list[float],
    *,
    seconds: float,
    warmup_s: float,
    pinned: bool,
    always: tuple[float, ...] = (),
) -> dict[str, dict]:
    """Climb ``rates`` until the contender is saturated (it misses the offered rate, or its p99
    passes 5x the SLO) or misses the SLO three times in a row: a miss on a shared machine may be
    a neighbour's burst. Rates in ``always`` run anyway (the 500/s the tables quote). Returns
    rate -> row."""
    rows: dict[str, dict] = {}
    misses = 0
    saturated = False
    for rate in rates:
        if (saturated or misses >= 3) and rate not in always:
            continue
        row = load(
            running, bodies_file, rate=rate, seconds=seconds, warmup_s=warmup_s, pinned=pinned
        )
        row["passes"] = passes(row, rate)
        rows[str(rate)] = row
        say(
            f"  {running.contender.name:>22} {rate:>6.0f}/s: p50 {row['p50_ms']:.2f} p99 "
            f"{row['p99_ms']:.2f} ms, {row['achieved_rps']:.0f}/s, errors "
            f"{row['errors'] + row['failed']}, {row['cpu_us_per_request']} CPU-µs/req, other "
            f"load {row['other_load_cores']}"
        )
        misses = 0 if row["passes"] else misses + 1
        saturated = saturated or row["achieved_rps"] < 0.9 * rate or row["p99_ms"] > 5 * SLO_P99_MS
        if not row["passes"]:
            # An overloaded server keeps working off requests its clients gave up on: let it
            # drain, or it burns the shared core under the next measurement.
            settle(running.roots, max_s=30)
    return rows


# --------------------------------------------------------------------------- summaries


def spread(values: list[float]) -> dict:
    clean = [v for v in values if v is not None]
    if not clean:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {
        "median": round(statistics.median(clean), 3),
        "min": round(min(clean), 3),
        "max": round(max(clean), 3),
        "n": len(clean),
    }


def summarize_points(reps: list[dict[str, dict]]) -> dict[str, dict]:
    """Per point (rate or client count): median and spread of each metric over repetitions."""
    points: dict[str, list[dict]] = {}
    for rep in reps:
        for point, row in rep.items():
            points.setdefault(point, []).append(row)
    out = {}
    for point, rows in sorted(points.items(), key=lambda kv: float(kv[0])):
        out[point] = {
            key: spread([r.get(key) for r in rows])
            for key in (
                "p50_ms",
                "p99_ms",
                "p999_ms",
                "achieved_rps",
                "cpu_us_per_request",
                "other_load_cores",
            )
        }
        out[point]["errors"] = sum(r["errors"] + r["failed"] for r in rows)
        out[point]["reps"] = len(rows)
    return out


def max_rate(rep: dict[str, dict]) -> float:
    """Highest rate of one repetition's ladder that passed (p99 ≤ SLO, no errors, rate held)."""
    return max((float(p) for p, row in rep.items() if row["passes"]), default=0.0)


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=_default) + "\n")


def _default(value: object) -> object:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)  # type: ignore[arg-type]
    return str(value)


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return "—"
    return f"{value / reference:.2f}x"
