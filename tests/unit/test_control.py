"""Deciding whether a stack runs: by the supervisor's lock, never by a recorded pid."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from shipyard.errors import StackNotRunningError
from shipyard.settings import Settings
from shipyard.stack import control
from shipyard.stack.layout import StateLayout
from shipyard.stack.state import ComponentState, StackState


def test_a_stale_state_file_naming_a_live_pid_is_not_a_running_stack(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    layout = StateLayout(settings.state_dir)
    layout.ensure()
    # After a crash or reboot the recorded pid can belong to anyone: here, pid 1.
    StackState(
        supervisor_pid=1,
        started_at=time.time(),
        heartbeat_at=time.time(),
        settings_env={},
        components={"triton": ComponentState(name="triton", status="ready", pid=1)},
    ).write(layout.stack_state)
    layout.supervisor_pid.write_text("1\n")
    with pytest.raises(StackNotRunningError, match="not running"):
        control.status(settings)
    # `down` must not signal pid 1; it tidies the stale files and reports what was recorded.
    assert control.down(settings) == ["triton"]
    assert not layout.stack_state.exists()
    assert not layout.supervisor_pid.exists()


@pytest.mark.parametrize("content", ["{", "[]", '{"components": 3}', json.dumps({"x": 1})])
def test_an_unreadable_state_file_is_no_state(tmp_path, content: str) -> None:
    path = tmp_path / "stack.json"
    path.write_text(content)
    assert StackState.read(path) is None


def test_down_on_a_state_dir_that_never_existed_creates_nothing(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    assert control.down(settings) == []
    assert not settings.state_dir.exists()
