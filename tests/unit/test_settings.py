from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.errors import ConfigError
from shipyard.settings import Settings, load_settings, triton_url


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("SHIPYARD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray ./shipyard.toml


def test_defaults_are_valid_and_loopback_ports_distinct() -> None:
    settings = load_settings()
    assert settings.profile == "sqlite"
    assert settings.log_level == "info"
    ports = settings.ports.model_dump()
    assert len(set(ports.values())) == len(ports)


def test_environment_overrides_nested_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHIPYARD_STATE_DIR", str(tmp_path / "s"))
    monkeypatch.setenv("SHIPYARD_PORTS__GATEWAY", "18080")
    monkeypatch.setenv("SHIPYARD_PROFILE", "redis")
    settings = load_settings()
    assert settings.ports.gateway == 18080
    assert settings.profile == "redis"
    assert settings.state_dir == tmp_path / "s"
    assert settings.url("gateway", "/docs") == "http://127.0.0.1:18080/docs"


def test_config_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "shipyard.toml").write_text('log_level = "debug"\n[ports]\nmlflow = 15000\n')
    assert load_settings().ports.mlflow == 15000
    assert load_settings().log_level == "debug"
    monkeypatch.setenv("SHIPYARD_PORTS__MLFLOW", "15001")
    assert load_settings().ports.mlflow == 15001


def test_to_env_round_trips(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    original = Settings(state_dir=tmp_path / "x", profile="redis", log_level="warning")
    for name, value in original.to_env().items():
        monkeypatch.setenv(name, value)
    assert load_settings() == original


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SHIPYARD_PORTS__MLFLOW", "70000", "invalid setting SHIPYARD_PORTS__MLFLOW='70000'"),
        ("SHIPYARD_PORTS__GATEWAY", "http", "invalid setting SHIPYARD_PORTS__GATEWAY='http'"),
        ("SHIPYARD_PORTS__GATEWAY", "5000", "ports.gateway and ports.mlflow are both 5000"),
        ("SHIPYARD_PROFILE", "mongo", "invalid setting SHIPYARD_PROFILE='mongo'"),
        ("SHIPYARD_LOG_LEVEL", "loud", "invalid setting SHIPYARD_LOG_LEVEL='loud'"),
        ("SHIPYARD_STATE_DIR", "/etc/hostname/state", "/etc/hostname is not a directory"),
        ("SHIPYARD_STARTUP_TIMEOUT_S", "-1", "SHIPYARD_STARTUP_TIMEOUT_S"),
        ("SHIPYARD_SERVING__CPU_URL", "https://triton:8000", "use http://host:port"),
    ],
)
def test_invalid_values_give_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    assert caught.value.exit_code == 2


def test_read_only_state_dir_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # /proc/sys is read-only for everyone, root included.
    monkeypatch.setenv("SHIPYARD_STATE_DIR", "/proc/sys/shipyard")
    with pytest.raises(ConfigError, match="SHIPYARD_STATE_DIR.*not writable"):
        load_settings()


def test_unknown_key_in_config_file_names_key_and_file(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text('profil = "redis"\n')
    with pytest.raises(ConfigError, match="unknown setting 'profil' in shipyard.toml"):
        load_settings()


def test_malformed_config_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text("profile = \n")
    with pytest.raises(ConfigError, match="could not read settings from shipyard.toml"):
        load_settings()


def test_unknown_port_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_PORTS__GRAFANA", "3000")
    with pytest.raises(ConfigError, match="unknown setting SHIPYARD_PORTS__GRAFANA:"):
        load_settings()


def test_named_config_file_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHIPYARD_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="missing.toml .SHIPYARD_CONFIG. does not exist"):
        load_settings()


def test_triton_urls_name_their_transport() -> None:
    assert triton_url("http://triton:8000") == ("http", "triton:8000")
    assert triton_url("grpc://triton:8001") == ("grpc", "triton:8001")
    assert triton_url("triton.ns.svc:8001") == ("grpc", "triton.ns.svc:8001")  # bare: gRPC
    for bad in ("https://triton:8000", "triton", "http://triton:8000/v2", "http://:8000"):
        with pytest.raises(ValueError, match="is not a Triton URL"):
            triton_url(bad)
