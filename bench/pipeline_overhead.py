"""Benchmark B6: the training pipeline under the KFP local runner against a plain Python script.

What it measures
    The wall time of the training pipeline (``pipelines/training.py``: ingest -> validate ->
    redact -> training set -> train -> evaluate -> gate -> register -> export -> mark challenger)
    on ``--rows`` synthetic transactions (default 1,000,000), run two ways against the same real
    embedded stack (MLflow, Triton, gateway, Prometheus started with ``control.up``):

    * ``script``: the same steps as one plain Python script, i.e. the functions of
      ``shipyard.training.steps`` called in order in one process, with exactly the arguments
      the KFP components pass (owner/team ``bench``, feature service ``fraud_scoring_v2``, the
      pipeline's default hyper-parameters and gate policy, ``as_of`` = now), model name
      ``bench-script`` and its own output folders;
    * ``kfp``: ``training_pipeline(**arguments)`` under ``kfp.local`` with
      ``SubprocessRunner(use_venv=False)``, set up as ``shipyard pipeline run --local`` does
      (``os.environ.update(settings.to_env())``, pipeline root ``<state>/pipelines``), model name
      ``bench-kfp``, so registration does the same work (a new version, not an idempotent no-op).

    The target is KFP total / script total <= 1.3. Per step, the script's time is
    ``time.perf_counter`` around each call. KFP's per-task time is the interval between its
    ``Executing task 'x'`` and ``Task 'x' finished with status SUCCESS`` log records, taken with
    ``perf_counter`` by a filter on the root logger (``kfp.local`` replaces the root logger's
    handlers for every task but leaves its filters alone); it covers the task's whole subprocess
    (``sh``, interpreter start, ``import kfp``, the component's imports and the step itself;
    the components opt out of KFP's default ``pip install kfp`` in front of every task). Extra
    rows:

    * ``startup + imports``: process wall time minus the in-process time below (interpreter,
      the driver's imports (steps module / ``kfp`` + pipeline definition), exit);
    * ``importer``: KFP's in-process importer task for the raw data set (no script equivalent);
    * ``orchestration``: the ``training_pipeline(...)`` call minus the sum of its tasks (KFP's
      own bookkeeping in the parent: executor input, placeholders, outputs, logging).

    Totals are process wall times: each side runs as its own fresh child process of this
    script (``--worker script|kfp``), so both pay interpreter start and first imports (polars,
    mlflow, feast, lightgbm) exactly once per process, as a user running either would, and
    neither inherits modules or warm state from the driver, which has generated the data and
    started the stack. The first MLflow call of the script imports mlflow inside ``train``:
    that is part of the script's cost and stays in its ``train`` row.

    A diagnostic section (skip with ``--no-diagnose``), run after the timed runs, splits the
    per-task overhead into what every task pays again, in fresh processes: the floor of one
    kfp.local task (a chain of 5 no-op components built like the pipeline's: ``sh``,
    interpreter, executor), for comparison the no-op ``pip install kfp==<version> --no-deps``
    KFP puts in front of every lightweight component by default (the pipeline's components opt
    out), and per step the cold import of ``kfp.dsl.executor_main`` (with ``_KFP_RUNTIME=true``,
    as in a task) followed by the modules the component and its step import (read from
    ``steps.py`` with ``ast``: the step's imports and those of the public helpers it calls;
    private helpers, such as the champion's evaluation that runs only when there is a champion,
    are left out; for steps that call ``import_mlflow()`` then also
    ``mlflow.tracking.request_header.registry``, which MLflow's first REST call imports and which
    loads the installed ``mlflow.request_header_provider`` plugins, Feast's unless
    ``import_mlflow`` leaves it out), against all those modules imported once (what the script
    pays).

    Each run's result is checked in MLflow: the gate decision, the registered version with its
    ``challenger`` alias, and the Triton entry of that version. The script exits 1 when either
    side did not register a version.

How to run
    .venv/bin/python bench/pipeline_overhead.py [--rows N]
    .venv/bin/python bench/pipeline_overhead.py --rows 100000          # quick run
    .venv/bin/python bench/pipeline_overhead.py --repeats 3 --json /tmp/b6.json
    .venv/bin/python bench/pipeline_overhead.py --bytecode-cache /tmp/b6-pycache   # as in the image
    (``--seed`` picks another synthetic data set; ``--keep`` keeps the temporary state dir.)

Bytecode
    Every KFP task is a fresh interpreter that imports its libraries again, so the cost of an
    import matters once per task instead of once per run. An image built with pip has compiled
    bytecode (pip compiles at install); a venv installed by uv without ``--compile-bytecode``
    has none, and with ``PYTHONDONTWRITEBYTECODE=1`` in the environment none is ever written:
    every process then compiles each module it imports from source (about 40% of import time).
    The report says which case was measured. ``--bytecode-cache DIR`` compiles the venv's
    site-packages and the checkout into ``DIR`` before the timed runs (untimed) and runs both
    sides with ``PYTHONPYCACHEPREFIX=DIR``: the image's situation, without writing into the venv.

Fairness notes
    * Same data, same stack, same code, same arguments; one side at a time. With
      ``--repeats`` > 1 the order alternates (script first on odd repeats, KFP first on even)
      and every repeat uses fresh model names (``bench-script-r2`` …) so no run finds a
      champion (which would add a champion evaluation) or an identical earlier version.
    * Both sides write the shared feature tables and apply the Feast repository (that is what
      the step does); the first run of a benchmark also creates the MLflow experiment.
    * The stack keeps running during both runs: on a shared 2-core machine its background load,
      and anything else running, shows up as noise. Compare ratios of the same repeat, prefer
      medians of ``--repeats 3``, and rerun before trusting differences of a few percent.
    * KFP's per-task subprocess output is streamed line by line through the driver (as in
      ``shipyard pipeline run --local``); here into a log file, not a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Stdlib only at module level: the workers import this file, and their startup is measured.

STEPS = (
    "ingest",
    "validate",
    "redact",
    "training_set",
    "train",
    "evaluate",
    "gate",
    "register",
    "export",
    "mark_challenger",
)
OWNER = "bench"
TEAM = "bench"
FEATURE_SERVICE = "fraud_scoring_v2"
EXPERIMENT = "fraud-scoring"
# The pipeline's defaults (pipelines/training.py).
HYPER = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 50}
POLICY = {"max_auc_drop": 0.01, "min_slice_auc": 0.6}
TARGET_RATIO = 1.3
KINDS = ("script", "kfp")
NAN = float("nan")
MLFLOW_FIRST_REQUEST = "mlflow.tracking.request_header.registry"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
STARTED = re.compile(r"Executing task '([^']+)'")
FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")


# --- workers (run as child processes) ------------------------------------------------------


class _StepFailed(Exception):
    """A step of the script raised: its time is recorded and the run stops there."""


def script_worker(config: dict) -> dict:
    """The steps in order in this one process, exactly as the components call them."""
    began = time.perf_counter()
    from shipyard.settings import load_settings
    from shipyard.training import steps

    settings = load_settings()
    raw = Path(config["raw"])
    out = Path(config["out"])
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    failure: list[str] = []

    def timed(name: str, call, *args):
        start = time.perf_counter()
        try:
            return call(*args)
        except Exception as exc:  # what a failing component would do: stop the run
            failure.append(f"{name}: {type(exc).__name__}: {exc}")
            raise _StepFailed from exc
        finally:
            timings[name] = time.perf_counter() - start

    start = time.perf_counter()
    with contextlib.suppress(_StepFailed):  # the failure is recorded; stop like a pipeline
        _script_steps(steps, settings, raw, out, config, timed)
    return {
        "steps": timings,
        "in_process": time.perf_counter() - start,
        "worker_imports": start - began,
        "failed": failure[0] if failure else None,
    }


def _script_steps(steps, settings, raw: Path, out: Path, config: dict, timed) -> None:
    model_name = config["model_name"]
    pipeline_run = config["pipeline_run"]
    lineage = timed("ingest", steps.ingest, raw)
    print(f"raw data {lineage['path']}: {lineage['rows']:,} rows, {lineage['digest']}")
    text = timed("validate", steps.validate, settings, raw, datetime.now(UTC))
    (out / "report.md").write_text(text)
    clean = timed("redact", steps.redact, settings, raw, out / "clean", datetime.now(UTC))
    print(f"clean data: {clean['rows']:,} rows, PII policy {clean['pii_policy']}")
    training = out / "training"
    manifest = timed(
        "training_set", steps.training_set, settings, out / "clean", FEATURE_SERVICE, training
    )
    print(f"training set: {manifest['rows']:,} rows, {manifest['positives']:,} positive")
    model = out / "model"
    run_id = timed("train", steps.train, settings, training, HYPER, model, EXPERIMENT, pipeline_run)
    result = timed(
        "evaluate", steps.evaluate, settings, training, model, run_id, model_name, out / "eval"
    )
    evaluation = json.dumps(result)  # the component returns JSON, the next ones parse it
    decision = timed("gate", steps.gate, json.loads(evaluation), POLICY, run_id, settings)
    print(decision["summary"])
    if not decision["passed"]:
        return
    registered = timed(
        "register",
        steps.register,
        settings,
        run_id,
        model_name,
        OWNER,
        TEAM,
        "",
        training,
        json.loads(evaluation),
        HYPER,
        pipeline_run,
    )
    version = str(registered["version"])
    exported = timed("export", steps.export, settings, model_name, version, model, training)
    print(f"exported v{version} to {exported['triton_entry']} (parity {exported['parity']:.1e})")
    aliases = timed("mark_challenger", steps.mark_challenger, settings, model_name, version)
    print(f"{model_name} v{version}: {', '.join(aliases['aliases'])}")


class _TaskClock(logging.Filter):
    """Timestamps kfp.local's task start/finish records (a logger filter survives the handler
    swaps kfp.local does around every task)."""

    def __init__(self) -> None:
        super().__init__()
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.status: dict[str, str] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.perf_counter()
        if isinstance(record.msg, str) and "task" in record.msg.lower():
            message = ANSI.sub("", record.msg)
            if match := STARTED.search(message):
                self.started[match.group(1)] = now
            elif (match := FINISHED.search(message)) and match.group(1) in self.started:
                name = match.group(1)
                self.seconds[name] = now - self.started[name]
                self.status[name] = match.group(2)
        return True


def kfp_worker(config: dict) -> dict:
    """``training_pipeline(**arguments)`` under kfp.local, as ``shipyard pipeline run --local``."""
    began = time.perf_counter()
    import warnings

    from kfp import local

    from pipelines.training import training_pipeline
    from shipyard.settings import load_settings

    settings = load_settings()
    os.environ.update(settings.to_env())
    root = Path(config["pipeline_root"])
    root.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", message="You may be attemping to run a task")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    clock = _TaskClock()
    logging.getLogger().addFilter(clock)
    arguments = {
        "raw_uri": config["raw"],
        "owner": OWNER,
        "team": TEAM,
        "on_call": "",
        "model_name": config["model_name"],
        "feature_service": FEATURE_SERVICE,
        "as_of": "",
        **HYPER,
        **POLICY,
        "experiment": EXPERIMENT,
    }
    start = time.perf_counter()
    failure = None
    try:
        training_pipeline(**arguments)
    except Exception as exc:  # kfp.local raises once a task has failed
        ended = time.perf_counter()
        for name in set(clock.started) - set(clock.seconds):  # its end was not logged
            clock.seconds[name] = ended - clock.started[name]
            clock.status[name] = "FAILURE"
        failed = [name for name, status in clock.status.items() if status != "SUCCESS"]
        failure = f"{failed[0].replace('-', '_')}: " if failed else ""
        failure += ANSI.sub("", str(exc))
    in_process = time.perf_counter() - start
    steps = {name.replace("-", "_"): seconds for name, seconds in clock.seconds.items()}
    return {
        "steps": steps,
        "in_process": in_process,
        "worker_imports": start - began,
        "failed": failure,
    }


NOOP_PIPELINE = """from kfp import dsl

