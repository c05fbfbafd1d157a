"""The CLI's contract for user mistakes: one `error:` line, a non-zero exit, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHIPYARD_STATE_DIR", str(tmp_path / "state"))


@pytest.mark.parametrize(
    ("argv", "env", "code", "fragment"),
    [
        (["up", "--bogus"], {}, 2, "No such option: --bogus (see `shipyard up --help`)"),
        (["launch"], {}, 2, "No such command 'launch'"),
        (["logs", "-n", "many"], {}, 2, "Invalid value for '-n' / '--lines'"),
        (["logs", "nosuch"], {}, 2, "no log for component 'nosuch'"),
        (["status"], {"SHIPYARD_PORTS__PROMETHEUS": "0"}, 2, "SHIPYARD_PORTS__PROMETHEUS='0'"),
        (["up"], {"SHIPYARD_PROFILE": "postgres"}, 2, "SHIPYARD_PROFILE='postgres'"),
        (["status"], {}, 3, "Shipyard is not running"),
        (["data", "generate", "--rows", "0"], {}, 2, "rows must be between 1 and"),
        (["data", "generate", "--drift-from", "soon"], {}, 2, "--drift-from 'soon' is not a date"),
        (["data", "generate", "--rows", "ten"], {}, 2, "Invalid value for '--rows'"),
    ],
)
def test_mistakes_give_one_error_line_and_exit_code(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    env: dict[str, str],
    code: int,
    fragment: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    exit_code, _, err = run(argv, capsys)
    assert exit_code == code
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]


def test_no_arguments_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([], capsys)
    assert code == 0
    for command in ("up", "down", "status", "logs", "config"):
        assert command in out


def test_down_when_nothing_runs_is_a_no_op(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["down"], capsys)
    assert code == 0
    assert "Nothing was running" in out


def test_config_lists_every_variable(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["config"], capsys)
    assert code == 0
    for variable in ("SHIPYARD_STATE_DIR", "SHIPYARD_PROFILE", "SHIPYARD_PORTS__TRITON_GRPC"):
        assert variable in out


def test_config_never_prints_secrets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "k3y-" + "x" * 40
    monkeypatch.setenv("SHIPYARD_PII__KEY", key)
    monkeypatch.setenv("SHIPYARD_REDIS_PASSWORD", "hunter2-redis")
    code, out, _ = run(["config"], capsys)
    assert code == 0
    assert "SHIPYARD_PII__KEY" in out and "SHIPYARD_REDIS_PASSWORD" in out
    assert key not in out and "hunter2-redis" not in out
