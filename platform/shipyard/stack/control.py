"""Start, stop and inspect the embedded stack: what ``shipyard up | down | status`` do.

No terminal output here: callers pass a progress callback and render the returned state.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from shipyard.errors import ComponentError, PortInUseError, ShipyardError, StackNotRunningError
from shipyard.settings import Settings, env_name
from shipyard.stack.components import ComponentSpec, build_components
from shipyard.stack.layout import StateLayout
from shipyard.stack.probes import port_is_free
from shipyard.stack.state import STACK_MARKER_ENV, StackState, pid_alive, stack_processes

SUPERVISOR_STOP_TIMEOUT_S = 90.0

Progress = Callable[[StackState | None], None]


@dataclass(frozen=True)
class UpResult:
    state: StackState
    already_running: bool


def running_state(layout: StateLayout) -> StackState | None:
    """The state of a live stack in this state dir, or None.

    A supervisor that has just started may not have written its state yet: wait briefly for it
    rather than mistaking it for a dead stack.
    """
    deadline = time.monotonic() + 5
    while True:
        state = StackState.read(layout.stack_state)
        if state is not None and pid_alive(state.supervisor_pid):
            return state
        if not pid_alive(_supervisor_pid(layout)) or time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def _supervisor_pid(layout: StateLayout) -> int | None:
    try:
        return int(layout.supervisor_pid.read_text())
    except (OSError, ValueError):
        return None


def up(settings: Settings, progress: Progress | None = None) -> UpResult:
    """Start the stack and wait until every component is ready.

    Idempotent: when the stack already runs with the same settings nothing changes. On any
    failure everything started is stopped again and a one-line error names the component.
    """
    layout = StateLayout(settings.state_dir)
    current = running_state(layout)
    if current is not None:
        if current.settings_env != settings.to_env():
            changed = sorted(
                key
                for key in settings.to_env().keys() | current.settings_env.keys()
                if settings.to_env().get(key) != current.settings_env.get(key)
            )
            raise ShipyardError(
                f"the stack in {settings.state_dir} runs with other settings "
                f"({', '.join(changed)}): run `shipyard down` first"
            )
        return UpResult(current, already_running=True)

    specs = build_components(settings)  # raises MissingDependencyError with an install hint
    _check_ports(settings, specs)
    layout.ensure()
    # A stack that died without cleaning up must not leave processes behind a fresh start.
    _sweep(layout)
    layout.stack_state.unlink(missing_ok=True)
    supervisor = _spawn_supervisor(settings, layout)
    try:
        return UpResult(_wait_ready(settings, layout, supervisor, progress), already_running=False)
    except BaseException:
        down(settings)
        raise


def down(settings: Settings) -> list[str]:
    """Stop the stack and everything it started; returns the names of stopped components."""
    layout = StateLayout(settings.state_dir)
    state = StackState.read(layout.stack_state)
    supervisor_pid = state.supervisor_pid if state is not None else _supervisor_pid(layout)
    if pid_alive(supervisor_pid):
        os.kill(supervisor_pid, signal.SIGTERM)
        deadline = time.monotonic() + SUPERVISOR_STOP_TIMEOUT_S
        while pid_alive(supervisor_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    _sweep(layout)
    layout.supervisor_pid.unlink(missing_ok=True)
    if state is None:
        return []
    layout.stack_state.unlink(missing_ok=True)
    return list(state.components)


def status(settings: Settings) -> StackState:
    """The running stack's state; raises StackNotRunningError when nothing runs."""
    layout = StateLayout(settings.state_dir)
    state = running_state(layout)
    if state is None:
        leftovers = stack_processes(layout.root)
        if leftovers:
            raise StackNotRunningError(
                f"Shipyard's supervisor is gone but {len(leftovers)} of its processes remain "
                f"(pids {', '.join(map(str, leftovers[:5]))}): run `shipyard down`"
            )
        raise StackNotRunningError(
            f"Shipyard is not running (state dir {settings.state_dir}): start it with `shipyard up`"
        )
    return state


def is_healthy(state: StackState) -> bool:
    return all(component.status == "ready" for component in state.components.values())


def last_log_line(path: str, limit: int = 200) -> str:
    """The last meaningful line of a log file, shortened for a one-line error."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 16384))
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        line = line.strip()
        if line and not line.startswith("=== shipyard:"):
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def _check_ports(settings: Settings, specs: list[ComponentSpec]) -> None:
    setting_of_port = {port: name for name, port in settings.ports.model_dump().items()}
    for spec in specs:
        for label, port in spec.ports.items():
            if not port_is_free(port):
                variable = env_name(("ports", setting_of_port.get(port, label)))
                raise PortInUseError(
                    f"port {port} for {spec.name} ({label}) is already in use: stop what holds it "
                    f"or choose another port with {variable}"
                )


def _spawn_supervisor(settings: Settings, layout: StateLayout) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings.to_env(), STACK_MARKER_ENV: str(settings.state_dir)}
    with open(layout.log_file("supervisor"), "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "shipyard.stack.supervisor"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )


def _wait_ready(
    settings: Settings,
    layout: StateLayout,
    supervisor: subprocess.Popen[bytes],
    progress: Progress | None,
) -> StackState:
    # The supervisor enforces the per-component timeout; this margin covers its own start.
    deadline = time.monotonic() + settings.startup_timeout_s + 30
    supervisor_log = layout.log_file("supervisor")
    while time.monotonic() < deadline:
        code = supervisor.poll()
        if code is not None:
            raise ComponentError(
                f"the supervisor exited with code {code}: {last_log_line(str(supervisor_log))} "
                f"(log: {supervisor_log})"
            )
        state = StackState.read(layout.stack_state)
        if progress is not None:
            progress(state)
        if state is not None:
            for component in state.components.values():
                # The first failure during start-up aborts: a clear error now beats retries.
                if component.status in ("backoff", "failed"):
                    detail = last_log_line(component.log)
                    detail = f" — last log line: {detail}" if detail else ""
                    raise ComponentError(
                        f"{component.name} failed to start ({component.message}){detail} "
                        f"(log: {component.log})"
                    )
            if is_healthy(state):
                return state
        time.sleep(0.2)
    state = StackState.read(layout.stack_state)
    waiting = [c for c in (state.components.values() if state else []) if c.status != "ready"]
    names = ", ".join(c.name for c in waiting) or "the supervisor"
    logs = ", ".join(c.log for c in waiting) or str(supervisor_log)
    raise ComponentError(f"{names} not ready after {settings.startup_timeout_s:.0f}s (log: {logs})")


def _sweep(layout: StateLayout) -> list[int]:
    """SIGKILL any process still carrying this stack's marker; returns their pids."""
    leftovers = stack_processes(layout.root)
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while stack_processes(layout.root) and time.monotonic() < deadline:
        time.sleep(0.05)
    return leftovers
