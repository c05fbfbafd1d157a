"""Every gateway error and its HTTP status, in one place.

Each class's docstring names the status it maps to. Handlers turn them, FastAPI's validation
errors and Starlette's HTTP errors into the one documented error body::

    {"error": {"code": "unknown_entity", "message": "…", "field": "instances[0].customer_id"},
     "request_id": "…"}
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable error code.")
    message: str = Field(description="What is wrong and what to do, in one line.")
    field: str | None = Field(None, description="The request field at fault, if one is.")


class ErrorBody(BaseModel):
    error: ErrorDetail
    request_id: str | None = Field(None, description="The request's id, when one was given.")


class GatewayError(Exception):
    """Base class: 500 internal_error."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers: dict[str, str] | None = None
        self.request_id: str | None = None


class InvalidRequest(GatewayError):
    """422: a field has a wrong type or value."""

    status = 422
    code = "invalid_request"


class MalformedBody(GatewayError):
    """400: the body is not JSON."""

    status = 400
    code = "malformed_body"


class UnknownModel(GatewayError):
    """404: no such model is routed."""

    status = 404
    code = "unknown_model"


class UnknownVersion(GatewayError):
    """404: the model has no such published version."""

    status = 404
    code = "unknown_version"


class UnknownEntity(GatewayError):
    """404: an entity has no features in the online store (``field`` names it)."""

    status = 404
    code = "unknown_entity"


class Unauthorized(GatewayError):
    """401: no key, or an unknown one."""

    status = 401
    code = "unauthorized"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, field)
        self.headers = {"WWW-Authenticate": 'Bearer realm="shipyard"'}


class Forbidden(GatewayError):
    """403: the key is valid but not for this route."""

    status = 403
    code = "forbidden"


class PayloadTooLarge(GatewayError):
    """413: the body exceeds the configured limit."""

    status = 413
    code = "payload_too_large"


class Conflict(GatewayError):
    """409: the change cannot be applied in the current state."""

    status = 409
    code = "conflict"


class InjectedFault(GatewayError):
    """500: a failure injected on purpose (the canary's ``fault`` in the routing table)."""

    status = 500
    code = "injected_fault"


class Unavailable(GatewayError):
    """503: the gateway cannot answer now; retry after ``Retry-After`` seconds."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, retry_after_s: int = 1, field: str | None = None) -> None:
        super().__init__(message, field)
        self.headers = {"Retry-After": str(retry_after_s)}


class Overloaded(Unavailable):
    """503: too many predictions in flight."""

    code = "overloaded"


class FeatureStoreUnavailable(Unavailable):
    """503: the online feature store did not answer."""

    code = "feature_store_unavailable"


class BackendsUnavailable(Unavailable):
    """503: every model backend failed or is open-circuited."""

    code = "backends_unavailable"


class AuditUnavailable(Unavailable):
    """503: the audit record could not be written, so the prediction is not served."""

    code = "audit_unavailable"


# The error statuses the predict route can answer with, for the OpenAPI schema.
PREDICT_ERRORS = (400, 401, 403, 404, 409, 413, 422, 503)
ADMIN_ERRORS = (400, 401, 403, 404, 409, 413, 422)


def openapi_responses(statuses: tuple[int, ...]) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Malformed JSON body.",
        401: "Missing or unknown API key.",
        403: "The key may not use this route.",
        404: "Unknown model, version or entity; `field` names it.",
        409: "Conflicts with the current state: a route change that cannot apply, or an "
        "explanation asked of a version exported without its LightGBM model.",
        413: "Body larger than the configured limit.",
        422: "A field has a wrong type or value; `field` names it.",
        503: "Overloaded, or the feature store / every backend / the audit log is unavailable; "
        "retry after `Retry-After` seconds.",
    }
    return {s: {"model": ErrorBody, "description": descriptions[s]} for s in statuses}


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"code": code, "message": message, "field": field}, "request_id": request_id}
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def gateway_error_response(exc: GatewayError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.field, exc.request_id, exc.headers)


def field_path(location: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "instances", 0, "amount")`` -> ``instances[0].amount``."""
    path = ""
    for part in location:
        if part in ("body", "path", "query", "header"):
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def install_handlers(app: FastAPI) -> None:
    """Map every error the app can raise to the one error body."""

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> Response:
        return gateway_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        if first.get("type") == "json_invalid":
            return error_response(
                400, MalformedBody.code, f"body is not valid JSON: {first.get('msg')}", "body"
            )
        field = field_path(first.get("loc", ()))
        message = f"{field}: {first.get('msg', 'invalid')}".removesuffix(".")
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
        return error_response(422, InvalidRequest.code, message, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed", 413: PayloadTooLarge.code}
        code = codes.get(exc.status_code, "http_error")
        field = "body" if exc.status_code == 413 else None
        return error_response(exc.status_code, code, str(exc.detail), field, headers=exc.headers)