from pipelines.components import component

TASKS = {tasks}


@component
def noop(previous: str) -> str:
    return previous + "."


@dsl.pipeline(name="bench-noop")
def chain():
    value = noop(previous="").output
    for _ in range(TASKS - 1):
        value = noop(previous=value).output
"""


def noop_worker(config: dict) -> dict:
    """The floor of one kfp.local task: a chain of components that do nothing."""
    import importlib.util
    import warnings

    from kfp import local

    # KFP reads real annotations, which this file's `from __future__ import annotations` hides:
    # the pipeline lives in a module of its own, written next to the pipeline root.
    source = Path(config["root"]).parent / "bench_noop_pipeline.py"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(NOOP_PIPELINE.format(tasks=int(config["tasks"])))
    spec = importlib.util.spec_from_file_location("bench_noop_pipeline", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    warnings.filterwarnings("ignore", message="You may be attemping to run a task")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=config["root"])
    clock = _TaskClock()
    logging.getLogger().addFilter(clock)
    start = time.perf_counter()
    module.chain()
    return {"tasks": list(clock.seconds.values()), "in_process": time.perf_counter() - start}


WORKERS = {"script": script_worker, "kfp": kfp_worker, "noop": noop_worker}


def run_worker(kind: str, config_path: Path) -> None:
    config = json.loads(config_path.read_text())
    result = WORKERS[kind](config)
    Path(config["result"]).write_text(json.dumps(result, indent=2))


# --- driver --------------------------------------------------------------------------------


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def isolated_settings(state_dir: Path):
    """Settings with their own state dir and free loopback ports (as tests/conftest.py)."""
    from shipyard.settings import Ports, Settings
    from shipyard.stack.probes import free_ports

    names = list(Ports.model_fields)
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    return Settings(state_dir=state_dir, ports=Ports(**ports))


def write_raw_data(settings, rows: int, seed: int) -> float:
    """A month of transactions ending today (the freshness gate passes with as_of = now)."""
    from shipyard.data.offline_source import write_offline_source
    from shipyard.data.synthetic import SyntheticConfig, generate
    from shipyard.stack.layout import StateLayout

    began = time.perf_counter()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    config = SyntheticConfig(
        rows=rows,
        start=today - timedelta(days=30),
        days=30,
        late_fraction=0.01,
        duplicate_fraction=0.005,
        seed=seed,
    )
    write_offline_source(generate(config), config, StateLayout(settings.state_dir).raw_data)
    return time.perf_counter() - began


def run_side(kind: str, settings, work: Path, repeat: int, env: dict) -> dict:
    """One side in a fresh child process; its process wall time and what it reports."""
    from shipyard.stack.layout import StateLayout

    layout = StateLayout(settings.state_dir)
    suffix = "" if repeat == 1 else f"-r{repeat}"
    model_name = f"bench-{kind}{suffix}"
    folder = work / f"{kind}{suffix or '-r1'}"
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "raw": str(layout.raw_data.absolute()),
        "out": str(folder / "outputs"),
        "pipeline_root": str(layout.root / "pipelines"),
        "model_name": model_name,
        "pipeline_run": f"{model_name}-{datetime.now(UTC):%Y%m%d%H%M%S}",
        "result": str(folder / "result.json"),
    }
    (folder / "config.json").write_text(json.dumps(config))
    command = [sys.executable, str(Path(__file__).absolute()), "--worker", kind]
    command += ["--worker-config", str(folder / "config.json")]
    log = folder / "run.log"
    say(f"  {kind}: {model_name} (log {log})")
    with log.open("w") as handle:
        began = time.perf_counter()
        code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env).returncode
        wall = time.perf_counter() - began
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{kind} run failed (exit {code}); end of {log}:\n{tail}")
    result = json.loads((folder / "result.json").read_text())
    result.update(wall=wall, model_name=model_name, log=str(log))
    result["check"] = check_produced(settings, model_name)
    say(f"  {kind}: {wall:.1f}s; {describe(result['check'])}")
    if result["failed"]:
        say(f"  {kind}: FAILED at {result['failed']}")
    return result


def check_produced(settings, model_name: str) -> dict:
    """What the run left in MLflow and Triton's repository: gate, version, aliases, entry."""
    from mlflow import MlflowClient

    from shipyard.stack.layout import StateLayout

    client = MlflowClient(settings.url("mlflow"))
    versions = client.search_model_versions(f"name = '{model_name}'")
    if not versions:
        return {"version": None, "aliases": [], "gate": "no version registered"}
    latest = max(versions, key=lambda v: int(v.version))
    latest = client.get_model_version(model_name, latest.version)  # with its aliases
    tags = client.get_run(latest.run_id).data.tags
    entry = StateLayout(settings.state_dir).triton_models / model_name / str(latest.version)
    return {
        "versions": len(versions),
        "version": latest.version,
        "aliases": list(latest.aliases),
        "gate": tags.get("gate", "?"),
        "owner": latest.tags.get("owner"),
        "onnx_parity": latest.tags.get("onnx_parity_max_abs_diff"),
        "triton_entry": (entry / "model.onnx").is_file(),
    }


