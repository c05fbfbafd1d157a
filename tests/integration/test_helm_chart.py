"""The Helm chart's test tier, with the real tools and no cluster.

helm lint --strict and helm template over the ci/*-values.yaml matrix, kubeconform -strict on
every rendering (Kubernetes 1.33 and the monitoring CRDs), the helm-unittest suites, checkov,
golden renderings, values.schema.json rejections, rendering diffs for canary changes, the
security policy (Pod Security "restricted", probes, resources, network policy, RBAC, secrets),
and the pieces of the chart that run code: Triton started with the chart's own flags (restricted
model control) and its version-sync sidecar, and the `helm test` prediction script.

The tools come from `scripts/chart.sh tools` (which runs scripts/tools.sh) into the tools cache;
nothing is downloaded here.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from serving.schemas import Instance, PredictRequest
from shipyard.routing import Analysis, ModelName, Version, parse
from shipyard.settings import load_settings
from shipyard.stack.probes import free_ports

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "shipyard"
CHART_SH = ROOT / "scripts" / "chart.sh"
GOLDEN = ROOT / "helm" / "golden"
PROFILES = sorted(p.name.removesuffix("-values.yaml") for p in (CHART / "ci").glob("*-values.yaml"))
RELEASE, NAMESPACE = "shipyard", "shipyard"
MONITORING_API = ("--api-versions", "monitoring.coreos.com/v1")

TOOLS = load_settings().tools_dir
BIN = TOOLS / "bin"
REQUIRED = {
    "helm": BIN / "helm",
    "helm-unittest": BIN / "helm-unittest",
    "kubeconform": BIN / "kubeconform",
    "Kubernetes schemas": TOOLS / "schemas" / "kubernetes" / "LOCATION",
    "monitoring CRD schemas": TOOLS / "schemas" / "monitoring" / "LOCATION",
    "checkov": TOOLS / "venvs" / "checkov" / "bin" / "checkov",
}
MISSING = [name for name, path in REQUIRED.items() if not path.exists()]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"chart tools missing from {TOOLS} ({', '.join(MISSING)}): build them once with "
    "`scripts/chart.sh tools` (runs scripts/tools.sh, then installs checkov and derives the "
    "monitoring CRD schemas)",
)

Doc = dict[str, Any]


# helpers


def run(*argv: str | Path, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=120, **kwargs
    )
    if check and result.returncode != 0:
        pytest.fail(f"{argv[0]} {argv[1]} failed:\n{result.stdout}\n{result.stderr}")
    return result


def helm_template(*args: str, monitoring_api: bool = True) -> subprocess.CompletedProcess:
    extra = MONITORING_API if monitoring_api else ()
    return run(
        BIN / "helm", "template", RELEASE, CHART, "--namespace", NAMESPACE, *extra, *args,
        check=False,
    )  # fmt: skip


@cache
def render(*args: str, monitoring_api: bool = True) -> tuple[Doc, ...]:
    result = helm_template(*args, monitoring_api=monitoring_api)
    assert result.returncode == 0, result.stderr
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def profile(name: str, *args: str) -> tuple[Doc, ...]:
    return render("-f", str(CHART / "ci" / f"{name}-values.yaml"), *args)


def values_of(name: str) -> Doc:
    return yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text()) or {}


def find(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert found, f"no {kind} {name} in the rendering"
    return found[0]


def by_id(docs: tuple[Doc, ...]) -> dict[tuple[str, str], Doc]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def pod_specs(docs: tuple[Doc, ...]) -> Iterator[tuple[Doc, Doc]]:
    """(object, pod spec) for every object that runs pods."""
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] == "Pod":
            yield doc, spec
        elif doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield doc, spec["template"]["spec"]
        elif doc["kind"] == "CronJob":
            yield doc, spec["jobTemplate"]["spec"]["template"]["spec"]


def env_of(container: Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def gateway_env(docs: tuple[Doc, ...]) -> dict[str, Any]:
    gateway = find(docs, "Deployment", f"{RELEASE}-gateway")
    return env_of(gateway["spec"]["template"]["spec"]["containers"][0])


def triton_policy(docs: tuple[Doc, ...]) -> dict[str, list[int]]:
    return json.loads(
        find(docs, "ConfigMap", f"{RELEASE}-triton-versions")["data"]["versions.json"]
    )


def diff(before: tuple[Doc, ...], after: tuple[Doc, ...]) -> set[tuple[str, str]]:
    old, new = by_id(before), by_id(after)
    assert old.keys() == new.keys(), "a values change added or removed objects"
    return {key for key in old if old[key] != new[key]}


# the tools on the matrix


def test_lint_strict_on_every_profile() -> None:
    result = run(CHART_SH, "lint")
    assert result.stdout.count("helm lint --strict") == len(PROFILES) >= 5


def test_every_rendering_passes_kubeconform_strict(tmp_path: Path) -> None:
    run(CHART_SH, "render", tmp_path)
    result = run(CHART_SH, "validate", tmp_path)
    summary = re.search(
        r"Valid: (\d+), Invalid: (\d+), Errors: (\d+), Skipped: (\d+)", result.stdout
    )
    assert summary, result.stdout
    valid, invalid, errors, skipped = map(int, summary.groups())
    total = sum(len(profile(p)) for p in PROFILES)
    assert (valid, invalid, errors, skipped) == (total, 0, 0, 0), result.stdout


def test_monitoring_crd_schemas_are_strict(tmp_path: Path) -> None:
    """The derived ServiceMonitor schema is used and rejects an unknown field."""
    monitor = find(profile("monitoring"), "ServiceMonitor", f"{RELEASE}-gateway")
    broken = copy.deepcopy(monitor)
    broken["spec"]["endpoints"][0]["portz"] = "http"
    (tmp_path / "monitors.yaml").write_text(yaml.safe_dump_all([monitor, broken]))
    result = run(CHART_SH, "validate", tmp_path, check=False)
    assert result.returncode != 0
    assert "'portz' not allowed" in result.stdout
    assert "Valid: 1, Invalid: 1" in result.stdout


def test_helm_unittest_suites() -> None:
    result = run(CHART_SH, "unittest")
    assert re.search(r"Test Suites:\s+(\d+) passed, \1 total", result.stdout), result.stdout


def test_checkov_finds_no_failure(tmp_path: Path) -> None:
    run(CHART_SH, "render", tmp_path)
    result = run(CHART_SH, "checkov", tmp_path, check=False)
    counts = re.search(r"Passed checks: (\d+), Failed checks: (\d+)", result.stdout)
    assert counts and int(counts.group(1)) > 1000, result.stdout[-3000:]
    assert int(counts.group(2)) == 0 and result.returncode == 0, result.stdout[-5000:]


def test_renderings_match_the_goldens() -> None:
    for name in PROFILES:
        golden = GOLDEN / f"{name}.yaml"
        assert golden.is_file(), f"{golden} is missing: run scripts/chart.sh golden"
        expected = [d for d in yaml.safe_load_all(golden.read_text()) if d]
        assert list(profile(name)) == expected, (
            f"the {name} rendering changed: review it, then run scripts/chart.sh golden"
        )


def test_monitoring_renders_rules_and_dashboards_from_files(tmp_path: Path) -> None:
    """The generator will copy rule and dashboard files into files/: they become objects."""
    chart = tmp_path / "shipyard"
    shutil.copytree(CHART, chart)
    (chart / "files" / "rules" / "gateway.yaml").write_text(
        "groups:\n  - name: shipyard-gateway\n    rules:\n"
        "      - alert: ShipyardGatewayErrors\n"
        "        expr: sum(rate(shipyard_gateway_requests_total{status=~'5..'}[5m])) > 0\n"
        "        for: 5m\n        labels: {severity: page}\n"
    )
    (chart / "files" / "dashboards" / "serving.json").write_text('{"title": "Serving"}\n')
    values = str(CHART / "ci" / "monitoring-values.yaml")
    args = ("template", RELEASE, chart, "-n", NAMESPACE, "-f", values)
    docs = [d for d in yaml.safe_load_all(run(BIN / "helm", *args, *MONITORING_API).stdout) if d]
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    assert rule["spec"]["groups"][0]["rules"][0]["alert"] == "ShipyardGatewayErrors"
    board = find(tuple(docs), "ConfigMap", f"{RELEASE}-dashboard-serving")
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(board["data"]["serving.json"]) == {"title": "Serving"}
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "monitoring.yaml").write_text(yaml.safe_dump_all(docs))
    assert "Invalid: 0, Errors: 0" in run(CHART_SH, "validate", tmp_path / "out").stdout
    # Without the Prometheus Operator the same values render none of it.
    bare = [d for d in yaml.safe_load_all(run(BIN / "helm", *args).stdout) if d]
    assert not {"ServiceMonitor", "PrometheusRule"} & {d["kind"] for d in bare}
    assert not [d for d in bare if "dashboard" in d["metadata"]["name"]]


# routing: the chart and the gateway read one shape


@pytest.mark.parametrize("name", PROFILES)
def test_routing_configmap_is_a_valid_routing_file(name: str) -> None:
    docs = profile(name)
    text = find(docs, "ConfigMap", f"{RELEASE}-routing")["data"]["routing.yaml"]
    table = parse(text, f"{name} routing ConfigMap")
    models = (
        values_of(name).get("models")
        or yaml.safe_load((CHART / "values.yaml").read_text())["models"]
    )
    assert table == parse(yaml.safe_dump({"models": models}))
    # The gateway reads that file from the mounted ConfigMap directory.
    env = gateway_env(docs)
    assert env["SHIPYARD_SERVING__ROUTING_FILE"] == "/etc/shipyard/routing/routing.yaml"


def test_schema_mirrors_the_routing_model() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    defs = schema["$defs"]
    assert set(defs["analysis"]["properties"]) == set(Analysis.model_fields)
    assert set(defs["route"]["properties"]["canary"]["properties"]) == {
        "version",
        "weight",
        "analysis",
    }
    model_pattern = ModelName.__metadata__[0].pattern
    assert schema["properties"]["models"]["propertyNames"]["pattern"] == model_pattern
    assert defs["version"]["pattern"] == Version.__metadata__[0].pattern


BOUNDARIES = [
    ("weight", 0),
    ("weight", 100),
    ("weight", 100.5),
    ("weight", -1),
    ("analysis", {"interval_s": 0}),
    ("analysis", {"interval_s": 0.5}),
    ("analysis", {"max_failures": -1}),
    ("analysis", {"max_error_ratio": 1}),
    ("analysis", {"max_error_ratio": 1.01}),
    ("analysis", {"max_p99_ratio": 0}),
    ("analysis", {"max_score_psi": 0}),
    ("analysis", {"min_requests": 0}),
    ("analysis", {"steps": [0, 50]}),
    ("analysis", {"steps": [10, 100]}),
    ("analysis", {"steps": [50, 20]}),
    ("analysis", {"steps": [10, 101]}),
    ("version", "0"),
    ("version", "12"),
    ("version", "1234567890"),
]


@pytest.mark.parametrize(("field", "value"), BOUNDARIES)
def test_chart_and_routing_agree_on_bounds(field: str, value: Any) -> None:
    """Values the chart accepts are exactly the ones shipyard.routing accepts."""
    canary: Doc = {"version": "2", "weight": 10, field: value}
    models = {"fraud-scoring": {"stable": {"version": "1"}, "canary": canary}}
    result = helm_template("--set-json", f"models={json.dumps(models)}")
    try:
        parse(yaml.safe_dump({"models": models}))
        accepted_by_routing = True
    except Exception:
        accepted_by_routing = False
    assert (result.returncode == 0) == accepted_by_routing, result.stderr


# invalid values: rejected, each with a one-line cause


W = "models.fraud-scoring.canary"
REJECTIONS = [  # (--set arguments, the line that must explain it)
    (
        f"{W}.version=2 {W}.weight=150",
        f"at '/{W.replace('.', '/')}/weight': maximum: got 150, want 100",
    ),
    ("models.new-model.canary.version=2", "at '/models/new-model': missing property 'stable'"),
    (
        "triton.gpu.enabled=true triton.gpu.resourceName=",
        "at '/triton/gpu/resourceName': minLength",
    ),
    ("triton.gpu.enabled=true triton.gpu.resourceName=null", "missing property 'resourceName'"),
    ("models.Fraud.stable.version=1", "invalid propertyName 'Fraud'"),
    ("gateway.replicaz=2", "at '/gateway': additional properties 'replicaz' not allowed"),
    ("featureStore.redis.password=hunter2", "additional properties 'password' not allowed"),
    ('gateway.settings.SHIPYARD_SERVING__API_KEYS=["k"]', "'SHIPYARD_SERVING__API_KEYS'"),
    ("mlflow.existingSecret=", "at '/mlflow/existingSecret': minLength: got 0, want 1"),
    ("modelRepository.source=gcs", "at '/modelRepository/gcs/bucket': minLength: got 0, want 1"),
    ("gateway.workers=0", "at '/gateway/workers': minimum: got 0, want 1"),
    ("gateway.resources.limits=null", "at '/gateway/resources': missing property 'limits'"),
    (f"{W}.version=1", "models.fraud-scoring: canary and stable are both version 1"),
    (f"{W}.version=2 {W}.analysis.steps={{50,20}}", "steps must increase (got 20 after 50)"),
]


@pytest.mark.parametrize(("sets", "cause"), REJECTIONS, ids=[c for _, c in REJECTIONS])
def test_invalid_values_are_rejected_with_a_clear_cause(sets: str, cause: str) -> None:
    args = [arg for each in sets.split(" ") for arg in ("--set", each)]
    result = helm_template(*args)
    assert result.returncode != 0, f"{sets} rendered"
    lines = [line for line in result.stderr.splitlines() if cause in line]
    assert lines, result.stderr
    assert len(lines[0]) < 200  # one readable line, not a dump


# a values change alters only what it must


def test_canary_weight_change_touches_only_the_routing_configmap() -> None:
    before = profile("canary")
    after = profile("canary", "--set", "models.fraud-scoring.canary.weight=50")
    changed = diff(before, after)
    assert changed == {("ConfigMap", f"{RELEASE}-routing"), ("Deployment", f"{RELEASE}-gateway")}
    old = find(before, "Deployment", f"{RELEASE}-gateway")
    new = find(after, "Deployment", f"{RELEASE}-gateway")
    # The gateway's only change is the informational checksum outside its pod template:
    # Kubernetes rolls nothing, the gateway reloads the file.
    assert old["spec"] == new["spec"]
    annotation = "shipyard.dev/routing-checksum"
    assert old["metadata"]["annotations"][annotation] != new["metadata"]["annotations"][annotation]
    old["metadata"]["annotations"].pop(annotation)
    new["metadata"]["annotations"].pop(annotation)
    assert old == new
    routing = parse(find(after, "ConfigMap", f"{RELEASE}-routing")["data"]["routing.yaml"])
    assert routing.models["fraud-scoring"].canary.weight == 50


@pytest.mark.parametrize("change", ["canary.version=5", "stable.version=2"])
def test_version_change_touches_only_routing_and_triton_policy(change: str) -> None:
    before = profile("canary")
    after = profile("canary", "--set", f"models.fraud-scoring.{change}")
    gateway = ("Deployment", f"{RELEASE}-gateway")
    assert diff(before, after) == {
        ("ConfigMap", f"{RELEASE}-routing"),
        ("ConfigMap", f"{RELEASE}-triton-versions"),
        gateway,
    }
    assert by_id(before)[gateway]["spec"] == by_id(after)[gateway]["spec"]
    policy = triton_policy(after)
    assert policy["fraud-scoring"] == ([3, 5] if change.startswith("canary") else [2, 4])
    assert policy["chargeback-risk"] == [12]


# scheduling: GPU pool on GPU nodes only, CPU pool never there; CPU-only works


def affinity_terms(pod: Doc) -> list[Doc]:
    required = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    return [e for term in required["nodeSelectorTerms"] for e in term["matchExpressions"]]


def test_gpu_pool_schedules_only_on_gpu_nodes() -> None:
    docs = profile("gke-gpu")
    pod = find(docs, "Deployment", f"{RELEASE}-triton-gpu")["spec"]["template"]["spec"]
    assert affinity_terms(pod) == [
        {"key": "cloud.google.com/gke-accelerator", "operator": "Exists"}
    ]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    triton = pod["containers"][0]
    assert triton["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert "--model-config-name=gpu" in triton["args"][0]


def test_cpu_pool_schedules_only_off_gpu_nodes() -> None:
    docs = profile("gke-gpu")
    pod = find(docs, "Deployment", f"{RELEASE}-triton-cpu")["spec"]["template"]["spec"]
    assert affinity_terms(pod) == [
        {"key": "cloud.google.com/gke-accelerator", "operator": "DoesNotExist"}
    ]
    assert "tolerations" not in pod  # the GPU taint keeps it off GPU nodes as well
    assert not [r for r in pod["containers"][0]["resources"]["limits"] if "gpu" in r]
    assert "--model-config-name=cpu" in pod["containers"][0]["args"][0]


def test_kind_profile_is_a_complete_cpu_only_install() -> None:
    docs = profile("kind")
    names = by_id(docs)
    assert ("Deployment", f"{RELEASE}-triton-gpu") not in names
    for _, pod in pod_specs(docs):
        for container in pod["containers"]:
            assert not [r for r in container["resources"]["limits"] if "gpu" in r]
    env = gateway_env(docs)
    assert env["SHIPYARD_SERVING__PRIMARY_URL"] == ""  # no GPU hop: the chain starts on CPU
    cpu_service = env["SHIPYARD_SERVING__CPU_URL"].removeprefix("http://").split(".")[0]
    assert env["SHIPYARD_SERVING__CPU_URL"] == f"http://{cpu_service}.{NAMESPACE}.svc:8000"
    assert ("Service", cpu_service) in names
    assert triton_policy(docs)


def test_production_profile_pins_every_image_by_digest() -> None:
    """checkov's digest check is skipped because this is where digests are enforced."""
    docs = profile("gke-gpu")
    for _, pod in pod_specs(docs):
        for container in pod["containers"]:
            assert "@sha256:" in container["image"], container["image"]


