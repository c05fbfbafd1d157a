"""The file the supervisor writes and the CLI reads: one JSON document, replaced atomically."""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

ComponentStatus = Literal[
    "starting", "ready", "unhealthy", "backoff", "failed", "stopping", "stopped"
]


@dataclass
class ComponentState:
    """What the supervisor knows of one component."""

    name: str
    status: ComponentStatus = "starting"
    pid: int | None = None
    restarts: int = 0
    started_at: float | None = None
    ready_at: float | None = None
    last_exit_code: int | None = None
    message: str = ""
    log: str = ""
    ports: dict[str, int] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)


@dataclass
class StackState:
    """The whole stack: supervisor process, settings it runs with, and every component."""

    supervisor_pid: int
    started_at: float
    heartbeat_at: float
    settings_env: dict[str, str]
    components: dict[str, ComponentState]
    stopping: bool = False

    def write(self, path: Path) -> None:
        self.heartbeat_at = time.time()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, path)  # readers never see a half-written file

    @classmethod
    def read(cls, path: Path) -> StackState | None:
        try:
            raw = json.loads(path.read_text())
            raw["components"] = {
                name: ComponentState(**component) for name, component in raw["components"].items()
            }
            return cls(**raw)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            # Missing, half-migrated or foreign: treat as no state rather than crash a command.
            return None


def lock_held(path: Path) -> bool:
    """True when some process holds an flock on ``path`` (the supervisor holds its lock file).

    Unlike a recorded pid, a lock cannot outlive its holder or be inherited by a stranger
    that reuses the pid after a crash or reboot.
    """
    try:
        with open(path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False


def pid_alive(pid: int | None) -> bool:
    """True when a process with this pid exists and is not a zombie."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def group_members(pgid: int | None) -> list[int]:
    """Live (non-zombie) processes of a process group, read from /proc."""
    if not pgid:
        return []
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            members.append(int(entry.name))
    return members


# Every process of a stack (the supervisor, the components and their children) inherits this
# variable naming the stack's state directory: `shipyard down` finds leftovers by it, and it
# cannot match an unrelated process that happens to reuse a recorded pid.
STACK_MARKER_ENV = "SHIPYARD_STACK"


def stack_processes(state_dir: Path) -> list[int]:
    """Pids of live processes that belong to the stack of ``state_dir`` (never the caller)."""
    marker = f"{STACK_MARKER_ENV}={state_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
        except OSError:
            continue  # exited while we looked, or not ours to read
        found.append(int(entry.name))
    return found
