"""Every Prometheus metric name Shipyard exports, in one place.

Dashboards, recording rules and alerts refer to these names; change one here and the
generators that render dashboards and rules follow.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

NAMESPACE = "shipyard"

GATEWAY_BUILD_INFO = f"{NAMESPACE}_gateway_build_info"


def gateway_registry(version: str, profile: str) -> CollectorRegistry:
    """A fresh registry for one gateway process, with its build information set."""
    registry = CollectorRegistry()
    build_info = Gauge(
        GATEWAY_BUILD_INFO,
        "Always 1; labels carry the gateway's version and online-store profile.",
        ["version", "profile"],
        registry=registry,
    )
    build_info.labels(version=version, profile=profile).set(1)
    return registry