# security: Pod Security "restricted" and the rest, on every profile


SECRETISH = re.compile(r"(PASSWORD|_KEYS?$|SECRET|TOKEN|STORE_URI)")


@pytest.mark.parametrize("name", PROFILES)
def test_pods_are_restricted_bounded_and_probed(name: str) -> None:
    docs = profile(name)
    for doc, pod in pod_specs(docs):
        where = f"{doc['kind']} {doc['metadata']['name']}"
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] >= 10000, where
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod), where
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        assert not [v for v in volumes.values() if "hostPath" in v], where
        assert pod["automountServiceAccountToken"] is (
            doc["metadata"]["name"] == f"{RELEASE}-rollout-analysis"
        ), where
        long_running = doc["kind"] == "Deployment"
        for container in pod["containers"]:
            what = f"{where}/{container['name']}"
            security = container["securityContext"]
            assert security == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
            }, what
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), what
            if long_running:
                assert "livenessProbe" in container and "readinessProbe" in container, what
            # Writable paths are explicit: emptyDirs, or the feature data the CronJob writes.
            for mount in container.get("volumeMounts", []):
                volume = volumes[mount["name"]]
                if not mount.get("readOnly"):
                    writable_claim = doc["kind"] == "CronJob" and mount["name"] == "feature-data"
                    assert "emptyDir" in volume or writable_claim, f"{what} writes {mount}"
            assert not container["image"].endswith(":latest"), what
            for variable, value in env_of(container).items():
                if SECRETISH.search(variable):
                    assert isinstance(value, dict) and "secretKeyRef" in value, (
                        f"{what}: {variable} must come from a Secret"
                    )


