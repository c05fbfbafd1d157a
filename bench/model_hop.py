"""B1 (model hop) and B4 (batching): Shipyard's model server side by side with the serving
stacks a team would pick instead, on the same model file and the same payloads, in one run.

Contenders (each peer in its own virtual environment, installed by ``bench.peers.envs``):

* ``shipyard``: the Triton pool exactly as the embedded stack runs it
  (``shipyard.stack.components.triton_server``: the nvidia-pytriton wheel's server, Shipyard's
  Python-backend entry running ONNX Runtime, its default dynamic batching) — the hop the gateway
  makes for a model. Open Inference Protocol JSON over HTTP.
* ``fastapi``: FastAPI + in-process ONNX Runtime on uvicorn.
* ``mlserver``, ``bentoml``, ``kserve``, ``rayserve``, ``pytriton``: each framework's own
  server with a small model class running the same ONNX file (``bench/peers/servers``).
* ``floor``: a raw asyncio HTTP echo + in-process ONNX Runtime (no framework at all).

B1: open-loop single-row requests at a ladder of fixed rates (stopping at the first rate that
misses p99 ≤ 10 ms; 500/s is always run), ≥ 3 repetitions. B4: closed loop of 1-64 concurrent
clients, each framework's dynamic batcher off and on (max batch 64, max wait 1 ms; Shipyard
keeps its default: batching on, no queue delay). A peer that cannot be installed, started or answers
wrongly is reported with its error.

    .venv/bin/python -m bench.model_hop [--quick] [--only shipyard,fastapi] [--skip-b4]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from bench.harness import Contender, ContenderFailed, say  # noqa: E402
from bench.model_artifact import MODEL_NAME, Artifact, build, first_numbers  # noqa: E402
from bench.peers import envs  # noqa: E402

SERVERS = ROOT / "bench" / "peers" / "servers"
PEERS = ["fastapi", "mlserver", "bentoml", "kserve", "rayserve", "pytriton"]
BATCHERS = ["mlserver", "bentoml", "rayserve", "pytriton"]
# peer -> (server script, protocol, path)
PEER_SERVERS = {
    "fastapi": ("fastapi_ort.py", "instances", "/predict"),
    "mlserver": ("mlserver_ort.py", "v2", "/v2/models/model/infer"),
    "bentoml": ("bentoml_ort.py", "instances", "/predict"),
    "kserve": ("kserve_ort.py", "instances", "/v1/models/model:predict"),
    "rayserve": ("rayserve_ort.py", "instances", "/predict"),
    "pytriton": ("pytriton_ort.py", "v2", "/v2/models/model/infer"),
}
PROFILES = {
    "quick": {  # one short repetition: a check that runs in minutes, not a published number
        "rates": [250, 500, 1000, 2000, 4000, 6000],
        "seconds": 1.0,
        "warmup": 0.5,
        "repeats": 1,
        "restart": False,
        "clients": [1, 32],
    },
    "full": {
        "rates": [100, 250, 500, 750, 1000, 1500, 2000, 3000, 4000, 6000],
        "seconds": 5.0,
        "warmup": 2.0,
        "repeats": 3,
        "restart": True,
        "clients": [1, 4, 16, 64],
    },
}


def checker(artifact: Artifact):
    def check(answer: object, index: int) -> None:
        numbers = first_numbers(answer)
        expected = float(artifact.expected[index])
        assert any(abs(n - expected) <= 1e-5 for n in numbers), (
            f"expected score {expected:.6f}, got {numbers}"
        )

    return check


def free_port() -> int:
    from shipyard.stack.probes import free_ports

    return free_ports(1)[0]


def shipyard_contender(artifact: Artifact, work: Path) -> Contender:
    """The embedded stack's Triton pool, from Shipyard's own component spec."""
    from shipyard.stack import components
    from shipyard.stack.layout import StateLayout
    from tests.conftest import isolated_settings

    settings = isolated_settings(work / "shipyard-state")
    layout = StateLayout(settings.state_dir)
    shutil.copytree(artifact.repository, layout.triton_models, dirs_exist_ok=True)
    spec = components.triton_server(settings, layout, "primary")
    if spec.prepare is not None:
        spec.prepare()
    from shipyard import __version__

    return Contender(
        name="shipyard",
        kind="shipyard",
        url=f"http://127.0.0.1:{spec.ports['http']}/v2/models/{MODEL_NAME}/infer",
        bodies=artifact.bodies("v2"),
        argv=spec.argv,
        env=spec.env,
        check=checker(artifact),
        note="Triton (nvidia-pytriton wheel) + Shipyard's Python-backend ONNX Runtime entry, "
        "as `shipyard up` runs it; the gateway's model hop",
        versions={"shipyard": __version__},
    )


def peer_contender(
    peer: str, artifact: Artifact, work: Path, env: envs.PeerEnv, batching: bool = False
) -> Contender:
    script, protocol, path = PEER_SERVERS[peer]
    port = free_port()
    name = peer + ("+batching" if batching else "")
    argv = [
        str(env.python),
        str(SERVERS / script),
        "--port",
        str(port),
        "--model",
        str(artifact.onnx),
        "--work-dir",
        str(work / name),
    ]
    if batching:
        argv.append("--batching")
    return Contender(
        name=name,
        kind="peer",
        url=f"http://127.0.0.1:{port}{path}",
        bodies=artifact.bodies(protocol),
        argv=argv,
        cwd=SERVERS,
        env={
            "RAY_USAGE_STATS_ENABLED": "0",
            "BENTOML_DO_NOT_TRACK": "true",
            **_peer_env(peer, env),
        },
        check=checker(artifact),
        versions=env.versions or {},
        start_timeout_s=240.0,
    )


def _peer_env(peer: str, env: envs.PeerEnv) -> dict[str, str]:
    if peer != "pytriton":
        return {}
    # Triton's Python-backend stub links libpython: it must find the interpreter's own (the
    # distribution's 3.11.2 against a 3.11.7 standard library fails), after the wheel's libraries.
    import os
    import sysconfig

    libs = next(env.path.glob("lib/python3*/site-packages/nvidia_pytriton.libs"), None)
    paths = [
        str(libs) if libs else "",
        sysconfig.get_config_var("LIBDIR") or "",
        os.environ.get("LD_LIBRARY_PATH", ""),
    ]
    return {"LD_LIBRARY_PATH": os.pathsep.join(p for p in paths if p)}


def floor_contender(artifact: Artifact) -> Contender:
    port = free_port()
    return Contender(
        name="floor",
        kind="floor",
        url=f"http://127.0.0.1:{port}/",
        bodies=artifact.bodies("instances"),
        argv=[
            sys.executable,
            str(SERVERS / "floor_ort.py"),
            "--port",
            str(port),
            "--model",
            str(artifact.onnx),
        ],
        cwd=SERVERS,
        check=checker(artifact),
        note="raw asyncio HTTP echo + in-process ONNX Runtime",
    )


def build_contenders(
    names: list[str], artifact: Artifact, work: Path, batching: bool = False
) -> tuple[list[Contender], dict[str, dict]]:
    """The contenders that could be prepared, and an entry with the error for those that
    could not (install failures included)."""
    ready: list[Contender] = []
    failed: dict[str, dict] = {}
    for name in names:
        try:
            if name == "shipyard":
                ready.append(shipyard_contender(artifact, work))
            elif name == "floor":
                ready.append(floor_contender(artifact))
            else:
                env = envs.ensure(name, say)
                label = name + ("+batching" if batching else "")
                if not env.ok:
                    failed[label] = {"kind": "peer", "error": env.error, "versions": {}}
                    continue
                ready.append(peer_contender(name, artifact, work, env, batching))
        except Exception as exc:  # report, never drop
            failed[name] = {
                "kind": "shipyard" if name == "shipyard" else "peer",
                "error": f"{type(exc).__name__}: {exc}",
                "versions": {},
            }
    return ready, failed


def bodies_file(contender: Contender, work: Path) -> Path:
    path = work / f"bodies-{contender.name}.jsonl"
    path.write_bytes(b"\n".join(contender.bodies) + b"\n")
    return path


def run_matrix(
    contenders: list[Contender],
    work: Path,
    profile: dict,
    pinned: bool,
    measure,
) -> dict[str, dict]:
    """``measure(running, bodies_file) -> {point: row}`` for each contender and repetition.
    With ``restart`` each repetition restarts every contender (a fresh process per rep, the
    contenders interleaved); otherwise a contender is started once for its repetitions."""
    out: dict[str, dict] = {
        c.name: {
            "kind": c.kind,
            "versions": c.versions,
            "note": c.note,
            "error": None,
            "reps": [],
            "url": c.url,
        }
        for c in contenders
    }
    rounds = profile["repeats"] if profile["restart"] else 1
    per_start = 1 if profile["restart"] else profile["repeats"]
    for round_index in range(rounds):
        order = (
            contenders[round_index % len(contenders) :]
            + contenders[: round_index % len(contenders)]
        )
        for contender in order:
            entry = out[contender.name]
            if entry["error"]:
                continue
            say(f"{contender.name}: starting (round {round_index + 1}/{rounds})")
            started = time.monotonic()
            try:
                try:
                    running = harness.start(contender, work / "logs", pinned)
                except ContenderFailed as exc:  # once more: a neighbour's burst is no verdict
                    say(f"{contender.name}: did not start ({str(exc)[:200]}); trying once more")
                    entry["first_start_error"] = str(exc)
                    running = harness.start(contender, work / "logs", pinned)
            except ContenderFailed as exc:
                entry["error"] = f"did not start: {exc}"
                say(f"{contender.name}: {entry['error']}")
                continue
            entry["start_s"] = round(time.monotonic() - started, 1)
            entry.setdefault("idle_cores", []).append(running.idle_cores)
            try:
                body_path = bodies_file(contender, work)
                for _ in range(per_start):
                    entry["reps"].append(measure(running, body_path))
            except ContenderFailed as exc:
                entry["error"] = f"failed under load: {exc}"
            finally:
                running.stop()
    return out


def summarize_b1(entry: dict) -> None:
    reps = entry["reps"]
    entry["points"] = harness.summarize_points(reps)
    entry["max_rate"] = harness.spread([harness.max_rate(r) for r in reps]) if reps else None
    at500 = [r["500.0"]["p99_ms"] for r in reps if "500.0" in r]
    entry["p99_at_500"] = harness.spread(at500) if at500 else None
    entry["cpu_us_at_500"] = (
        harness.spread([r["500.0"]["cpu_us_per_request"] for r in reps if "500.0" in r])
        if at500
        else None
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few minutes: short runs")
    parser.add_argument("--only", default="", help="comma-separated contenders")
    parser.add_argument("--skip-b4", action="store_true", help="run B1 only")
    parser.add_argument("--skip-b1", action="store_true", help="run B4 only")
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="leave every process on any CPU"
    )
    parser.add_argument(
        "--out", type=Path, default=harness.RESULTS, help="results folder [default: bench/results]"
    )
    parser.add_argument("--rates", help="override the profile's rates, e.g. 500,1000")
    parser.add_argument("--repeats", type=int, help="override the profile's repetitions")
    args = parser.parse_args()
    profile = dict(PROFILES["quick" if args.quick else "full"])
    if args.rates:
        profile["rates"] = [float(r) for r in args.rates.split(",")]
    if args.repeats:
        profile["repeats"] = args.repeats
    pinned = args.pin and harness.can_pin()
    names = ["shipyard", *PEERS, "floor"]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    work = Path(tempfile.mkdtemp(prefix="shipyard-b1-"))
    artifact_dir = envs.envs_dir().parent / "bench-artifact"
    say(f"model artifact in {artifact_dir} (LightGBM 100 trees -> ONNX, Shipyard's export)")
    artifact = build(artifact_dir)
    try:
        if not args.skip_b1:
            b1(names, artifact, work, profile, pinned, args)
        if not args.skip_b4:
            b4(
                [n for n in names if n in ("shipyard", "fastapi", *BATCHERS)],
                artifact,
                work,
                profile,
                pinned,
                args,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def b1(names, artifact, work, profile, pinned, args) -> None:
    machine_before = harness.machine()
    contenders, failed = build_contenders(names, artifact, work)

    def measure(running, body_path):
        return harness.ladder(
            running,
            body_path,
            [float(r) for r in profile["rates"]],
            seconds=profile["seconds"],
            warmup_s=profile["warmup"],
            pinned=pinned,
            always=(500.0,),
        )

    results = run_matrix(contenders, work, profile, pinned, measure)
    for name, entry in failed.items():
        results[name] = {**entry, "reps": [], "note": "", "url": None}
    for entry in results.values():
        summarize_b1(entry)
    order = [n for n in names if n in results] + [n for n in results if n not in names]
    harness.write_json(
        args.out / "b1_model_hop.json",
        {
            "benchmark": "B1",
            "title": "model hop: single-row JSON predict, LightGBM 100 trees (ONNX)",
            "machine": {**machine_before, "load_average_after": harness.load_average()},
            "profile": profile,
            "pinned": pinned,
            "contenders": {n: results[n] for n in order},
        },
    )
    say(f"B1 results: {args.out / 'b1_model_hop.json'}")


def b4(names, artifact, work, profile, pinned, args) -> None:
    machine_before = harness.machine()
    contenders, failed = build_contenders(names, artifact, work)
    on, failed_on = build_contenders(
        [n for n in names if n in BATCHERS], artifact, work, batching=True
    )
    failed |= failed_on
    contenders += on

    def measure(running, body_path):
        rows = {}
        for clients in profile["clients"]:
            row = harness.load(
                running,
                body_path,
                clients=clients,
                seconds=profile["seconds"],
                warmup_s=profile["warmup"],
                pinned=pinned,
            )
            rows[str(float(clients))] = row
            say(
                f"  {running.contender.name:>22} {clients:>3} clients: {row['achieved_rps']:.0f}/s "
                f"p50 {row['p50_ms']:.2f} p99 {row['p99_ms']:.2f} ms, errors "
                f"{row['errors'] + row['failed']}"
            )
        return rows

    b4_profile = {**profile, "repeats": 1 if args.quick else profile["repeats"]}
    results = run_matrix(contenders, work, b4_profile, pinned, measure)
    for name, entry in failed.items():
        results[name] = {**entry, "reps": [], "note": "", "url": None}
    for entry in results.values():
        entry["points"] = harness.summarize_points(entry["reps"])
    harness.write_json(
        args.out / "b4_batching.json",
        {
            "benchmark": "B4",
            "title": "batching: closed loop of N concurrent single-row clients",
            "machine": {**machine_before, "load_average_after": harness.load_average()},
            "profile": b4_profile,
            "pinned": pinned,
            "contenders": results,
        },
    )
    say(f"B4 results: {args.out / 'b4_batching.json'}")


if __name__ == "__main__":
    main()
