"""The foundation's acceptance flow, driven through the installed `shipyard` command.

up → status healthy and every Prometheus target up → up again changes nothing → kill Triton →
restarted, restart count shown → down → no process left (checked with ps).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from shipyard.stack.state import stack_processes
from shipyard.stack.supervisor import inherited_env
from tests.conftest import isolated_settings
from tests.integration.conftest import prometheus_target_health, wait_for

SHIPYARD = str(Path(sys.executable).parent / "shipyard")


def shipyard(
    env: dict[str, str], *args: str, timeout_s: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SHIPYARD, *args], env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )


def status_json(env: dict[str, str]) -> dict:
    result = shipyard(env, "status", "--json")
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def ps_pids() -> set[int]:
    out = subprocess.run(["ps", "-eo", "pid="], capture_output=True, text=True, check=True).stdout
    return {int(pid) for pid in out.split()}


@pytest.mark.slow
def test_up_status_restart_idempotence_and_down(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path / "state", profile="redis")
    env = {**inherited_env(), **settings.to_env()}
    try:
        started = shipyard(env, "up")
        assert started.returncode == 0, started.stderr
        assert "Started in" in started.stdout
        for name in ("redis", "redis-exporter", "mlflow", "triton", "gateway", "rollout"):
            assert name in started.stdout

        state = status_json(env)
        assert {n: c["status"] for n, c in state["components"].items()} == dict.fromkeys(
            [
                "redis",
                "redis-exporter",
                "mlflow",
                "triton",
                "triton-cpu",
                "gateway",
                "rollout",
                "prometheus",
            ],
            "ready",
        )
        assert shipyard(env, "status").returncode == 0
        wait_for(
            lambda: (
                (h := prometheus_target_health(settings))
                and set(h.values()) == {"up"}
                and len(h) == 7  # prometheus, redis, mlflow, two Tritons, gateway, rollout
            ),
            within_s=30,
            what="every Prometheus target up",
        )

        # A second `up` reports the state and changes nothing.
        t0 = time.monotonic()
        again = shipyard(env, "up")
        assert again.returncode == 0
        assert "Already running; nothing changed." in again.stdout
        assert time.monotonic() - t0 < 10
        assert (
            status_json(env)["components"]["mlflow"]["pid"] == state["components"]["mlflow"]["pid"]
        )

        # Kill Triton: the supervisor restarts it and `status` shows the count. An `up` in the
        # middle of the restart waits for it instead of reporting a degraded stack as fine.
        os.kill(state["components"]["triton"]["pid"], signal.SIGKILL)
        wait_for(
            lambda: (
                status_json(env)["components"]["triton"]["pid"]
                != state["components"]["triton"]["pid"]
            ),
            within_s=10,
            what="triton seen down",
        )
        during = shipyard(env, "up")
        assert during.returncode == 0, during.stderr
        triton = status_json(env)["components"]["triton"]
        assert triton["status"] == "ready"
        assert triton["restarts"] == 1
        table = shipyard(env, "status").stdout
        assert any(
            line.split("│")[1].strip() == "triton" and " 1 " in line
            for line in table.splitlines()
            if line.count("│") > 3
        )

        logs = shipyard(env, "logs", "triton", "-n", "5")
        assert logs.returncode == 0 and logs.stdout.strip()
    finally:
        recorded = (
            {c["pid"] for c in status_json(env)["components"].values() if c["pid"]}
            if shipyard(env, "status").returncode != 3
            else set()
        )
        stopped = shipyard(env, "down")
    assert stopped.returncode == 0, stopped.stderr
    assert "Stopped" in stopped.stdout
    assert recorded and not recorded & ps_pids()
    # Every process of the stack carries its marker; none may remain.
    marker = f"SHIPYARD_STACK={settings.state_dir}"
    out = subprocess.run(["ps", "eww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert marker not in out
    assert shipyard(env, "status").returncode == 3


@pytest.mark.slow
def test_two_concurrent_ups_start_one_stack(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path / "state")
    env = {**inherited_env(), **settings.to_env()}
    try:
        racers = [
            subprocess.Popen(
                [SHIPYARD, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        results = [racer.communicate(timeout=300) for racer in racers]
        assert [racer.returncode for racer in racers] == [0, 0], results
        outputs = sorted(out for out, _ in results)
        assert "Already running; nothing changed." in outputs[0]
        assert "Started in" in outputs[1]
        supervisors = [
            pid
            for pid in stack_processes(settings.state_dir)
            if "shipyard.stack.supervisor" in " ".join(psutil.Process(pid).cmdline())
        ]
        assert len(supervisors) == 1
    finally:
        assert shipyard(env, "down").returncode == 0
    assert stack_processes(settings.state_dir) == []
