"""Pure ASGI middleware of the HTTP app: request size limit, and the request log.

Pure ASGI (not ``BaseHTTPMiddleware``) so that bodies stream through untouched
and exceptions keep their tracebacks.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Final

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatcore.errors import PayloadTooLarge
from entrypoints.http.errors import (
    REQUEST_ID_SCOPE_KEY,
    chat_error_response,
    internal_error_response,
)
from entrypoints.metrics import UNMATCHED_ROUTE, Metrics

log = logging.getLogger("chatcore.http")

REQUEST_ID_HEADER: Final = "x-request-id"
# A caller's request id is kept (to correlate logs across services) only if it is tame.
_TAME_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413 ``payload_too_large``.

    A Content-Length over the limit is refused before anything is read; a body
    that streams in without one (or lies about it) fails as soon as the running
    count passes the limit, when the route reads it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = PayloadTooLarge(
            f"request body is over {self.max_bytes} bytes", details={"maxBytes": self.max_bytes}
        )
        declared = content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await chat_error_response(too_large)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large
            return message

        await self.app(scope, counting_receive, send)


class RequestLog:
    """One log line and one metrics observation per request, and the last-resort 500.

    Assigns the request id (kept from ``X-Request-ID`` if the caller sent a tame
    one, echoed in the response). An exception that no handler turned into a
    response is logged with its traceback and the request id, and the client gets
    a 500 ``internal_error`` envelope that names only the request id.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "unhandled error method=%s path=%s request_id=%s",
                scope["method"],
                scope["path"],
                request_id,
            )
            if response_started:
                raise  # too late for an error body; let the server drop the connection
            await internal_error_response(request_id)(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            route = _route_template(scope)
            self.metrics.observe_request(scope["method"], route, status, duration)
            log.info(
                "request method=%s route=%s status=%d duration_ms=%.2f request_id=%s",
                scope["method"],
                route,
                status,
                duration * 1000,
                request_id,
            )


def content_length(scope: Scope) -> int | None:
    """The declared Content-Length of an ASGI HTTP scope (None: absent or not a number)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            return candidate if _TAME_REQUEST_ID.fullmatch(candidate) else None
    return None


def _route_template(scope: Scope) -> str:
    # The matched route's template (/api/conversations/{id}), never the raw path,
    # so that metrics keep one series per route.
    route = scope.get("route")
    if isinstance(route, BaseRoute):
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
    return UNMATCHED_ROUTE
