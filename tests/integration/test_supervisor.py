"""The supervisor's policy, exercised with real (tiny) processes and a stepped loop."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.stack import supervisor as supervisor_module
from shipyard.stack.components import ComponentSpec
from shipyard.stack.layout import StateLayout
from shipyard.stack.probes import HttpProbe
from shipyard.stack.state import StackState, group_members
from shipyard.stack.supervisor import Supervisor
from tests.conftest import free_ports


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor_module, "BACKOFF_BASE_S", 0.01)
    monkeypatch.setattr(supervisor_module, "PROBE_INTERVAL_S", 0.05)
    monkeypatch.setattr(supervisor_module, "LIVENESS_PROBE_INTERVAL_S", 0.05)


def make_supervisor(tmp_path: Path, *specs: ComponentSpec, timeout_s: float = 10) -> Supervisor:
    layout = StateLayout(tmp_path)
    layout.ensure()
    return Supervisor(list(specs), layout, {}, startup_timeout_s=timeout_s)


def step_until(sup: Supervisor, done: Callable[[], bool], within_s: float = 15) -> None:
    deadline = time.monotonic() + within_s
    while not done():
        assert time.monotonic() < deadline, {
            c.name: c.status for c in sup.state.components.values()
        }
        sup.step()
        time.sleep(0.02)


def http_server(port: int) -> ComponentSpec:
    return ComponentSpec(
        name="web",
        argv=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        probe=HttpProbe(port, "/"),
        ports={"http": port},
    )


def test_a_killed_component_is_restarted_and_counted(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    sup = make_supervisor(tmp_path, http_server(port))
    web = sup.state.components["web"]
    try:
        step_until(sup, lambda: web.status == "ready")
        first_pid = web.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        step_until(sup, lambda: web.status == "ready" and web.pid != first_pid)
        assert web.restarts == 1
        assert web.last_exit_code == -signal.SIGKILL
        # What the CLI reads is what the supervisor knows.
        published = StackState.read(StateLayout(tmp_path).stack_state)
        assert published is not None and published.components["web"].restarts == 1
    finally:
        sup.stop_all()
    assert web.status == "stopped"


def test_a_crash_loop_gives_up_instead_of_spinning(tmp_path: Path) -> None:
    crashing = ComponentSpec(
        name="crasher",
        argv=[sys.executable, "-c", "import sys; print('bad config: no such table'); sys.exit(3)"],
        probe=lambda: False,
        ports={},
    )
    sup = make_supervisor(tmp_path, crashing)
    state = sup.state.components["crasher"]
    step_until(sup, lambda: state.status == "failed")
    assert state.restarts == supervisor_module.MAX_FAILED_STARTS - 1
    assert "exited with code 3" in state.message
    assert "bad config" in Path(state.log).read_text()
    sup.stop_all()


def test_a_component_never_ready_is_restarted_after_the_startup_timeout(tmp_path: Path) -> None:
    silent = ComponentSpec(
        name="silent", argv=["sleep", "60"], probe=lambda: False, ports={}, stop_grace_s=1
    )
    sup = make_supervisor(tmp_path, silent, timeout_s=0.3)
    state = sup.state.components["silent"]
    try:
        step_until(sup, lambda: state.restarts >= 1)
        assert "not ready after" in state.message
    finally:
        sup.stop_all()


def test_stop_takes_the_whole_process_group(tmp_path: Path) -> None:
    # A component that starts children of its own, one of which ignores SIGTERM.
    family = ComponentSpec(
        name="family",
        argv=["sh", "-c", "sleep 60 & (trap '' TERM; sleep 60) & wait"],
        probe=lambda: True,
        ports={},
        stop_grace_s=1,
    )
    sup = make_supervisor(tmp_path, family)
    state = sup.state.components["family"]
    step_until(sup, lambda: state.status == "ready")
    pgid = state.pid
    step_until(sup, lambda: len(group_members(pgid)) == 3)
    sup.stop_all()
    assert group_members(pgid) == []
    assert state.status == "stopped"
