"""A real embedded stack (MLflow, Triton, gateway, Prometheus) on free loopback ports.

Started once per session in a temporary state dir and always stopped; the teardown also
checks that nothing it started is left running.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from shipyard.settings import Settings
from shipyard.stack import control
from shipyard.stack.state import StackState, stack_processes
from tests.conftest import free_ports, isolated_settings


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, StackState]]:
    settings = isolated_settings(tmp_path_factory.mktemp("stack") / "state")
    result = control.up(settings)
    try:
        yield settings, result.state
    finally:
        control.down(settings)
    assert stack_processes(settings.state_dir) == []


@contextmanager
def redis_server(folder: Path) -> Iterator[int]:
    """A real redis-server on a free loopback port, without persistence; yields the port."""
    program = shutil.which("redis-server")
    if program is None:
        pytest.fail("redis-server is not installed: run `make install`")
    (port,) = free_ports(1)
    arguments = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = subprocess.Popen(
        [program, *arguments, "--dir", str(folder)], stdout=subprocess.DEVNULL
    )
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        wait_for(lambda: _pings(client, redis.ConnectionError), 10, "redis-server start")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def _pings(client: Any, refused: type[Exception]) -> bool:
    try:
        return bool(client.ping())
    except refused:
        return False


def get_json(url: str, timeout_s: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.load(response)


def wait_for(condition: Any, within_s: float, what: str) -> Any:
    """Poll ``condition()`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + within_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {within_s}s")
        time.sleep(0.25)


def prometheus_target_health(settings: Settings) -> dict[str, str]:
    data = get_json(settings.url("prometheus", "/api/v1/targets"))
    return {t["labels"]["job"]: t["health"] for t in data["data"]["activeTargets"]}


def stack_log_dir(settings: Settings) -> Path:
    return settings.state_dir / "logs"