def describe(check: dict) -> str:
    if check.get("version") is None:
        return check["gate"]
    aliases = ", ".join(check["aliases"]) or "no aliases"
    return (
        f"gate {check['gate']}, v{check['version']} registered ({aliases}), "
        f"owner {check['owner']}, ONNX parity {check['onnx_parity']}, "
        f"Triton entry {'written' if check['triton_entry'] else 'missing'}"
    )


def rows_of(result: dict, kind: str) -> dict[str, float]:
    """A run as table rows: startup, (importer,) the steps, orchestration, total."""
    steps = result["steps"]
    rows = {"startup + imports": result["wall"] - result["in_process"]}
    if kind == "kfp":
        rows["importer"] = steps.get("importer", 0.0)
    rows.update({name: steps.get(name, NAN) for name in STEPS})
    rows["orchestration"] = result["in_process"] - sum(steps.values())
    rows["total"] = result["wall"]
    return rows


def step_imports() -> dict[str, list[str]]:
    """The modules each step imports when it runs, read from ``steps.py`` with ``ast``: the
    step's own imports, those of the module's public functions it calls (private helpers such
    as ``_champion_evaluation`` run only in some runs), ``mlflow`` for ``import_mlflow()``, and
    submodules reached by attribute (``mlflow.lightgbm.log_model``)."""
    import ast
    import importlib.util

    import shipyard.training.steps as module

    tree = ast.parse(Path(module.__file__).read_text())
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}

    def dotted(node: ast.AST) -> str | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else None

    def is_module(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError, AttributeError):
            return False

    def imports_of(name: str, seen: set[str]) -> set[str]:
        seen.add(name)
        found: set[str] = set()
        nodes = list(ast.walk(functions[name]))
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found.update(
                    f"{node.module}.{alias.name}"
                    for alias in node.names
                    if is_module(f"{node.module}.{alias.name}")
                )
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id == "import_mlflow":
                    # MLflow, then its first REST call (see MLFLOW_FIRST_REQUEST).
                    found |= {"mlflow", MLFLOW_FIRST_REQUEST}
                elif (
                    node.func.id in functions
                    and not node.func.id.startswith("_")
                    and node.func.id not in seen
                ):
                    found |= imports_of(node.func.id, seen)
        for node in nodes:  # submodules by attribute, once the packages are known
            if isinstance(node, ast.Attribute) and (chain := dotted(node)):
                head = chain.rsplit(".", 1)[0]
                if "." in head and head.split(".")[0] in found and is_module(head):
                    found.add(head)
        return found

    return {step: sorted(imports_of(step, set())) for step in STEPS}


