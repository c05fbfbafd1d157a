"""The supervisor daemon: starts the stack's components, keeps them running, stops them cleanly.

``shipyard up`` runs it detached (``python -m shipyard.stack.supervisor``) with the resolved
settings in its environment. One supervisor per state directory, enforced with ``flock``.

Policy, per component:
* each runs in its own process group (so its children are stopped with it) and is sent SIGTERM
  if the supervisor itself dies;
* ready when its probe passes; not ready within ``startup_timeout_s`` counts as a failed start;
* an unexpected exit is restarted after an exponential backoff (1 s, 2 s, 4 s … 30 s); a run
  that stays ready for ``STABLE_AFTER_S`` resets the backoff; ``MAX_FAILED_STARTS`` failed
  starts in a row mark it ``failed`` and it is left down, so a broken config does not spin;
* unready for ``LIVENESS_RESTART_S`` after having been ready (hung) → restarted;
* on SIGTERM: SIGTERM to every group in reverse start order, SIGKILL after its grace period.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from shipyard.settings import load_settings
from shipyard.stack.components import ComponentSpec, build_components
from shipyard.stack.layout import StateLayout
from shipyard.stack.state import ComponentState, StackState, group_members

BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 30.0
MAX_FAILED_STARTS = 5
STABLE_AFTER_S = 30.0
PROBE_INTERVAL_S = 0.5
LIVENESS_PROBE_INTERVAL_S = 2.0
UNHEALTHY_AFTER_FAILURES = 3
LIVENESS_RESTART_S = 60.0
HEARTBEAT_S = 5.0
LOG_ROTATE_BYTES = 50 * 1024 * 1024

log = logging.getLogger("shipyard.supervisor")


# Set by libraries for their own use (importing Feast sets the first to a temporary folder):
# inherited, they would put a component's metrics into a folder it does not own. A component
# that wants multiprocess metrics sets its own (see components.gateway).
PRIVATE_VARIABLES = (
    "PROMETHEUS_MULTIPROC_DIR",
    "PROMETHEUS_MULTIPROCESS_DIR",
    "prometheus_multiproc_dir",
)


def inherited_env() -> dict[str, str]:
    """This process's environment minus what must not leak into components."""
    return {k: v for k, v in os.environ.items() if k not in PRIVATE_VARIABLES}


def backoff_delay(failed_starts: int) -> float:
    """Seconds to wait before the next start after ``failed_starts`` failures in a row."""
    if failed_starts <= 0:
        return 0.0
    return min(BACKOFF_BASE_S * 2 ** (failed_starts - 1), BACKOFF_MAX_S)


def _die_with(parent_pid: int) -> Callable[[], None]:
    """Runs in the child between fork and exec: SIGTERM me when the supervisor dies."""

    def arm() -> None:  # pragma: no cover - runs in the forked child
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the supervisor died before prctl took effect
            os._exit(1)

    return arm


