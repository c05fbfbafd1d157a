"""The infrastructure-as-code test tier: terraform/ checked offline with the real tools.

Each part of `scripts/infra.sh test` is its own test, so a failure names the part and shows the
tool's output: tofu fmt, tofu init + validate of every module and environment (providers from
the tools cache's filesystem mirror), `tofu test` with mocked providers (the plan's GPU pools,
private cluster, workload identity, bucket versioning, SQL backups, rejected variables), the
chart values the platform module derives rendered by helm and checked by kubeconform, tflint and
checkov. Also the script's own errors: one line, non-zero exit.

The tools come from `make chart-tools` (scripts/chart.sh tools, which runs scripts/tools.sh);
nothing is downloaded here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from shipyard.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
INFRA_SH = ROOT / "scripts" / "infra.sh"
TOOLS = load_settings().tools_dir
BIN = TOOLS / "bin"
MIRROR = TOOLS / "tofu-mirror" / "registry.opentofu.org" / "hashicorp"

TOFU = {"tofu": BIN / "tofu", "tofurc": TOOLS / "tofurc"}
PROVIDER = {p: {f"provider {p}": MIRROR / p} for p in ("kubernetes", "helm", "google")}
K8S = PROVIDER["kubernetes"] | PROVIDER["helm"]
# The folders of terraform/ and the providers each needs: validate and `tofu test` run per
# folder, so a missing google provider (the slow build) leaves the others running.
FOLDERS: dict[str, dict[str, Path]] = {
    "modules/kind": {},
    "modules/platform/values": {},
    "modules/platform": K8S,
    "modules/gke": PROVIDER["google"],
    "envs/kind": K8S,
    "envs/gke": K8S | PROVIDER["google"],
}
TESTED = [f for f in FOLDERS if (ROOT / "terraform" / f / "tests").is_dir()]
PARTS: dict[str, dict[str, Path]] = {
    "fmt": TOFU,
    **{f"validate:{f}": TOFU | FOLDERS[f] for f in FOLDERS},
    **{f"unit:{f}": TOFU | FOLDERS[f] for f in TESTED},
    "values": TOFU
    | {
        "helm": BIN / "helm",
        "kubeconform": BIN / "kubeconform",
        "Kubernetes schemas": TOOLS / "schemas" / "kubernetes" / "LOCATION",
    },
    "tflint": {"tflint": BIN / "tflint"},
    "checkov": {"checkov": TOOLS / "venvs" / "checkov" / "bin" / "checkov"},
}


def infra(*args: str, env: dict[str, str] | None = None, timeout: int = 600):
    return subprocess.run(
        ["bash", str(INFRA_SH), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def test_every_folder_is_covered() -> None:
    folders = {
        str(p.parent.relative_to(ROOT / "terraform"))
        for p in (ROOT / "terraform").rglob("versions.tf")
        if ".terraform" not in p.parts
    }
    assert folders == set(FOLDERS)
    assert set(TESTED) == {"modules/kind", "modules/platform", "modules/gke"}


@pytest.mark.parametrize("part", list(PARTS))
def test_part(part: str) -> None:
    missing = [name for name, path in PARTS[part].items() if not path.exists()]
    if missing:
        pytest.skip(
            f"{part}: {', '.join(missing)} missing from {TOOLS}: build them once with "
            "`make chart-tools` (scripts/tools.sh; the google provider takes 30+ min cold)"
        )
    result = infra("test", part)
    assert result.returncode == 0, (
        f"scripts/infra.sh test {part} failed (exit {result.returncode}):\n"
        f"{result.stdout}\n{result.stderr}"
    )


def test_help_lists_every_command() -> None:
    result = infra("--help")
    assert result.returncode == 0
    for word in ("test", "up kind|gke", "down kind|gke", "PROJECT", "REGION"):
        assert word in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("up", "minikube"), {}, "unknown cluster 'minikube': use kind or gke"),
        (("up",), {}, "which cluster?"),
        (("frobnicate",), {}, "unknown command 'frobnicate'"),
        (("test", "lint"), {}, "unknown test part 'lint'"),
        (("up", "gke"), {"PROJECT": "", "REGION": "us-central1"}, "set PROJECT="),
        (("up", "gke"), {"PROJECT": "my-project", "REGION": ""}, "set REGION="),
        (
            ("up", "gke"),
            {"PROJECT": "my-project", "REGION": "us-central1", "AUTHORIZED_CIDR": ""},
            "set AUTHORIZED_CIDR=",
        ),
        (
            ("up", "gke"),
            {"PROJECT": "my-project", "REGION": "us-central1", "AUTHORIZED_CIDR": "0.0.0.0"},
            "AUTHORIZED_CIDR must look like",
        ),
    ],
)
def test_errors_are_one_line_and_fail(args: tuple[str, ...], env: dict[str, str], message: str):
    if "PROJECT" in env and (ROOT / "terraform" / "envs" / "gke" / "terraform.tfvars").exists():
        pytest.skip("a local terraform/envs/gke/terraform.tfvars may set the variables")
    result = infra(*args, env=env, timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def test_missing_tool_is_named(tmp_path: Path) -> None:
    result = infra("test", "fmt", env={"SHIPYARD_TOOLS_DIR": str(tmp_path)}, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        f"error: tofu is missing from {tmp_path}/bin: run make chart-tools "
        "(scripts/tools.sh builds it)"
    )


def test_missing_cluster_tool_is_named(tmp_path: Path) -> None:
    system_path = "/usr/bin:/bin"
    if shutil.which("kind", path=system_path):
        pytest.skip("kind is installed in /usr/bin or /bin here")
    kubectl = tmp_path / "kubectl"
    kubectl.write_text("#!/bin/sh\nexit 0\n")
    kubectl.chmod(0o755)
    result = infra("up", "kind", env={"PATH": f"{tmp_path}:{system_path}", "TOFU": ""}, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "error: kind is not on PATH: make up CLUSTER=kind needs kind (https://kind.sigs.k8s.io)"
    )
