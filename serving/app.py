"""The serving gateway's FastAPI application.

Started by the embedded stack as ``uvicorn serving.app:create_app --factory`` and by the
Helm chart's gateway Deployment the same way. Probes: ``/healthz`` (the process is alive),
``/readyz`` (it can take traffic), ``/metrics`` (Prometheus text format).
"""

from __future__ import annotations

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from shipyard import __version__
from shipyard.observability.metrics import gateway_registry
from shipyard.settings import Settings, load_settings


class Health(BaseModel):
    """Probe answer."""

    status: str


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway for these settings (read from the environment when omitted)."""
    settings = settings or load_settings()
    registry = gateway_registry(__version__, settings.profile)
    app = FastAPI(
        title="Shipyard gateway",
        version=__version__,
        description="Online predictions with features, canary routing and GPU→CPU fallback.",
    )

    @app.get("/healthz", response_model=Health, tags=["probes"])
    def healthz() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, tags=["probes"])
    def readyz() -> Health:
        """Readiness: the gateway can take traffic."""
        return Health(status="ready")

    @app.get("/metrics", tags=["probes"], response_class=Response)
    def metrics() -> Response:
        """Prometheus metrics in text exposition format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