@pytest.mark.parametrize("name", PROFILES)
def test_no_secrets_rbac_wildcards_or_exposed_services(name: str) -> None:
    docs = profile(name)
    assert not [d for d in docs if d["kind"] == "Secret"]  # secrets are referenced, never made
    for doc in docs:
        if doc["kind"] in ("Role", "ClusterRole"):
            for rule in doc["rules"]:
                assert "*" not in json.dumps(rule), doc["metadata"]["name"]
                assert set(rule["verbs"]) <= {"get", "patch"}
                assert rule["resourceNames"], "RBAC is by object name"
        assert doc["kind"] not in ("ClusterRole", "ClusterRoleBinding")
        if doc["kind"] == "Service":
            assert doc["spec"]["type"] == "ClusterIP", doc["metadata"]["name"]


def selects(selector: Doc, labels: Doc) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


@pytest.mark.parametrize("name", PROFILES)
def test_every_pod_is_default_denied_and_has_its_own_policy(name: str) -> None:
    docs = profile(name)
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    deny = find(docs, "NetworkPolicy", f"{RELEASE}-default-deny")
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    for doc, _ in pod_specs(docs):
        template = (
            doc
            if doc["kind"] == "Pod"
            else doc["spec"].get("template") or (doc["spec"]["jobTemplate"]["spec"]["template"])
        )
        labels = template["metadata"]["labels"]
        assert selects(deny["spec"]["podSelector"], labels)
        own = [p for p in policies if p is not deny and selects(p["spec"]["podSelector"], labels)]
        component = labels["app.kubernetes.io/component"]
        assert [p["metadata"]["name"] for p in own] in (
            [f"{RELEASE}-dns", f"{RELEASE}-{component}"],
            [f"{RELEASE}-{component}", f"{RELEASE}-dns"],
        ), f"{component}: {[p['metadata']['name'] for p in own]}"


