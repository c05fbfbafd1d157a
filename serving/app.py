"""The serving gateway's FastAPI application: routes only; the work is in ``serving.gateway``.

Started by the embedded stack as ``uvicorn serving.app:create_app --factory`` and by the
Helm chart's gateway Deployment the same way. Probes: ``/healthz`` (the process is alive),
``/readyz`` (it can take traffic), ``/metrics`` (Prometheus text format).

One shortcut (``GatewayApp``): a well-formed, authorised predict request is answered without
the framework's per-request machinery. Its middleware stack, dependency solving and body
validation cost the gateway more CPU than the features, the model hop and the audit together
(about 0.3 of 1 ms per request, measured under load). Anything else, every error included, goes
through FastAPI with the body replayed, so there is one behaviour and one schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import orjson
from fastapi import Depends, FastAPI, Path, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.types import Message, Receive, Scope, Send

from serving import errors
from serving.access import BodyLimit, api_key_header, bearer
from serving.errors import (
    PREDICT_ERRORS,
    GatewayError,
    gateway_error_response,
    openapi_responses,
)
from serving.gateway import Gateway
from serving.schemas import (
    Feedback,
    FeedbackReceipt,
    Health,
    ModelDetail,
    ModelList,
    PredictRequest,
    PredictResponse,
    RouteUpdate,
)
from shipyard import __version__
from shipyard.routing import ModelRoute
from shipyard.settings import Settings, load_settings

MODEL_NAME = r"[a-z0-9][a-z0-9_-]{0,62}"
ModelPath = Annotated[
    str,
    Path(
        pattern=f"^{MODEL_NAME}$",
        description="Registered model name (lowercase letters, digits, '-' and '_').",
    ),
]
PREDICT_PATH = re.compile(f"^/v1/models/({MODEL_NAME})/predict$")


MONITOR_REFRESH_S = 2.0


async def _every(interval_s: float, job: Callable[[], None]) -> None:
    """Run ``job`` every ``interval_s`` in the event loop; an error never stops the schedule."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            job()
        except Exception:
            logging.getLogger("shipyard.gateway").exception("periodic job failed")