def _describe_exit(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exited with code {code}"


@dataclass
class Supervised:
    """One component under supervision: its spec, its published state and private bookkeeping."""

    spec: ComponentSpec
    state: ComponentState
    proc: subprocess.Popen[bytes] | None = None
    next_start_at: float = 0.0
    failed_starts: int = 0
    probe_failures: int = 0
    next_probe_at: float = 0.0
    unready_since: float | None = None


class Supervisor:
    def __init__(
        self,
        specs: list[ComponentSpec],
        layout: StateLayout,
        settings_env: dict[str, str],
        startup_timeout_s: float,
    ) -> None:
        self.layout = layout
        self.startup_timeout_s = startup_timeout_s
        self.stop_requested = False
        now = time.time()
        self.components = [
            Supervised(
                spec,
                ComponentState(
                    name=spec.name,
                    ports=spec.ports,
                    urls=spec.urls,
                    log=str(layout.log_file(spec.name)),
                ),
            )
            for spec in specs
        ]
        self.state = StackState(
            supervisor_pid=os.getpid(),
            started_at=now,
            heartbeat_at=now,
            settings_env=settings_env,
            components={c.spec.name: c.state for c in self.components},
        )
        self._dirty = True

    # Life cycle

    def run(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._request_stop)
        try:
            while not self.stop_requested:
                self.step()
                time.sleep(0.1)
        finally:
            self.stop_all()

    def step(self) -> None:
        """One pass of supervision: start, reap, probe each component; publish any change."""
        now = time.time()
        for component in self.components:
            try:
                self._tick(component, now)
            except Exception as exc:  # one component's surprise must not take the stack down
                log.exception("supervising %s", component.spec.name)
                self._fail_start(component, now, f"supervisor error: {exc}")
        if self._dirty or now - self.state.heartbeat_at > HEARTBEAT_S:
            self._publish()

    def _request_stop(self, signum: int, _frame: object) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.stop_requested = True

    def stop_all(self) -> None:
        self.state.stopping = True
        for component in reversed(self.components):
            self._stop(component, "stopped by shipyard down")
        self._publish()

    # One component

    def _tick(self, c: Supervised, now: float) -> None:
        status = c.state.status
        if status == "failed" or status == "stopped":
            return
        if c.proc is None:
            if now >= c.next_start_at:
                self._start(c, now)
            return
        code = c.proc.poll()
        if code is not None:
            self._on_exit(c, now, code)
            return
        if now < c.next_probe_at:
            return
        ready = c.spec.probe()
        c.next_probe_at = now + (
            LIVENESS_PROBE_INTERVAL_S if status == "ready" else PROBE_INTERVAL_S
        )
        if status == "starting":
            if ready:
                self._set(c, status="ready", ready_at=now, message="")
                c.probe_failures = 0
                log.info("%s ready after %.1fs", c.spec.name, now - (c.state.started_at or now))
            elif now - (c.state.started_at or now) > self.startup_timeout_s:
                self._fail_start(c, now, f"not ready after {self.startup_timeout_s:.0f}s")
            return
        # Ready or unhealthy: liveness.
        if ready:
            c.probe_failures = 0
            c.unready_since = None
            if status == "unhealthy":
                self._set(c, status="ready", message="")
            if c.failed_starts and now - (c.state.ready_at or now) > STABLE_AFTER_S:
                c.failed_starts = 0
            return
        c.probe_failures += 1
        c.unready_since = c.unready_since or now
        if c.probe_failures >= UNHEALTHY_AFTER_FAILURES and status == "ready":
            self._set(c, status="unhealthy", message="probe failing")
        if now - c.unready_since > LIVENESS_RESTART_S:
            self._fail_start(c, now, f"unresponsive for {LIVENESS_RESTART_S:.0f}s")

    def _start(self, c: Supervised, now: float) -> None:
        spec = c.spec
        log_file = self.layout.log_file(spec.name)
        try:
            if log_file.exists() and log_file.stat().st_size > LOG_ROTATE_BYTES:
                os.replace(log_file, log_file.with_suffix(".log.1"))
            if spec.prepare is not None:
                spec.prepare()
            with open(log_file, "ab", buffering=0) as out:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S")
                out.write(f"\n=== shipyard: starting {spec.name} at {stamp} ===\n".encode())
                c.proc = subprocess.Popen(
                    spec.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**inherited_env(), **spec.env},
                    start_new_session=True,  # own process group: stop takes its children too
                    preexec_fn=_die_with(os.getpid()),
                    close_fds=True,
                )
        except Exception as exc:  # a prepare step or exec that fails is a failed start
            c.proc = None
            self._fail_start(c, now, f"could not start: {exc}")
            return
        c.probe_failures = 0
        c.unready_since = None
        c.next_probe_at = now + PROBE_INTERVAL_S
        self._set(c, status="starting", pid=c.proc.pid, started_at=now, ready_at=None)
        log.info("%s started, pid %d", spec.name, c.proc.pid)

    def _on_exit(self, c: Supervised, now: float, code: int) -> None:
        c.proc = None
        self._kill_group(c, signal.SIGKILL)  # leftovers of a crashed leader
        self._set(c, last_exit_code=code, pid=None)
        log.warning("%s %s", c.spec.name, _describe_exit(code))
        self._schedule_restart(c, now, _describe_exit(code))

    def _fail_start(self, c: Supervised, now: float, why: str) -> None:
        if c.proc is not None:
            self._stop(c, why)
        self._schedule_restart(c, now, why)

    def _schedule_restart(self, c: Supervised, now: float, why: str) -> None:
        # A component that had been ready for a while has not "failed to start".
        stable = c.state.ready_at is not None and now - c.state.ready_at > STABLE_AFTER_S
        c.failed_starts = 1 if stable else c.failed_starts + 1
        if c.failed_starts >= MAX_FAILED_STARTS:
            self._set(c, status="failed", message=f"{why}; gave up after {c.failed_starts} tries")
            log.error("%s failed: %s", c.spec.name, why)
            return
        delay = backoff_delay(c.failed_starts)
        c.next_start_at = now + delay
        self._set(
            c,
            status="backoff",
            restarts=c.state.restarts + 1,
            message=f"{why}; restarting in {delay:.0f}s",
        )

    def _stop(self, c: Supervised, why: str) -> None:
        proc = c.proc
        if proc is None:
            self._kill_group(c, signal.SIGKILL)
            self._set(c, status="stopped", pid=None, message=why)
            return
        self._set(c, status="stopping")
        self._publish()
        self._kill_group(c, signal.SIGTERM)
        try:
            code = proc.wait(timeout=c.spec.stop_grace_s)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0fs: SIGKILL", c.spec.name, c.spec.stop_grace_s)
            self._kill_group(c, signal.SIGKILL)
            code = proc.wait()
        deadline = time.time() + c.spec.stop_grace_s
        while group_members(proc.pid) and time.time() < deadline:
            time.sleep(0.05)
        self._kill_group(c, signal.SIGKILL)
        c.proc = None
        self._set(c, status="stopped", pid=None, last_exit_code=code, message=why)

    def _kill_group(self, c: Supervised, signum: int) -> None:
        pgid = c.proc.pid if c.proc is not None else c.state.pid
        if not pgid:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signum)

    def _set(self, c: Supervised, **changes: object) -> None:
        for key, value in changes.items():
            setattr(c.state, key, value)
        self._dirty = True

    def _publish(self) -> None:
        self.state.write(self.layout.stack_state)
        self._dirty = False


def main() -> int:
    """Entry point of the detached supervisor process."""
    settings = load_settings()
    layout = StateLayout(settings.state_dir)
    layout.ensure()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    lock = open(layout.supervisor_lock, "w")  # noqa: SIM115 - held for the process lifetime
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.error("another supervisor already runs for %s", settings.state_dir)
        return 1
    layout.supervisor_pid.write_text(f"{os.getpid()}\n")
    try:
        supervisor = Supervisor(
            build_components(settings), layout, settings.to_env(), settings.startup_timeout_s
        )
        log.info("supervising %s", ", ".join(c.spec.name for c in supervisor.components))
        supervisor.run()
    finally:
        layout.supervisor_pid.unlink(missing_ok=True)
    log.info("all components stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