def probe(code: str, repeats: int, env: dict) -> list[float]:
    """Median of each number the code prints, over cold processes."""
    samples = []
    for _ in range(repeats):
        output = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
        ).stdout
        samples.append([float(value) for value in output.split()])
    return [statistics.median(column) for column in zip(*samples, strict=True)]


def diagnose(repeats: int, work: Path, env: dict) -> dict:
    """Fixed costs a KFP task pays again and again, measured in fresh processes."""
    from importlib.metadata import version

    results: dict = {}
    say("  a chain of 5 no-op kfp.local tasks")
    config = {"tasks": 5, "root": str(work / "noop-root"), "result": str(work / "noop.json")}
    (work / "noop-config.json").write_text(json.dumps(config))
    command = [sys.executable, str(Path(__file__).absolute()), "--worker", "noop"]
    command += ["--worker-config", str(work / "noop-config.json")]
    subprocess.run(command, check=True, capture_output=True, env=env)
    noop = json.loads((work / "noop.json").read_text())
    results["noop_task_seconds"] = noop["tasks"]
    results["noop_task_median"] = statistics.median(noop["tasks"])
    say(f"    {results['noop_task_median']:.2f}s per task (median)")

    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-warn-script-location"]
    pip += [f"kfp=={version('kfp')}", "--no-deps"]
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        subprocess.run(pip, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - began)
    results["pip_noop"] = statistics.median(times)
    results["interpreter"] = _process_seconds("pass", repeats, env)
    say(f"  pip no-op {results['pip_noop']:.2f}s (not paid by the components)")
    say(f"  interpreter {results['interpreter']:.2f}s")

    # Per step: import kfp's executor (as a task does: `_KFP_RUNTIME=true` skips kfp's client),
    # then what the component and its step import.
    env = {**env, "_KFP_RUNTIME": "true"}
    results["imports"] = {}
    base = "import time\nt0 = time.perf_counter()\nimport kfp.dsl.executor_main\n"
    base += "t1 = time.perf_counter()\nimport json, pathlib, datetime\n"
    base += "import shipyard.settings, shipyard.training.steps\n"
    for step, modules in step_imports().items():
        code = base + import_code(modules)
        code += "t2 = time.perf_counter()\nprint(t1 - t0, t2 - t1)\n"
        kfp_import, step_import = probe(code, repeats, env)
        results["imports"][step] = {
            "kfp_executor": kfp_import,
            "step": step_import,
            "modules": modules,
        }
        say(f"  {step}: import kfp {kfp_import:.2f}s, then its modules {step_import:.2f}s")
    everything = sorted(
        {name for entry in results["imports"].values() for name in entry["modules"]}
    )
    code = base + import_code(everything)
    code += "t2 = time.perf_counter()\nprint(t1 - t0, t2 - t1)\n"
    results["imports_all_steps_once"] = probe(code, repeats, env)[1]
    say(f"  all steps' modules once: {results['imports_all_steps_once']:.2f}s")
    return results


