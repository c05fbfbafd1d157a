"""Benchmark B3 (end to end) and B5 (audit/metrics overhead): the gateway's whole path under
open-loop load, side by side with a one-process peer and the floor, in the same run.

Contenders (same model file, same online store, same request bodies; each answer is checked
against the gateway's score for the same body):

* ``shipyard``: the embedded stack's gateway as ``make up`` runs it — features from the Feast
  SQLite online store, the model on the primary Triton (HTTP with binary tensors, Python
  backend running ONNX Runtime), metrics, and one audit record per prediction.
* ``shipyard (Triton on CPU 1)``: the same gateway and Triton, with Triton and its stub on the
  load generator's CPU instead of the gateway's: the placement of a cluster, where Triton runs in
  its own pod, as near as two cores allow (they share that CPU with the load generator).
* ``shipyard (gRPC to Triton)``: the same gateway reaching the same Triton over gRPC
  (``grpc://`` pool URLs): what the transport costs end to end.
* ``shipyard-inprocess``: the same gateway with no Triton pool configured, so the last hop of
  its chain (in-process ONNX Runtime) serves: the gateway's own cost without the Triton hop.
* ``fastapi+feast-sdk``: FastAPI + the Feast SDK's ``get_online_features`` on the same store +
  in-process ONNX Runtime in one process (``bench/peers/servers/fastapi_feast_ort.py``); no
  metrics, no audit.
* ``feast-server+mlserver``: the two-hop way (``bench/peers/servers/feast_mlserver.py``): a
  small FastAPI front calls Feast's feature server (``feast serve``) for the features, then
  MLServer (its own environment, the same ONNX model) for the score; no metrics, no audit.
* ``floor``: ``bench/floor_server.py``, the same store reads + in-process ONNX Runtime + an HTTP
  echo with every avoidable layer removed.
* B5 ``shipyard (metrics+audit off)``: the same gateway and stack with the audit append, the
  metric updates and the drift monitor replaced by no-ops (``bench/ablation.py``).

Method (``bench/harness.py``): open-loop load at a ladder of fixed rates after a warm-up, ≥ 3
repetitions, contenders interleaved; p50/p99/p99.9, achieved rate, errors, server CPU-µs per
request (utime+stime of the serving processes, Triton's stubs included), the other processes'
CPU while measuring; serving processes pinned to CPU 0, the load generator to CPU 1. Also the
audit+metrics cost per prediction timed in a loop.

    .venv/bin/python -m bench.gateway_e2e [--quick] [--rates 100,250,500,750,1000]

The stack is started in a temporary state dir, bootstrapped (data, features, a 100-tree model
from the training pipeline, published) and stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from bench.harness import Contender, ContenderFailed  # noqa: E402
from bench.model_artifact import first_numbers  # noqa: E402
from bench.peers import envs  # noqa: E402
from shipyard.settings import Settings  # noqa: E402
from shipyard.stack import control  # noqa: E402
from shipyard.stack.layout import StateLayout  # noqa: E402
from shipyard.stack.probes import free_ports  # noqa: E402
from shipyard.stack.supervisor import inherited_env  # noqa: E402

MODEL = "fraud-scoring"
RESULTS = harness.RESULTS
SHIPYARD = str(Path(sys.executable).with_name("shipyard"))
SLO_P99_MS = 10.0
OWNER = ["--owner", "bench", "--team", "bench"]


PROFILES = {
    # quick: one short repetition, without B5's ablation (a check, not a published number)
    "quick": {"rates": [250, 500, 1000, 2000, 3000], "seconds": 1.0, "warmup": 0.5,
              "repeats": 1, "ablation": False},
    "full": {"rates": [100, 250, 500, 750, 1000, 1500, 2000, 3000], "seconds": 5.0,
             "warmup": 2.0, "repeats": 3, "ablation": True},
}  # fmt: skip
say = harness.say


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


def known_bodies(url: str, count: int) -> tuple[list[bytes], list[float]]:
    """Single-instance bodies for customers that have online features (probed), with the
    gateway's score of each (what every other contender must answer)."""
    bodies, scores = [], []
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
            answer = client.post(url, content=raw, headers={"content-type": "application/json"})
            if answer.status_code == 200:
                bodies.append(raw)
                scores.append(answer.json()["predictions"][0]["score"])
            if len(bodies) >= count:
                break
    return bodies, scores


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs: a few minutes")
    parser.add_argument("--rates", help="override the profile's rates, e.g. 250,500,1000")
    parser.add_argument("--repeats", type=int, help="override the profile's repetitions")
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="leave every process on any CPU"
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="results folder [default: bench/results]"
    )
    args = parser.parse_args()
    profile = dict(PROFILES["quick" if args.quick else "full"])
    if args.rates:
        profile["rates"] = [float(r) for r in args.rates.split(",")]
    if args.repeats:
        profile["repeats"] = args.repeats
    pinned = args.pin and harness.can_pin()
    machine_before = harness.machine()

    from tests.conftest import isolated_settings

    work = Path(tempfile.mkdtemp(prefix="shipyard-b3-"))
    settings = isolated_settings(work / "state")
    env = {**inherited_env(), **settings.to_env()}
    say(f"starting an embedded stack in {work}")
    state = control.up(settings).state
    running: list[harness.Running] = []
    try:
        bootstrap(settings, env)
        gateway_url = settings.url("gateway", f"/v1/models/{MODEL}/predict")
        bodies, scores = known_bodies(gateway_url, 1000)
        say(f"{len(bodies)} request bodies for customers with online features")
        version = json.loads(httpx.get(settings.url("gateway", f"/v1/models/{MODEL}")).text)[
            "stable_version"
        ]
        model_dir = StateLayout(settings.state_dir).triton_models / MODEL / version
        two_hop = envs.ensure("mlserver", log=say)
        contenders = build_contenders(settings, env, state, gateway_url, bodies, scores,
                                      model_dir, work, two_hop)  # fmt: skip
        results: dict[str, dict] = {}
        if not two_hop.ok:  # reported, never dropped
            results[TWO_HOP] = {"kind": "peer", "group": "B3", "note": TWO_HOP_NOTE,
                                "versions": {}, "reps": [],
                                "error": f"not installed: {two_hop.error}"}  # fmt: skip
            contenders = [c for c in contenders if c.name != TWO_HOP]
        if not profile["ablation"]:
            contenders = [c for c in contenders if c.name != ABLATION]
        for contender in contenders:
            entry = results[contender.name] = {
                "kind": contender.kind, "group": "B5" if contender.name == ABLATION else "B3",
                "note": contender.note, "versions": contender.versions, "error": None,
                "reps": [],
            }  # fmt: skip
            try:
                running.append(harness.start(contender, work / "logs", pinned))
                entry["idle_cores"] = [running[-1].idle_cores]
            except ContenderFailed as exc:
                entry["error"] = f"did not start: {exc}"
                say(f"{contender.name}: {entry['error']}")
        bodies_file = work / "bodies.jsonl"
        bodies_file.write_bytes(b"\n".join(bodies) + b"\n")
        rates = [float(r) for r in profile["rates"]]
        for repeat in range(profile["repeats"]):
            order = running[repeat % len(running) :] + running[: repeat % len(running)]
            say(f"repetition {repeat + 1}/{profile['repeats']}")
            for run in order:
                entry = results[run.contender.name]
                if entry["error"]:
                    continue
                try:
                    entry["reps"].append(
                        harness.ladder(
                            run,
                            bodies_file,
                            rates,
                            seconds=profile["seconds"],
                            warmup_s=profile["warmup"],
                            pinned=pinned,
                            always=(500.0,),
                        )
                    )
                except ContenderFailed as exc:
                    entry["error"] = f"failed under load: {exc}"
        from bench.model_hop import summarize_b1

        for entry in results.values():
            summarize_b1(entry)
        overhead_us = audit_and_metrics_us()
        harness.write_json(
            args.out / "b3_end_to_end.json",
            {
                "benchmark": "B3",
                "title": "end to end: features (50 x 1 entity) + model + metrics + audit",
                "description": (
                    "The gateway as `make up` runs it (Feast SQLite online store, Triton, "
                    "metrics, audit) and with its in-process backend; FastAPI + Feast SDK + "
                    "ONNX Runtime in one process; `feast serve` + MLServer (two HTTP hops behind "
                    "a small FastAPI front); the floor (the same store reads + ONNX Runtime "
                    "+ a raw HTTP echo). Same bodies for all; answers checked against the "
                    f"gateway's scores. Open-loop load at {', '.join(str(int(r)) for r in rates)} "
                    f"req/s ({profile['seconds']} s after {profile['warmup']} s warm-up), "
                    f"{profile['repeats']} repetitions."
                ),
                "machine": {**machine_before, "load_average_after": harness.load_average()},
                "profile": profile,
                "pinned": pinned,
                "contenders": results,
                "audit_metrics_us_per_prediction": round(overhead_us, 1),
            },
        )
        say(f"B3/B5 results: {args.out / 'b3_end_to_end.json'}")
    finally:
        for run in running:
            run.stop()
        control.down(settings)
        shutil.rmtree(work, ignore_errors=True)


