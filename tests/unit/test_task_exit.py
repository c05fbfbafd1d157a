"""Pipeline tasks end without native teardown once their output is written (real processes:
a C-level exit handler that aborts stands in for the library thread seen aborting under load)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import ctypes, json, sys
    from pathlib import Path

    libc = ctypes.CDLL(None)
    libc.on_exit(libc.abort, None)  # native teardown that crashes the process at exit
    output, kind, outcome = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    if kind != "not-a-task":
        executor_input = json.dumps({"outputs": {"outputFile": str(output)}})
        sys.argv = ["executor_main", "--executor_input", executor_input]
    from shipyard.training.steps import exit_when_output_written

    exit_when_output_written()
    if outcome == "raises":
        raise RuntimeError("the step failed")
    output.write_text("{}")  # what KFP does once the step returned
    """
)


def _task(tmp_path: Path, outcome: str, kind: str = "task") -> int:
    output = tmp_path / "executor_output.json"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(output), kind, outcome], capture_output=True, timeout=60
    )
    return done.returncode


def test_a_finished_task_exits_zero_whatever_teardown_would_do(tmp_path: Path) -> None:
    assert _task(tmp_path, "succeeds") == 0


@pytest.mark.parametrize(("outcome", "kind"), [("raises", "task"), ("succeeds", "not-a-task")])
def test_a_failed_step_or_a_plain_process_exits_as_usual(
    tmp_path: Path, outcome: str, kind: str
) -> None:
    assert _task(tmp_path, outcome, kind) != 0  # the abort (or the traceback) stands
    if kind == "task":
        assert not (tmp_path / "executor_output.json").exists()