def import_code(modules: list[str]) -> str:
    """Python importing ``modules``; MLflow's first-request plugins last, as a step does."""
    code = "".join(f"import {name}\n" for name in modules if name != MLFLOW_FIRST_REQUEST)
    if MLFLOW_FIRST_REQUEST in modules:
        code += "from shipyard.training.tracking import import_mlflow\nimport_mlflow()\n"
        code += f"import {MLFLOW_FIRST_REQUEST}\n"
    return code


def _process_seconds(code: str, repeats: int, env: dict) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def summarize(runs: list[dict]) -> dict:
    """Per row: median seconds (and spread) of each side, and the ratio of the medians."""
    tables = {kind: [rows_of(run[kind], kind) for run in runs] for kind in KINDS}
    names = list(tables["kfp"][0])
    summary = {}
    for name in names:
        entry = {}
        for kind in KINDS:
            values = [rows[name] for rows in tables[kind] if not math.isnan(rows.get(name, NAN))]
            if values:
                entry[kind] = statistics.median(values)
                entry[f"{kind}_spread"] = [min(values), max(values)]
        if entry.get("script", 0) > 0.005 and "kfp" in entry:
            entry["ratio"] = entry["kfp"] / entry["script"]
        summary[name] = entry
    return summary


def render(summary: dict, repeats: int, rows: int, failures: list[str]) -> str:
    spread = repeats > 1

    def cell(entry: dict, kind: str) -> str:
        if kind not in entry:
            return "—"
        text = f"{entry[kind]:.2f}"
        if spread:
            low, high = entry[f"{kind}_spread"]
            text += f" ({low:.2f}-{high:.2f})"
        return text

    head = "median s (min-max)" if spread else "s"
    lines = [
        f"B6 training pipeline, {rows:,} rows, {repeats} repeat(s)",
        "",
        f"| step | script {head} | KFP local {head} | ratio | KFP - script s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, entry in summary.items():
        ratio = f"{entry['ratio']:.2f}x" if "ratio" in entry else "—"
        extra = entry.get("kfp", 0.0) - entry.get("script", 0.0)
        label = f"**{name}**" if name == "total" else name
        lines.append(
            f"| {label} | {cell(entry, 'script')} | {cell(entry, 'kfp')} | {ratio} | {extra:+.2f} |"
        )
    total = summary["total"]
    verdict = "meets" if total["ratio"] <= TARGET_RATIO else "misses"
    lines += [
        "",
        f"Overall: KFP local / script = {total['ratio']:.2f}x ({verdict} the <= {TARGET_RATIO}x "
        f"target); overhead {total['kfp'] - total['script']:.1f}s.",
    ]
    if failures:
        lines.append(
            f"PARTIAL: failed at {', '.join(failures)}; totals cover the steps up to and "
            "including the failure (the same work on both sides)."
        )
    return "\n".join(lines)


def render_diagnostics(diagnostics: dict, summary: dict, repeats: int) -> str:
    """Where KFP's extra time per task goes, from the cold-process probes."""
    floor = diagnostics["noop_task_median"]
    lines = [
        "",
        f"Fixed costs in fresh processes (median of {repeats}): interpreter "
        f"{diagnostics['interpreter']:.2f}s; one no-op kfp.local task (sh + interpreter + "
        f"import kfp + executor) {floor:.2f}s; KFP's default no-op `pip install kfp --no-deps` "
        f"in front of each task, which the components opt out of, would add "
        f"{diagnostics['pip_noop']:.2f}s. All steps' modules imported once (what the "
        f"script pays): {diagnostics['imports_all_steps_once']:.2f}s. Per task, KFP pays the "
        "no-op task plus the cold import of what the step uses (after `import kfp`, "
        f"{statistics.median(e['kfp_executor'] for e in diagnostics['imports'].values()):.2f}s "
        "with _KFP_RUNTIME=true); the script pays each import once, in the first step using it.",
        "",
        "| step | KFP - script s | no-op task + step's imports s | step's imports s | heavy |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for step, entry in diagnostics["imports"].items():
        extra = summary[step].get("kfp", 0.0) - summary[step].get("script", 0.0)
        heavy = [
            name
            for name in entry["modules"]
            if name.split(".")[0] in ("mlflow", "lightgbm", "feast")
            or name.startswith(("shipyard.features", "shipyard.training.e", "shipyard.data"))
        ]
        heavy = [
            "mlflow's first request (plugins)" if name == MLFLOW_FIRST_REQUEST else name
            for name in heavy
        ]
        lines.append(
            f"| {step} | {extra:+.2f} | {floor + entry['step']:.2f} | {entry['step']:.2f} | "
            f"{', '.join(heavy)} |"
        )
    return "\n".join(lines)


def compile_bytecode(env: dict) -> float:
    """Compile site-packages and the checkout into ``env["PYTHONPYCACHEPREFIX"]``."""
    import sysconfig

    here = Path(__file__).resolve().parents[1]
    folders = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    folders |= {str(here / "platform"), str(here / "pipelines")}
    began = time.perf_counter()
    # Some packages ship files that do not compile (templates, Python 2 examples): not checked.
    command = [sys.executable, "-m", "compileall", "-q", "-j", "0", *sorted(folders)]
    subprocess.run(command, env=env, capture_output=True)
    return time.perf_counter() - began


def bytecode_state(env: dict) -> str:
    """Whether the worker processes find compiled bytecode (probed on polars)."""
    code = (
        "import importlib.util, os, sys\n"
        "cached = importlib.util.cache_from_source(importlib.util.find_spec('polars').origin)\n"
        "print(os.path.exists(cached), sys.flags.dont_write_bytecode, sys.pycache_prefix)\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    ).stdout.split()
    if not output:
        return "unknown"
    cached, no_writes, prefix = output
    where = f" in {prefix}" if prefix != "None" else ""
    if cached == "True":
        return f"compiled{where} (as in an image built with pip)"
    if no_writes == "1":
        return (
            "none, and PYTHONDONTWRITEBYTECODE=1: every process compiles what it imports "
            "(see --bytecode-cache)"
        )
    return "not compiled yet: the first process to import a module writes it"


def _commit() -> str:
    """The checkout's commit, with ``+dirty`` when files differ from it (what was measured)."""
    here = Path(__file__).parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=here, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{commit}+dirty" if dirty else commit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="transactions to generate")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side (median)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic data set")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--no-diagnose", action="store_true", help="skip the fixed-cost probes")
    parser.add_argument("--diagnose-repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary state dir")
    parser.add_argument(
        "--bytecode-cache",
        type=Path,
        help="compile bytecode into this folder first and run both sides with it (see Bytecode)",
    )
    parser.add_argument("--worker", choices=tuple(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--worker-config", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.worker_config)
        return 0

    from shipyard.stack import control

    work = Path(tempfile.mkdtemp(prefix="shipyard-b6-"))
    settings = isolated_settings(work / "state")
    runs: list[dict] = []
    diagnostics: dict = {}
    bytecode = "unknown"
    try:
        say(f"starting the stack in {settings.state_dir}")
        began = time.perf_counter()
        control.up(settings)
        say(f"  up in {time.perf_counter() - began:.1f}s")
        say(f"generating {args.rows:,} transactions")
        say(f"  written in {write_raw_data(settings, args.rows, args.seed):.1f}s")
        from shipyard.stack.supervisor import inherited_env

        env = {**inherited_env(), **settings.to_env()}
        if args.bytecode_cache:
            say(f"compiling bytecode into {args.bytecode_cache}")
            env["PYTHONPYCACHEPREFIX"] = str(args.bytecode_cache.absolute())
            say(f"  compiled in {compile_bytecode(env):.1f}s")
        bytecode = bytecode_state(env)
        say(f"bytecode: {bytecode}")
        for repeat in range(1, args.repeats + 1):
            order = ("script", "kfp") if repeat % 2 else ("kfp", "script")
            say(f"repeat {repeat}/{args.repeats}: {' then '.join(order)}")
            runs.append(
                {kind: run_side(kind, settings, work, repeat, env) for kind in order}
                | {"order": list(order)}
            )
        if not args.no_diagnose:
            say("fixed costs of one KFP task, in fresh processes:")
            try:
                diagnostics = diagnose(args.diagnose_repeats, work, env)
            except (OSError, subprocess.SubprocessError, ValueError) as exc:
                say(f"  diagnostics failed, skipped: {exc}")
    finally:
        say("stopping the stack")
        control.down(settings)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    summary = summarize(runs)
    failures = sorted(
        {run[kind]["failed"].split(":")[0] for run in runs for kind in KINDS if run[kind]["failed"]}
    )
    print(render(summary, args.repeats, args.rows, failures))
    print(f"Bytecode: {bytecode}.")
    print()
    for kind in KINDS:
        for index, run in enumerate(runs, 1):
            side = run[kind]
            print(f"* {kind} repeat {index} ({side['model_name']}): {describe(side['check'])}")
            if side["failed"]:
                print(f"  FAILED at {side['failed'][:600]}")
    if diagnostics:
        print(render_diagnostics(diagnostics, summary, args.diagnose_repeats))
    if args.json:
        from importlib.metadata import version

        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "benchmark": "B6",
            "rows": args.rows,
            "seed": args.seed,
            "repeats": args.repeats,
            "target_ratio": TARGET_RATIO,
            "machine": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "kfp": version("kfp"),
                "mlflow": version("mlflow"),
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "commit": _commit(),
            },
            "bytecode": bytecode,
            "summary": summary,
            "runs": runs,
            "diagnostics": diagnostics,
        }
        args.json.write_text(json.dumps(document, indent=2))
        print(f"\nraw results: {args.json}")
    ok = all(
        run[kind]["failed"] is None and "challenger" in run[kind]["check"]["aliases"]
        for run in runs
        for kind in KINDS
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
