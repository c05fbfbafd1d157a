"""Benchmark B3 (and issue 5's targets): the gateway's end-to-end path under open-loop load,
side by side with its floor, in the same run.

Contenders (same model file, same online store, same request bodies):

* ``shipyard``: the embedded stack's gateway as ``make up`` runs it — features from the Feast
  SQLite online store, the model on the primary Triton (gRPC, Python backend running ONNX
  Runtime), metrics, and one audit record per prediction.
* ``shipyard-inprocess``: the same gateway with no Triton pool configured, so the last hop of
  its chain (in-process ONNX Runtime) serves: the gateway's own cost without the Triton hop.
* ``floor``: ``bench/floor_server.py``, the same store reads + in-process ONNX Runtime + an HTTP
  echo with every avoidable layer removed.

Method: open-loop load (``bench/loadgen.py``, latency from the scheduled send time) at fixed
rates after a warm-up, ≥ 3 repetitions per rate, the contenders interleaved; p50/p99/p99.9,
achieved rate, errors and server CPU-µs per request (utime+stime of the serving processes, from
/proc). With ``--pin`` (default) the serving processes run on CPU 0 and the load generator on
CPU 1. Reported: medians over repetitions with the spread, the highest rate whose p99 stays
≤ 10 ms without errors, and the audit+metrics share of the p99 (the exact calls the gateway
makes per prediction, timed in a loop, over the p99 at 500 req/s).

    .venv/bin/python bench/gateway_e2e.py [--quick] [--rates 100,250,500,750,1000]

The stack is started in a temporary state dir, bootstrapped (data, features, a 100-tree model
from the training pipeline, published) and stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import LoadResult  # noqa: E402
from shipyard.settings import Settings  # noqa: E402
from shipyard.stack import control  # noqa: E402
from shipyard.stack.layout import StateLayout  # noqa: E402
from shipyard.stack.probes import free_ports  # noqa: E402
from shipyard.stack.supervisor import inherited_env  # noqa: E402

MODEL = "fraud-scoring"
RESULTS = ROOT / "bench" / "results"
SHIPYARD = str(Path(sys.executable).with_name("shipyard"))
SLO_P99_MS = 10.0
OWNER = ["--owner", "bench", "--team", "bench"]


def say(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


def bootstrap(settings: Settings, env: dict[str, str]) -> None:
    from datetime import UTC, datetime, timedelta

    from shipyard.data.offline_source import write_offline_source
    from shipyard.data.synthetic import SyntheticConfig, generate

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    config = SyntheticConfig(rows=50_000, start=today - timedelta(days=14), days=14, seed=11)
    write_offline_source(generate(config), config, StateLayout(settings.state_dir).raw_data)
    for args in (
        ["refresh"],
        ["pipeline", "run", "training", "--local", *OWNER, "--n-estimators", "100"],
        ["serve", "publish", MODEL, "--alias", "champion"],
    ):
        say("shipyard " + " ".join(args))
        done = subprocess.run([SHIPYARD, *args], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"bootstrap step {args} failed:\n{done.stdout[-2000:]}{done.stderr}")


def known_bodies(url: str, count: int) -> list[bytes]:
    """Single-instance bodies for customers that have online features (probed)."""
    bodies = []
    with httpx.Client(timeout=5) as client:
        for customer in range(1, 20 * count):
            body = {
                "instances": [
                    {
                        "customer_id": customer,
                        "merchant_id": 1 + customer % 200,
                        "amount": 25.0 + customer % 400,
                        "merchant_category": "grocery",
                        "channel": "online",
                        "device_type": "browser",
                    }
                ]
            }
            raw = json.dumps(body).encode()
            if (
                client.post(
                    url, content=raw, headers={"content-type": "application/json"}
                ).status_code
                == 200
            ):
                bodies.append(raw)
            if len(bodies) >= count:
                break
    return bodies


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` and their threads (children included: Triton's stubs)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    seen = set()
    stack = list(pids)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        stack += [int(c) for c in children]
    return total


def pin(pids: list[int], cpu: str) -> None:
    for pid in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", cpu, str(pid)], capture_output=True)


def run_loadgen(
    url: str, bodies_file: Path, rate: float, seconds: float, pinned: bool
) -> LoadResult:
    argv = [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--url", url,
            "--bodies", str(bodies_file), "--rate", str(rate),
            "--seconds", str(seconds), "--warmup", "1"]  # fmt: skip
    if pinned:
        argv = ["taskset", "-c", "1", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return LoadResult(**json.loads(done.stdout))


def audit_and_metrics_us(iterations: int = 20_000) -> float:
    """Per-prediction cost of the audit append and every metric update the gateway makes."""
    import hashlib

    import numpy as np

    from serving.audit import AuditLog
    from shipyard.observability.metrics import GatewayMetrics

    metrics = GatewayMetrics.create("bench", "sqlite")
    folder = Path(tempfile.mkdtemp())
    audit = AuditLog(folder, sync_interval_s=0.05)
    audit.open()
    x = np.random.default_rng(0).random((1, 20), dtype=np.float32)
    labels = (MODEL, "1", "stable", "triton-primary")
    started = time.perf_counter()
    for i in range(iterations):
        record = {
            "prediction_id": f"{i:x}", "request_id": f"{i:x}", "ts": "2026-01-01T00:00:00+00:00",
            "model": MODEL, "version": "1", "route": "stable", "backend": "triton-primary",
            "feature_service": "fraud_scoring_v2", "customer_id": i, "merchant_id": i,
            "features_sha256": hashlib.sha256(x.tobytes()).hexdigest(), "score": 0.5,
        }  # fmt: skip
        audit.append([record])
        metrics.audit_records.inc()
        metrics.feature_duration.labels(store="sqlite").observe(0.0001)
        metrics.backend_duration.labels("triton-primary", MODEL, "1").observe(0.001)
        metrics.predictions.labels(*labels).inc()
        metrics.prediction_score.labels(*labels[:3]).observe(0.5)
        metrics.requests.labels(*labels, "200").inc()
        metrics.request_duration.labels(*labels, "200").observe(0.002)
        metrics.in_flight.inc()
        metrics.in_flight.dec()
    took = time.perf_counter() - started
    audit.close()
    shutil.rmtree(folder, ignore_errors=True)
    return took / iterations * 1e6


def summarize(runs: list[dict]) -> dict:
    def med(key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 3)

    return {
        "p50_ms": med("p50_ms"),
        "p99_ms": med("p99_ms"),
        "p999_ms": med("p999_ms"),
        "p99_spread_ms": [min(r["p99_ms"] for r in runs), max(r["p99_ms"] for r in runs)],
        "achieved_rps": med("achieved_rps"),
        "errors": sum(r["errors"] + r["failed"] for r in runs),
        "cpu_us_per_request": med("cpu_us_per_request"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,250,500,750,1000,1500")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="rates 250,500,1000; 3 s; 3 reps")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--json", type=Path, default=RESULTS / "gateway_e2e.json")
    args = parser.parse_args()
    rates = [250.0, 500.0, 1000.0] if args.quick else [float(r) for r in args.rates.split(",")]
    seconds = 3.0 if args.quick else args.seconds
    RESULTS.mkdir(parents=True, exist_ok=True)

    from tests.conftest import isolated_settings

    work = Path(tempfile.mkdtemp(prefix="shipyard-b3-"))
    settings = isolated_settings(work / "state")
    env = {**inherited_env(), **settings.to_env()}
    extra: list[subprocess.Popen] = []
    say(f"starting an embedded stack in {work}")
    state = control.up(settings).state
    try:
        bootstrap(settings, env)
        gateway_url = settings.url("gateway", f"/v1/models/{MODEL}/predict")
        bodies = known_bodies(gateway_url, 1000)
        bodies_file = work / "bodies.jsonl"
        bodies_file.write_bytes(b"\n".join(bodies) + b"\n")
        say(f"{len(bodies)} request bodies for customers with online features")

        port_inprocess, port_floor = free_ports(2)
        layout = StateLayout(settings.state_dir)
        inprocess_env = {
            **env,
            "SHIPYARD_PORTS__GATEWAY": str(port_inprocess),
            "SHIPYARD_SERVING__PRIMARY_URL": "",  # no Triton pool: in-process serves
            "SHIPYARD_SERVING__CPU_URL": "",
        }
        extra.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "serving.app:create_app", "--factory", "--host",
             "127.0.0.1", "--port", str(port_inprocess), "--loop", "uvloop", "--http",
             "httptools", "--no-access-log", "--log-level", "warning"],
            env=inprocess_env))  # fmt: skip
        version = json.loads(httpx.get(settings.url("gateway", f"/v1/models/{MODEL}")).text)[
            "stable_version"
        ]
        extra.append(subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "floor_server.py"), "--port", str(port_floor),
             "--state-dir", str(settings.state_dir), "--model-dir",
             str(layout.triton_models / MODEL / version)], env=env))  # fmt: skip
        for port in (port_inprocess, port_floor):
            _wait_http(f"http://127.0.0.1:{port}")

        components = state.components if hasattr(state, "components") else {}
        pids = {c: components[c].pid for c in ("gateway", "triton") if c in components}
        contenders = {
            "shipyard": (gateway_url, [pids["gateway"], pids["triton"]]),
            "shipyard-inprocess": (
                f"http://127.0.0.1:{port_inprocess}/v1/models/{MODEL}/predict",
                [extra[0].pid],
            ),
            "floor": (f"http://127.0.0.1:{port_floor}/", [extra[1].pid]),
        }
        if args.pin:
            pin([p for _, ps in contenders.values() for p in ps], "0")
        results: dict[str, dict[float, list[dict]]] = {c: {} for c in contenders}
        for repeat in range(args.repeats):
            for rate in rates:
                order = list(contenders)[repeat % 3 :] + list(contenders)[: repeat % 3]
                for name in order:
                    url, server_pids = contenders[name]
                    before = cpu_seconds(server_pids)
                    result = run_loadgen(url, bodies_file, rate, seconds, args.pin)
                    used = cpu_seconds(server_pids) - before
                    row = asdict(result)
                    # CPU over warm-up and measurement, per request sent in both.
                    row["cpu_us_per_request"] = round(used / ((seconds + 1) * rate) * 1e6, 1)
                    results[name].setdefault(rate, []).append(row)
                    say(f"rep {repeat + 1} {name:>19} {rate:>6.0f}/s: p50 {result.p50_ms:.2f} "
                        f"p99 {result.p99_ms:.2f} ms, {result.achieved_rps:.0f}/s, "
                        f"errors {result.errors + result.failed}")  # fmt: skip
        overhead_us = audit_and_metrics_us()
        report = build_report(results, rates, overhead_us, args)
        args.json.write_text(json.dumps(report, indent=2))
        markdown = render(report)
        (args.json.with_suffix(".md")).write_text(markdown)
        plot(report, args.json.with_suffix(".png"))
        print(markdown)
        say(
            f"results: {args.json}, {args.json.with_suffix('.md')}, {args.json.with_suffix('.png')}"
        )
    finally:
        for process in extra:
            process.terminate()
            process.wait(timeout=30)
        control.down(settings)
        shutil.rmtree(work, ignore_errors=True)


def _wait_http(url: str, within_s: float = 90) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not start")


def build_report(results: dict, rates: list[float], overhead_us: float, args) -> dict:
    table = {
        name: {str(r): summarize(runs) for r, runs in by_rate.items()}
        for name, by_rate in results.items()
    }
    max_rate = {}
    for name, by_rate in table.items():
        passing = [
            float(r)
            for r, s in by_rate.items()
            if s["p99_ms"] <= SLO_P99_MS
            and s["errors"] == 0
            and s["achieved_rps"] >= 0.95 * float(r)
        ]
        max_rate[name] = max(passing) if passing else 0.0
    at500 = table["shipyard"].get("500.0", {})
    p99_500 = at500.get("p99_ms")
    return {
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "pinned": args.pin},
        "rates": rates,
        "results": table,
        "raw": {n: {str(r): runs for r, runs in b.items()} for n, b in results.items()},
        "max_rate_p99_le_10ms": max_rate,
        "audit_metrics_us_per_prediction": round(overhead_us, 1),
        "audit_metrics_share_of_p99_at_500": (
            round(overhead_us / 1000 / p99_500, 4) if p99_500 else None
        ),
        "targets": {"p50_ms_at_500": 2.0, "p99_ms_at_500": 5.0, "audit_metrics_share": 0.10},
    }


def render(report: dict) -> str:
    columns = ["contender", "rate/s", "p50 ms", "p99 ms (spread)", "p99.9 ms", "achieved/s",
               "errors", "CPU-us/req", "p99 / floor"]  # fmt: skip
    lines = ["| " + " | ".join(columns) + " |", "| --- |" + " ---: |" * (len(columns) - 1)]
    floor = report["results"]["floor"]
    for name, by_rate in report["results"].items():
        for rate, s in by_rate.items():
            ratio = s["p99_ms"] / floor[rate]["p99_ms"] if floor.get(rate) else float("nan")
            lo, hi = s["p99_spread_ms"]
            lines.append(
                f"| {name} | {float(rate):.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} "
                f"({lo:.2f}-{hi:.2f}) | {s['p999_ms']:.2f} | {s['achieved_rps']:.0f} | "
                f"{s['errors']} | {s['cpu_us_per_request']:.0f} | {ratio:.2f}x |"
            )
    lines.append("")
    lines.append("Max rate with p99 ≤ 10 ms and no errors (of the rates tried): " + ", ".join(
        f"{n} {r:.0f}/s" for n, r in report["max_rate_p99_le_10ms"].items()))  # fmt: skip
    share = report["audit_metrics_share_of_p99_at_500"]
    lines.append(
        f"Audit + metrics per prediction: {report['audit_metrics_us_per_prediction']} µs"
        + (f" = {share:.1%} of shipyard's p99 at 500/s (target ≤ 10%)." if share else ".")
    )
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for name, by_rate in report["results"].items():
        rates = [float(r) for r in by_rate]
        axis.plot(rates, [s["p99_ms"] for s in by_rate.values()], marker="o", label=f"{name} p99")
        axis.plot(rates, [s["p50_ms"] for s in by_rate.values()], linestyle="--", alpha=0.6,
                  label=f"{name} p50")  # fmt: skip
    axis.axhline(SLO_P99_MS, color="grey", linewidth=0.8)
    axis.set_xlabel("offered load (requests/s, open loop)")
    axis.set_ylabel("latency (ms)")
    axis.set_yscale("log")
    axis.set_title("B3: gateway end to end vs floor")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
