"""Fixtures shared by every tier: tier markers from the folder, free ports, isolated settings."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.settings import Ports, Settings

TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The folder a test lives in is its tier: `pytest -m unit` needs no decorator discipline.
    for item in items:
        for tier in TIERS:
            if f"/tests/{tier}/" in str(item.path):
                item.add_marker(getattr(pytest.mark, tier))


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports that were free a moment ago (held open together while picked)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def isolated_settings(state_dir: Path, **overrides: object) -> Settings:
    """Settings with their own state dir and free ports, so tests never touch a user's stack."""
    names = list(Ports.model_fields)
    ports = Ports(**dict(zip(names, free_ports(len(names)), strict=True)))
    return Settings(state_dir=state_dir, ports=ports, **overrides)


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        return isolated_settings(tmp_path / "state", **overrides)

    return make
