"""Who may call what, and how much: API keys, body size and in-flight limits.

* Keys arrive as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``. Predict routes need a
  predict or admin key when predict keys are configured; admin routes always need an admin key
  (no key or an unknown one: 401; a predict key on an admin route: 403).
* Bodies over ``max_body_bytes`` get 413 before they are read whole.
* At most ``max_in_flight`` predictions run per worker; the next one gets 503 with
  ``Retry-After`` at once instead of queueing without bound.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import Forbidden, Overloaded, PayloadTooLarge, Unauthorized, error_response
from shipyard.keyfiles import read_or_create
from shipyard.settings import Settings

ADMIN_KEY_FILE = "admin.key"

# Declared for the OpenAPI schema ("Authorize" in /docs); checked by KeyRing below.
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key.")
bearer = HTTPBearer(auto_error=False, description="API key as a bearer token.")


def admin_key_path(state_dir: Path) -> Path:
    return state_dir / "secrets" / ADMIN_KEY_FILE


def admin_keys(settings: Settings) -> list[str]:
    """Configured admin keys, else the embedded stack's own key file (created once)."""
    configured = [k.get_secret_value() for k in settings.serving.admin_keys]
    return configured or [read_or_create(admin_key_path(settings.state_dir))]


class KeyRing:
    def __init__(self, predict: list[str], admin: list[str]) -> None:
        self._predict = [k.encode() for k in predict]
        self._admin = [k.encode() for k in admin]

    @staticmethod
    def _presented(request: Request) -> bytes | None:
        key = request.headers.get("x-api-key")
        if key is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            key = token.strip() if scheme.lower() == "bearer" else None
        return key.encode() if key else None

    @staticmethod
    def _matches(key: bytes, keys: list[bytes]) -> bool:
        # Compare against every key in constant time: timing reveals nothing about any of them.
        found = False
        for candidate in keys:
            found |= hmac.compare_digest(key, candidate)
        return found

    def check_predict(self, request: Request) -> None:
        if not self._predict:
            return
        key = self._presented(request)
        if key is None or not self._matches(key, self._predict + self._admin):
            raise Unauthorized("a valid API key is required (X-API-Key or Bearer)")

    def check_admin(self, request: Request) -> None:
        key = self._presented(request)
        if key is None:
            raise Unauthorized("admin routes require an admin key (X-API-Key or Bearer)")
        if self._matches(key, self._admin):
            return
        if self._matches(key, self._predict):
            raise Forbidden("this key may predict but not administer")
        raise Unauthorized("unknown admin key")


class InFlight:
    """A counter per worker; the event loop is single-threaded, so no lock is needed."""

    def __init__(self, limit: int, on_change: Any = None) -> None:
        self.limit = limit
        self.count = 0
        self._gauge = on_change

    def enter(self) -> None:
        if self.count >= self.limit:
            raise Overloaded(
                f"{self.count} predictions in flight (limit {self.limit}): retry shortly",
                retry_after_s=1,
            )
        self.count += 1
        if self._gauge is not None:
            self._gauge.inc()

    def leave(self) -> None:
        self.count -= 1
        if self._gauge is not None:
            self._gauge.dec()


class BodyLimit:
    """ASGI middleware: 413 for bodies over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int, on_reject: Any = None) -> None:
        self.app = app
        self.limit = limit
        self._on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await self._reject(scope, receive, send)
                    return
                break
        received = 0
        limit = self.limit

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the app while it reads the body: its exception handler
                    # answers 413 with the error body.
                    if self._on_reject is not None:
                        self._on_reject()
                    raise StarletteHTTPException(413, _too_large(limit))
            return message

        await self.app(scope, counted, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._on_reject is not None:
            self._on_reject()
        response = error_response(413, PayloadTooLarge.code, _too_large(self.limit), "body")
        await response(scope, receive, send)


def _too_large(limit: int) -> str:
    return f"body larger than {limit} bytes: send fewer instances per request"
