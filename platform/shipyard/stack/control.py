"""Start, stop and inspect the embedded stack: what ``shipyard up | down | status`` do.

Two locks keep this honest:
* the supervisor holds ``run/supervisor.lock`` for its lifetime: "is the stack running?" is
  "is that lock held?", never "is a recorded pid alive?" (pids are reused after a crash);
* ``up`` and ``down`` hold ``run/control.lock`` while they work, so two of them at once queue
  instead of undoing each other.

No terminal output here: callers pass a progress callback and render the returned state.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from shipyard.errors import ComponentError, PortInUseError, ShipyardError, StackNotRunningError
from shipyard.settings import Settings, env_name
from shipyard.stack.components import ComponentSpec, build_components
from shipyard.stack.layout import StateLayout
from shipyard.stack.probes import port_is_free
from shipyard.stack.state import (
    STACK_MARKER_ENV,
    StackState,
    lock_held,
    pid_alive,
    stack_processes,
)
from shipyard.stack.supervisor import inherited_env

# The supervisor stops components one by one, each within twice its grace period.
SUPERVISOR_STOP_TIMEOUT_S = 150.0

Progress = Callable[[StackState | None], None]


@dataclass(frozen=True)
class UpResult:
    state: StackState
    already_running: bool


def running_state(layout: StateLayout) -> StackState | None:
    """The state of a live stack in this state dir, or None when no supervisor runs."""
    if not lock_held(layout.supervisor_lock):
        return None
    # A supervisor that has just taken its lock may not have published its state yet.
    deadline = time.monotonic() + 5
    while (state := StackState.read(layout.stack_state)) is None:
        if time.monotonic() > deadline or not lock_held(layout.supervisor_lock):
            return None
        time.sleep(0.1)
    return state


def up(settings: Settings, progress: Progress | None = None) -> UpResult:
    """Start the stack and wait until every component is ready.

    Idempotent: when the stack already runs with the same settings nothing changes (a
    component in the middle of a restart is waited for). On any failure everything this call
    started is stopped again and a one-line error names the component.
    """
    layout = StateLayout(settings.state_dir)
    layout.ensure()
    with _control_lock(layout):
        current = running_state(layout)
        if current is not None:
            _require_same_settings(settings, current)
            if not is_healthy(current):
                current = _wait_ready(settings, layout, None, progress, first_failure_aborts=False)
            return UpResult(current, already_running=True)

        # A stack that died without cleaning up may still hold ports: clear it first.
        _sweep(layout)
        specs = build_components(settings)  # raises MissingDependencyError with an install hint
        _check_ports(settings, specs)
        layout.stack_state.unlink(missing_ok=True)
        supervisor = _spawn_supervisor(settings, layout)
        try:
            state = _wait_ready(settings, layout, supervisor, progress, first_failure_aborts=True)
        except BaseException:
            with _sigint_ignored():
                _stop_supervisor(layout, supervisor.pid)
                supervisor.wait()
            raise
        return UpResult(state, already_running=False)


def down(settings: Settings) -> list[str]:
    """Stop the stack and everything it started; returns the names of stopped components."""
    layout = StateLayout(settings.state_dir)
    if not layout.run.is_dir():
        return []
    with _control_lock(layout):
        state = StackState.read(layout.stack_state)
        pid = _supervisor_pid(layout) if lock_held(layout.supervisor_lock) else None
        leftovers = _stop_supervisor(layout, pid)
        layout.stack_state.unlink(missing_ok=True)
    if state is None:
        return ["leftover processes"] if leftovers else []
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
    return not state.stopping and all(c.status == "ready" for c in state.components.values())


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


@contextlib.contextmanager
def _control_lock(layout: StateLayout) -> Iterator[None]:
    with open(layout.run / "control.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # another up/down finishes first
        yield


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    # A second Ctrl-C must not interrupt the clean-up of a failed start half-way.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _require_same_settings(settings: Settings, current: StackState) -> None:
    wanted = settings.to_env()
    changed = sorted(
        key
        for key in wanted.keys() | current.settings_env.keys()
        if wanted.get(key) != current.settings_env.get(key)
    )
    if changed:
        raise ShipyardError(
            f"the stack in {settings.state_dir} runs with other settings "
            f"({', '.join(changed)}): run `shipyard down` first"
        )


def _supervisor_pid(layout: StateLayout) -> int | None:
    try:
        return int(layout.supervisor_pid.read_text())
    except (OSError, ValueError):
        return None


def _stop_supervisor(layout: StateLayout, pid: int | None) -> list[int]:
    """SIGTERM the supervisor (it stops its components), then sweep whatever is left."""
    if pid is not None and pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + SUPERVISOR_STOP_TIMEOUT_S
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    leftovers = _sweep(layout)
    layout.supervisor_pid.unlink(missing_ok=True)
    return leftovers


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
    env = {**inherited_env(), **settings.to_env(), STACK_MARKER_ENV: str(settings.state_dir)}
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
    supervisor: subprocess.Popen[bytes] | None,
    progress: Progress | None,
    first_failure_aborts: bool,
) -> StackState:
    """Wait until every component is ready.

    On a fresh start the first failure aborts (a clear error now beats retries); on a running
    stack a component in backoff is waited for and only ``failed`` is final.
    """
    # The supervisor enforces the per-component timeout; this margin covers its own start.
    deadline = time.monotonic() + settings.startup_timeout_s + 30
    supervisor_log = layout.log_file("supervisor")
    fatal = ("backoff", "failed") if first_failure_aborts else ("failed",)
    while time.monotonic() < deadline:
        if supervisor is not None and (code := supervisor.poll()) is not None:
            raise ComponentError(
                f"the supervisor exited with code {code}: {last_log_line(str(supervisor_log))} "
                f"(log: {supervisor_log})"
            )
        state = StackState.read(layout.stack_state)
        if progress is not None:
            progress(state)
        if state is not None:
            for component in state.components.values():
                if component.status in fatal:
                    detail = last_log_line(component.log)
                    detail = f" — last log line: {detail}" if detail else ""
                    verb = "failed to start" if first_failure_aborts else "is failed"
                    raise ComponentError(
                        f"{component.name} {verb} ({component.message}){detail} "
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
    """SIGKILL every process still carrying this stack's marker; returns their pids.

    Repeats until none is left: a dying parent may fork once more between two looks.
    """
    killed: list[int] = []
    deadline = time.monotonic() + 10
    while (found := stack_processes(layout.root)) and time.monotonic() < deadline:
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed += [pid for pid in found if pid not in killed]
        time.sleep(0.05)
    return killed
