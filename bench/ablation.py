"""B5's "off" build of the gateway: the real application with the audit append, every Prometheus
metric update and the drift monitor replaced by no-ops. Benchmark-only; never shipped.

    uvicorn bench.ablation:create_app --factory ...   (same settings as the real gateway)

Everything else (validation, routing, features, the backend chain, the in-flight limit) is the
gateway's own code, so the difference to the real gateway in the same run is what audit and
metrics cost per request.
"""

from __future__ import annotations


class _Null:
    """Accepts any metric call (``labels(...).inc()``, ``observe``, ``set``) and does nothing."""

    def __getattr__(self, name: str) -> _Null:
        return self

    def __call__(self, *args: object, **kwargs: object) -> _Null:
        return self


def create_app():
    from serving.app import create_app as real_app

    app = real_app()
    gateway = app.gateway
    null = _Null()
    # Before the lifespan's start(): the backend chain is built from gateway.metrics there.
    gateway.metrics = null
    gateway.features.metrics = null
    gateway.audit.append = lambda records: None
    gateway.monitor.observe = lambda *args, **kwargs: None
    return app
