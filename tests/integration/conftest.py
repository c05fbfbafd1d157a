"""A real embedded stack (MLflow, Triton, gateway, Prometheus) on free loopback ports.

Started once per session in a temporary state dir and always stopped; the teardown also
checks that nothing it started is left running.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.settings import Settings
from shipyard.stack import control
from shipyard.stack.state import StackState, stack_processes
from tests.conftest import isolated_settings


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, StackState]]:
    settings = isolated_settings(tmp_path_factory.mktemp("stack") / "state")
    result = control.up(settings)
    try:
        yield settings, result.state
    finally:
        control.down(settings)
    assert stack_processes(settings.state_dir) == []


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