TWO_HOP = "feast-server+mlserver"
ABLATION = "shipyard (metrics+audit off)"  # B5
GRPC = "shipyard (gRPC to Triton)"
SPLIT = "shipyard (Triton on CPU 1)"
TWO_HOP_NOTE = "two hops: `feast serve` for features, then MLServer for the model"


def build_contenders(
    settings,
    env,
    state,
    gateway_url,
    bodies,
    scores,
    model_dir: Path,
    work: Path,
    mlserver: envs.PeerEnv,
) -> list[Contender]:
    from shipyard import __version__

    def check(answer: object, index: int) -> None:
        numbers = first_numbers(answer)
        assert any(abs(n - scores[index]) <= 1e-5 for n in numbers), (
            f"expected the gateway's score {scores[index]:.6f}, got {numbers}"
        )

    components = state.components if hasattr(state, "components") else {}
    pids = [components[c].pid for c in ("gateway", "triton") if c in components]
    port_inprocess, port_off, port_floor, port_peer, port_two_hop, port_grpc = free_ports(6)
    servers = ROOT / "bench" / "peers" / "servers"
    uvicorn = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--loop", "uvloop",
               "--http", "httptools", "--no-access-log", "--log-level", "warning",
               "--factory"]  # fmt: skip
    path = f"/v1/models/{MODEL}/predict"
    versions = {"shipyard": __version__}
    return [
        Contender("shipyard", gateway_url, bodies, pids=pids, check=check, kind="shipyard",
                  versions=versions,
                  note="gateway + primary Triton (HTTP, binary tensors), as `make up` runs them"),
        Contender(SPLIT, gateway_url, bodies, pids=pids, beside_load=pids[1:], check=check,
                  kind="shipyard", versions=versions,
                  note="the same gateway + Triton, Triton on the load generator's CPU (on a "
                       "cluster it has its own pod)"),
        Contender("shipyard-inprocess", f"http://127.0.0.1:{port_inprocess}{path}", bodies,
                  argv=[*uvicorn, "--port", str(port_inprocess), "serving.app:create_app"],
                  env={**env, "SHIPYARD_PORTS__GATEWAY": str(port_inprocess),
                       "SHIPYARD_SERVING__PRIMARY_URL": "", "SHIPYARD_SERVING__CPU_URL": ""},
                  cwd=ROOT, check=check, kind="shipyard", versions=versions,
                  note="the gateway with no Triton pool: its in-process ONNX Runtime hop"),
        Contender(GRPC, f"http://127.0.0.1:{port_grpc}{path}", bodies,
                  argv=[*uvicorn, "--port", str(port_grpc), "serving.app:create_app"],
                  env={**env, "SHIPYARD_PORTS__GATEWAY": str(port_grpc),
                       "SHIPYARD_SERVING__PRIMARY_URL":
                           f"grpc://127.0.0.1:{settings.ports.triton_grpc}",
                       "SHIPYARD_SERVING__CPU_URL":
                           f"grpc://127.0.0.1:{settings.ports.triton_cpu_grpc}"},
                  pids=pids[1:],  # the stack's primary Triton serves it too
                  cwd=ROOT, check=check, kind="shipyard", versions=versions,
                  note="the same gateway + Triton, reaching Triton over gRPC"),
        Contender("fastapi+feast-sdk", f"http://127.0.0.1:{port_peer}/predict", bodies,
                  argv=[sys.executable, str(ROOT / "bench" / "peers" / "servers" /
                                            "fastapi_feast_ort.py"),
                        "--port", str(port_peer), "--model-dir", str(model_dir)],
                  env=env, cwd=ROOT, check=check, kind="peer",
                  versions=_versions("fastapi", "feast", "onnxruntime"),
                  note="one process: FastAPI + Feast get_online_features + ONNX Runtime"),
        Contender(TWO_HOP, f"http://127.0.0.1:{port_two_hop}/predict", bodies,
                  argv=[sys.executable, str(servers / "feast_mlserver.py"),
                        "--port", str(port_two_hop), "--model-dir", str(model_dir),
                        "--mlserver-python", str(mlserver.python),
                        "--work-dir", str(work / "two-hop")],
                  env=env, cwd=ROOT, check=check, kind="peer",
                  versions={**_versions("feast"), **(mlserver.versions or {})},
                  note=TWO_HOP_NOTE),
        Contender("floor", f"http://127.0.0.1:{port_floor}/", bodies,
                  argv=[sys.executable, str(ROOT / "bench" / "floor_server.py"), "--port",
                        str(port_floor), "--state-dir", str(settings.state_dir),
                        "--model-dir", str(model_dir)],
                  env=env, cwd=ROOT, check=check, kind="floor",
                  note="the same store reads + in-process ONNX Runtime + raw HTTP echo"),
        Contender(ABLATION, f"http://127.0.0.1:{port_off}{path}", bodies,
                  argv=[*uvicorn, "--port", str(port_off), "bench.ablation:create_app"],
                  env={**env, "SHIPYARD_PORTS__GATEWAY": str(port_off)},
                  pids=pids[1:],  # the stack's primary Triton serves it too
                  cwd=ROOT, check=check, kind="shipyard", versions=versions,
                  note="B5: the same gateway + Triton, audit/metrics/drift monitor no-ops"),
    ]  # fmt: skip


def _versions(*names: str) -> dict[str, str]:
    import importlib.metadata as metadata

    out = {}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


if __name__ == "__main__":
    main()