def test_triton_is_reachable_only_from_the_gateway_and_the_analysis() -> None:
    docs = profile("monitoring")  # both pools, analysis and scraping on
    for pool in ("gpu", "cpu"):
        policy = find(docs, "NetworkPolicy", f"{RELEASE}-triton-{pool}")["spec"]
        for rule in policy["ingress"]:
            ports = {p["port"] for p in rule["ports"]}
            if ports & {8000, 8001}:
                assert ports == {8000, 8001}
                components = [
                    peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                    for peer in rule["from"]
                ]
                assert components == ["gateway", "rollout-analysis"]
                assert not [peer for peer in rule["from"] if "namespaceSelector" in peer]
            else:
                assert ports == {8002}  # Prometheus: the metrics port only


# the code the chart runs: Triton's flags and the version-sync sidecar, against a real Triton


MODEL_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [
            pb_utils.InferenceResponse([pb_utils.Tensor(
                "y", pb_utils.get_input_tensor_by_name(r, "x").as_numpy().astype(np.float32)
            )])
            for r in requests
        ]
"""
CONFIG = """name: "tiny"
backend: "python"
max_batch_size: 4
input [{ name: "x" data_type: TYPE_FP32 dims: [ 1 ] }]
output [{ name: "y" data_type: TYPE_FP32 dims: [ 1 ] }]
instance_group [{ kind: KIND_CPU count: 1 }]
"""


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def live(url: str) -> bool:
    try:
        return http("GET", url)[0] == 200
    except OSError:  # not listening yet
        return False


@pytest.fixture
def triton_pod(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The CPU pool's container command, run as rendered with local paths and free ports."""
    try:
        from shipyard.stack import triton as embedded

        install = embedded.TritonInstall.locate()
        env = {**os.environ, **embedded.server_env(install, load_settings().triton_stub_env)}
    except Exception as exc:  # the embedded Triton is part of `make install`
        pytest.skip(f"no embedded Triton server ({exc}): run `make install`")
    repository = tmp_path / "models"
    entry = repository / "tiny"
    (entry / "configs").mkdir(parents=True)
    (entry / "config.pbtxt").write_text(CONFIG)
    # The pool's own configuration, as the export step writes configs/cpu.pbtxt.
    pool_parameter = 'parameters { key: "pool" value: { string_value: "cpu" } }\n'
    (entry / "configs" / "cpu.pbtxt").write_text(CONFIG + pool_parameter)
    for version in ("1", "2"):
        (entry / version).mkdir()
        (entry / version / "model.py").write_text(MODEL_PY)
    control = tmp_path / "control"
    control.mkdir()
    backends = embedded.prepare_backend_dir(install, tmp_path / "backends")
    http_port, grpc_port, metrics_port = free_ports(3)
    pod = find(profile("kind"), "Deployment", f"{RELEASE}-triton-cpu")["spec"]["template"]["spec"]
    script = pod["containers"][0]["args"][0]
    script = (
        script.replace("/var/run/shipyard/control/key", str(control / "key"))
        .replace("exec tritonserver", f"exec {shlex.quote(str(install.server_binary))}")
        .replace("--model-repository=/models", f"--model-repository={repository}")
        .replace("--http-port=8000", f"--http-port={http_port}")
        .replace("--grpc-port=8001", f"--grpc-port={grpc_port}")
        .replace("--metrics-port=8002", f"--metrics-port={metrics_port}")
    )
    # Only what a laptop needs on top: loopback addresses, the Python backend, no pinned memory.
    script += (
        f" --backend-directory={backends} --http-address=127.0.0.1 --grpc-address=127.0.0.1"
        " --metrics-address=127.0.0.1 --pinned-memory-pool-byte-size=0"
        f" --cache-directory={tmp_path / 'cache'}"
    )
    assert pod["containers"][0]["command"] == ["/bin/sh", "-c"]
    log = (tmp_path / "triton.log").open("w")
    process = subprocess.Popen(["/bin/sh", "-c", script], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 60
        while not live(f"{url}/v2/health/ready"):
            assert process.poll() is None, (tmp_path / "triton.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "Triton never became ready"
            time.sleep(0.2)
        yield {
            "url": url,
            "grpc": f"127.0.0.1:{grpc_port}",
            "key": (control / "key").read_text(),
            "key_file": control / "key",
            "dir": tmp_path,
            "sidecar": pod["containers"][1],
        }
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_triton_model_control_and_shared_memory_need_the_pod_key(
    triton_pod: dict[str, Any],
) -> None:
    url, key = triton_pod["url"], triton_pod["key"]
    assert len(key) == 48  # 24 random bytes, hex
    restricted = [
        ("POST", "/v2/repository/index", {}),
        ("POST", "/v2/repository/models/tiny/unload", {}),
        ("GET", "/v2/systemsharedmemory/status", None),
        ("GET", "/v2/cudasharedmemory/status", None),
    ]
    for method, path, body in restricted:
        status, text = http(method, url + path, body)
        assert status == 403 or "restricted" in text.lower(), (path, status, text)
        status, text = http(method, url + path, body, {"shipyard-control": "wrong"})
        assert status != 200, (path, status, text)
    status, text = http("POST", url + "/v2/repository/index", {}, {"shipyard-control": key})
    assert status == 200 and "tiny" in text
    # Inference, health and metadata stay open (to the peers the NetworkPolicy admits).
    assert http("GET", url + "/v2/models/tiny/ready")[0] == 200
    # gRPC: same restriction, same key.
    from tritonclient.grpc import InferenceServerClient
    from tritonclient.utils import InferenceServerException

    client = InferenceServerClient(triton_pod["grpc"])
    try:
        with pytest.raises(InferenceServerException):
            client.get_model_repository_index()
        # Triton prefixes the gRPC form of the header.
        grpc_key = {"triton-grpc-protocol-shipyard-control": key}
        index = client.get_model_repository_index(headers=grpc_key)
        assert [m.name for m in index.models] == ["tiny"]
        assert client.is_model_ready("tiny")
    finally:
        client.close()


def test_version_sync_sidecar_applies_the_chart_policy(triton_pod: dict[str, Any]) -> None:
    url, tmp = triton_pod["url"], triton_pod["dir"]
    # Started with the repository's policy (newest only), as --load-model=* does.
    assert http("GET", f"{url}/v2/models/tiny/versions/2/ready")[0] == 200
    assert http("GET", f"{url}/v2/models/tiny/versions/1/ready")[0] != 200
    sidecar = triton_pod["sidecar"]
    env = env_of(sidecar)
    versions = tmp / "versions.json"
    ready = tmp / "ready"
    env.update(
        TRITON_URL=url,
        VERSIONS_FILE=str(versions),
        CONTROL_KEY_FILE=str(triton_pod["key_file"]),
        READY_FILE=str(ready),
    )
    script = CHART / "files" / "scripts" / "triton_versions.py"
    assert sidecar["command"] == ["python", f"/etc/shipyard/scripts/{script.name}"]

    def sync(policy: dict[str, list[int]]) -> subprocess.CompletedProcess:
        versions.write_text(json.dumps(policy))
        return run(sys.executable, script, "--once", env={**os.environ, **env}, check=False)

    # What the chart renders for stable 1 + canary 2:
    models = {"tiny": {"stable": {"version": "1"}, "canary": {"version": "2"}}}
    policy = triton_policy(
        render("--set", "models.fraud-scoring=null", "--set-json", f"models={json.dumps(models)}")
    )
    assert policy == {"tiny": [1, 2]}
    result = sync(policy)
    assert result.returncode == 0, result.stderr
    assert ready.read_text() == "synced\n"
    for version in (1, 2):
        assert http("GET", f"{url}/v2/models/tiny/versions/{version}/ready")[0] == 200
    config = json.loads(http("GET", f"{url}/v2/models/tiny/config")[1])
    assert config["parameters"]["pool"]["string_value"] == "cpu"  # still configs/cpu.pbtxt
    # Promotion: stable 2 alone; version 1 is unloaded in place.
    assert sync({"tiny": [2]}).returncode == 0
    assert http("GET", f"{url}/v2/models/tiny/versions/1/ready")[0] != 200
    assert http("GET", f"{url}/v2/models/tiny/versions/2/ready")[0] == 200
    # A version that does not exist fails the pass and leaves version 2 serving.
    failed = sync({"tiny": [2, 9]})
    assert failed.returncode == 1 and "tiny" in failed.stderr
    assert http("GET", f"{url}/v2/models/tiny/versions/2/ready")[0] == 200
    # A second pass with nothing to change changes nothing.
    assert sync({"tiny": [2]}).returncode == 0


# `helm test`: the prediction it sends is one the gateway accepts


def test_helm_test_pod_sends_a_real_prediction() -> None:
    docs = profile("canary", "--set", "gateway.existingSecret=gateway-keys")
    pod = find(docs, "Pod", f"{RELEASE}-test-predict")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    container = pod["spec"]["containers"][0]
    env = env_of(container)
    instance = json.loads(env["INSTANCE"])
    Instance.model_validate(instance)
    assert env["MODELS"].split() == ["chargeback-risk", "fraud-scoring"]
    seen: list[tuple[str, Doc, str | None]] = []

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            PredictRequest.model_validate(body)  # what the real route validates
            seen.append((self.path, body, self.headers.get("X-API-Key")))
            answer = {
                "request_id": "r1",
                "model": self.path.split("/")[3],
                "latency_ms": 1.5,
                "predictions": [
                    {"prediction_id": "r1-0", "score": 0.12, "version": "3", "route": "stable",
                     "backend": "triton-cpu"}
                ],
            }  # fmt: skip
            payload = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env.update(GATEWAY_URL=f"http://127.0.0.1:{server.server_port}", API_KEYS='["k" ]')
        script = container["args"][0]
        result = run(sys.executable, "-c", script, env={**os.environ, **env}, check=False)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stdout + result.stderr
    assert [path for path, _, _ in seen] == [
        "/v1/models/chargeback-risk/predict",
        "/v1/models/fraud-scoring/predict",
    ]
    assert all(key == "k" for _, _, key in seen)
    assert "ok fraud-scoring: score 0.1200 from v3 (stable) on triton-cpu" in result.stdout
