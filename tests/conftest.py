"""Fixtures shared by every tier: tier markers from the folder, free ports, isolated settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.settings import Ports, Settings
from shipyard.stack.probes import free_ports

__all__ = ["free_ports", "isolated_settings"]

TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The folder a test lives in is its tier: `pytest -m unit` needs no decorator discipline.
    for item in items:
        for tier in TIERS:
            if f"/tests/{tier}/" in str(item.path):
                item.add_marker(getattr(pytest.mark, tier))


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