def _json(payload: object, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


class GatewayApp(FastAPI):
    """The FastAPI app, with the predict route's happy path answered directly (module doc)."""

    gateway: Gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = PREDICT_PATH.match(scope["path"])
            if match is not None:
                replay = await self._predict(match[1], scope, receive, send)
                if replay is None:
                    return
                receive = replay
        await super().__call__(scope, receive, send)

    async def _predict(
        self, model: str, scope: Scope, receive: Receive, send: Send
    ) -> Receive | None:
        """Answer a predict request; or, for anything unusual, return a ``receive`` that
        replays what was read so FastAPI handles the request exactly as if it had come first."""
        declared = content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                declared = value
        if content_type is None or content_type.split(b";")[0].strip() != b"application/json":
            return receive
        limit = self.gateway.settings.serving.max_body_bytes
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return receive
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return _replay(messages, receive)
            size += len(message.get("body", b""))
            if size > limit:
                return _replay(messages, receive)
            if not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages)
        try:
            self.gateway.keys.check_predict(Request(scope))
            request = PredictRequest.model_validate_json(body)
        except (GatewayError, ValidationError):
            return _replay(messages, receive)
        try:
            response = _json(await self.gateway.predict(model, request))
        except GatewayError as exc:
            response = gateway_error_response(exc)
        await response(scope, receive, send)
        return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway for these settings (read from the environment when omitted)."""
    settings = settings or load_settings()
    gateway = Gateway(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway.start()
        # A full garbage collection walks every tracked object, and imports and startup leave
        # about 260k of them: a 170 ms stall for every request in flight. Frozen, they are
        # never walked again; collections see only what requests create.
        gc.collect()
        gc.freeze()
        tasks = [
            asyncio.create_task(gateway.router.watch(settings.serving.routing_poll_s)),
            asyncio.create_task(_every(MONITOR_REFRESH_S, gateway.monitor.refresh)),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await gateway.stop()
            gc.unfreeze()  # a process that starts the app again (tests) leaks nothing

    app = GatewayApp(
        title="Shipyard gateway",
        version=__version__,
        description=(
            "Online fraud scores with features from Feast, stable/canary routing and a "
            "GPU → CPU → in-process fallback chain. Every prediction is audited. Errors share "
            "one body: `{error: {code, message, field}, request_id}`."
        ),
        lifespan=lifespan,
    )
    app.gateway = gateway
    errors.install_handlers(app)
    app.add_middleware(
        BodyLimit,
        limit=settings.serving.max_body_bytes,
        on_reject=gateway.metrics.rejected.labels(reason="too_large").inc,
    )

    # Dependencies are coroutines: FastAPI runs plain functions in a thread pool, a thread hop
    # per request for a check that takes microseconds.
    async def check_predict(request: Request) -> None:
        try:
            gateway.keys.check_predict(request)
        except errors.Unauthorized:
            gateway.metrics.rejected.labels(reason="unauthorized").inc()
            raise

    async def predict_access_with_keys(
        request: Request,
        _key: Annotated[str | None, Depends(api_key_header)] = None,
        _bearer: Annotated[object, Depends(bearer)] = None,
    ) -> None:
        await check_predict(request)

    # The schema declares keys on predict routes only when keys are configured: an open
    # predict API must not advertise authentication it does not enforce.
    keyed = bool(settings.serving.api_keys)
    predict_access = predict_access_with_keys if keyed else check_predict
    predict_auth_errors: tuple[int, ...] = (401,) if keyed else ()

    async def admin_access(
        request: Request,
        _key: Annotated[str | None, Depends(api_key_header)] = None,
        _bearer: Annotated[object, Depends(bearer)] = None,
    ) -> None:
        try:
            gateway.keys.check_admin(request)
        except (errors.Unauthorized, errors.Forbidden):
            gateway.metrics.rejected.labels(reason="unauthorized").inc()
            raise

    @app.get("/healthz", response_model=Health, tags=["probes"])
    async def healthz() -> Response:
        """Liveness: the process answers."""
        return _json({"status": "ok"})

    @app.get(
        "/readyz",
        response_model=Health,
        tags=["probes"],
        responses={503: {"model": Health, "description": "Not ready."}},
    )
    async def readyz() -> Response:
        """Readiness: started, audit log open, routing table loaded (a refused routing file
        keeps the previous table serving and is reported in `detail`)."""
        detail = gateway.router.last_error
        return _json({"status": "ready", **({"detail": detail} if detail else {})})

    @app.get("/metrics", tags=["probes"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics in text exposition format (all workers)."""
        body = generate_latest(gateway.metrics.exposition_registry())
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/v1/models",
        response_model=ModelList,
        tags=["models"],
        dependencies=[Depends(predict_access)],
        responses=openapi_responses(predict_auth_errors),
    )
    async def list_models() -> Response:
        """Every routed model with its stable and canary versions."""
        table = gateway.router.table
        return _json({"models": [_summary(n, r) for n, r in sorted(table.models.items())]})

    @app.get(
        "/v1/models/{model}",
        response_model=ModelDetail,
        tags=["models"],
        dependencies=[Depends(predict_access)],
        responses=openapi_responses((*predict_auth_errors, 404, 422)),
    )
    async def model_detail(model: ModelPath) -> Response:
        """One model: routing, published versions with lineage, backend health."""
        return _json(_detail(gateway, model, gateway.route_of(model)))

    # Its well-formed, authorised requests are answered by GatewayApp._predict; this route is
    # their schema, and it answers every other request to the path (errors included).
    @app.post(
        "/v1/models/{model}/predict",
        response_model=PredictResponse,
        tags=["predict"],
        dependencies=[Depends(predict_access)],
        responses=openapi_responses(
            tuple(s for s in PREDICT_ERRORS if s not in (401, 403) or keyed)
        ),
    )
    async def predict(model: ModelPath, body: PredictRequest) -> Response:
        """Score transactions: features from the online store (the feature service of the
        version that serves each one), the model on the first backend that answers, one
        audit record per prediction."""
        return _json(await gateway.predict(model, body))

    @app.post(
        "/v1/models/{model}/explain",
        response_model=PredictResponse,
        tags=["predict"],
        dependencies=[Depends(predict_access)],
        responses=openapi_responses(
            tuple(s for s in PREDICT_ERRORS if s not in (401, 403) or keyed)
        ),
    )
    async def explain(model: ModelPath, body: PredictRequest) -> Response:
        """Score and explain: a prediction like /predict (audited, the same prediction id) with
        each input's contribution to the raw score of the version that served it. The base
        value plus the contributions is the raw score; the sigmoid of it is the score."""
        return _json(await gateway.predict(model, body.model_copy(update={"explain": True})))

    @app.post(
        "/v1/feedback",
        response_model=FeedbackReceipt,
        status_code=202,
        tags=["predict"],
        dependencies=[Depends(predict_access)],
        responses=openapi_responses((400, *predict_auth_errors, 413, 422, 503)),
    )
    async def feedback(body: Feedback) -> Response:
        """The true label of an earlier prediction (e.g. a confirmed fraud, days later). Every
        label is recorded; those matching this gateway's recent predictions feed the rolling
        online quality of the version that served them (concept drift)."""
        return _json(gateway.feedback(body.prediction_id, body.label), status=202)

    @app.get(
        "/v1/admin/routes",
        tags=["admin"],
        dependencies=[Depends(admin_access)],
        responses=openapi_responses((401, 403)),
    )
    async def get_routes() -> Response:
        """The routing table in effect (admin key required)."""
        return _json(gateway.router.table.model_dump(mode="json"))

    @app.put(
        "/v1/admin/routes/{model}",
        response_model=ModelDetail,
        tags=["admin"],
        dependencies=[Depends(admin_access)],
        responses=openapi_responses(errors.ADMIN_ERRORS),
    )
    async def put_route(model: ModelPath, update: RouteUpdate) -> Response:
        """Change a model's stable version, canary version or canary weight (admin key
        required). Validated and written to the routing file atomically; in effect at once in
        this worker and within one poll interval in the others."""
        route = gateway.update_route(model, update)
        return _json(_detail(gateway, model, route))

    return app


def _summary(name: str, route: ModelRoute) -> dict[str, object]:
    return {
        "name": name,
        "stable_version": route.stable.version,
        "canary_version": route.canary.version if route.canary else None,
        "canary_weight": route.canary.weight if route.canary else 0.0,
    }


def _detail(gateway: Gateway, name: str, route: ModelRoute) -> dict[str, object]:
    chain = gateway.chain
    return {
        **_summary(name, route),
        "versions": gateway.version_info(name),
        "analysis": route.canary.analysis.model_dump() if route.canary else None,
        "backends": chain.health() if chain is not None else [],
    }
