"""The embedded stack, started for real: health, scraping, restarts, idempotence, clean errors."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import time
import urllib.request

import psutil
import pytest

from shipyard.errors import ComponentError, PortInUseError, ShipyardError
from shipyard.settings import Settings
from shipyard.stack import control
from shipyard.stack.state import StackState, stack_processes
from tests.conftest import isolated_settings
from tests.integration.conftest import get_json, prometheus_target_health, wait_for


def test_every_component_is_ready_and_answers(stack: tuple[Settings, StackState]) -> None:
    settings, state = stack
    assert {name: c.status for name, c in state.components.items()} == {
        "mlflow": "ready",
        "triton": "ready",
        "triton-cpu": "ready",
        "gateway": "ready",
        "rollout": "ready",
        "prometheus": "ready",
    }
    assert get_json(settings.url("gateway", "/healthz")) == {"status": "ok"}
    assert get_json(settings.url("gateway", "/readyz")) == {"status": "ready"}
    with urllib.request.urlopen(settings.url("mlflow", "/health"), timeout=5) as response:
        assert response.status == 200
    with urllib.request.urlopen(settings.url("triton_http", "/v2/health/ready"), timeout=5) as r:
        assert r.status == 200
    server = get_json(settings.url("triton_http", "/v2"))
    assert server["name"] == "triton"


def test_gateway_exports_prometheus_metrics(stack: tuple[Settings, StackState]) -> None:
    settings, _ = stack
    with urllib.request.urlopen(settings.url("gateway", "/metrics"), timeout=5) as response:
        text = response.read().decode()
    assert 'shipyard_gateway_build_info{profile="sqlite"' in text


def test_prometheus_scrapes_every_component(stack: tuple[Settings, StackState]) -> None:
    settings, _ = stack
    # The first scrape happens within one interval (5 s) of the targets being discovered.
    health = wait_for(
        lambda: (h := prometheus_target_health(settings)) and set(h.values()) == {"up"} and h,
        within_s=30,
        what="every Prometheus target up",
    )
    assert set(health) == {"prometheus", "mlflow", "triton", "triton-cpu", "gateway", "rollout"}


def test_up_again_changes_nothing(stack: tuple[Settings, StackState]) -> None:
    settings, _ = stack
    before = {n: (c.pid, c.restarts) for n, c in control.status(settings).components.items()}
    started = time.monotonic()
    again = control.up(settings)
    assert again.already_running
    assert time.monotonic() - started < 5
    after = {n: (c.pid, c.restarts) for n, c in control.status(settings).components.items()}
    assert after == before


def test_every_listening_socket_is_on_loopback(stack: tuple[Settings, StackState]) -> None:
    settings, _ = stack
    listening = [
        (proc.name(), conn.laddr)
        for pid in stack_processes(settings.state_dir)
        for proc in [psutil.Process(pid)]
        for conn in proc.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    ]
    expected = {
        settings.ports.mlflow,
        settings.ports.triton_http,
        settings.ports.triton_grpc,
        settings.ports.triton_metrics,
        settings.ports.gateway,
        settings.ports.prometheus,
    }
    assert expected <= {addr.port for _, addr in listening}
    assert [(name, addr) for name, addr in listening if not is_loopback(addr.ip)] == []


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is loopback too
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def test_up_with_other_settings_on_a_running_stack_is_refused(
    stack: tuple[Settings, StackState],
) -> None:
    settings, _ = stack
    other = settings.model_copy(update={"profile": "redis"})
    with pytest.raises(
        ShipyardError, match="runs with other settings .*SHIPYARD_PROFILE.*shipyard down"
    ):
        control.up(other)


def test_killed_triton_is_restarted_and_counted(stack: tuple[Settings, StackState]) -> None:
    settings, _ = stack
    before = control.status(settings).components["triton"]
    assert before.pid is not None
    os.kill(before.pid, signal.SIGKILL)
    after = wait_for(
        lambda: (
            (t := control.status(settings).components["triton"]).status == "ready"
            and t.pid != before.pid
            and t
        ),
        within_s=30,
        what="triton restarted and ready",
    )
    assert after.restarts == before.restarts + 1
    assert "killed by signal 9" in after.message or after.last_exit_code == -signal.SIGKILL


def test_port_in_use_names_the_component_and_the_setting(tmp_path) -> None:
    settings = isolated_settings(tmp_path / "state")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.ports.triton_grpc))
        squatter.listen()
        with pytest.raises(PortInUseError) as caught:
            control.up(settings)
    message = str(caught.value)
    assert f"port {settings.ports.triton_grpc} for triton (grpc) is already in use" in message
    assert "SHIPYARD_PORTS__TRITON_GRPC" in message


def test_a_component_failing_to_start_is_named_with_its_log_and_nothing_is_left(tmp_path) -> None:
    settings = isolated_settings(tmp_path / "state", startup_timeout_s=60)
    # Prometheus cannot create its storage where a file stands.
    (settings.state_dir / "prometheus").mkdir(parents=True)
    (settings.state_dir / "prometheus" / "data").write_text("not a directory")
    with pytest.raises(ComponentError) as caught:
        control.up(settings)
    message = str(caught.value)
    assert message.startswith("prometheus failed to start")
    assert str(settings.state_dir / "logs" / "prometheus.log") in message
    assert "\n" not in message
    assert stack_processes(settings.state_dir) == []
