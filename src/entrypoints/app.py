"""``create_app(settings)``: the bundled server as one ASGI app (HTTP API + Socket.IO).

Building the app does no I/O: the Starlette lifespan opens the container's
resources (storage, Redis, the Chat, presence upkeep) and closes them again.
Socket.IO is mounted in front with ``socketio.ASGIApp(sio, other_asgi_app=...)``,
without ``on_startup``/``on_shutdown`` (passing them would silently disable
Starlette's lifespan).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, cast

import socketio
from starlette.applications import Starlette
from starlette.middleware import Middleware

from entrypoints.container import Container
from entrypoints.http.cors import EnvelopeCORSMiddleware
from entrypoints.http.docs import docs_endpoints
from entrypoints.http.endpoints import starlette_routes
from entrypoints.http.errors import EXCEPTION_HANDLERS
from entrypoints.http.middleware import BodySizeLimit, RequestLog
from entrypoints.http.openapi import openapi_document
from entrypoints.http.pages import static_mount
from entrypoints.http.routes import all_endpoints
from entrypoints.runtime import Runtime
from entrypoints.settings import Settings
from entrypoints.socketio import transport
from entrypoints.socketio.handlers import register_socket_handlers
from entrypoints.socketio.polling_guard import oversized_poll, refuse_oversized_poll
from entrypoints.version import chatcore_version

log = logging.getLogger("chatcore")

SOCKETIO_PATH = "/socket.io/"


class ChatcoreApp(socketio.ASGIApp):  # type: ignore[misc]  # socketio ships no types
    """The ASGI app, with handles for tests and embedding: the DI ``container``,
    the ``runtime`` (the Chat once started, metrics), the Socket.IO server ``sio``
    and the inner Starlette ``http_app``."""

    container: Container
    runtime: Runtime
    sio: socketio.AsyncServer
    http_app: Starlette

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Engine.IO would leave an oversized long-polling POST unanswered (polling_guard).
        eio = self.sio.eio
        if scope.get("path", "").startswith(SOCKETIO_PATH) and oversized_poll(
            scope, eio.max_http_buffer_size
        ):
            await refuse_oversized_poll(scope, send, eio, eio.max_http_buffer_size)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, container: Container | None = None) -> ChatcoreApp:
    """Build the server. Pass a ``container`` to override providers (tests do)."""
    if container is None:
        container = Container(settings=settings)
    else:
        container.settings.override(settings)
    sio: socketio.AsyncServer = container.sio()
    runtime: Runtime = container.runtime()

    endpoints = all_endpoints()
    endpoints += docs_endpoints(
        lambda: openapi_document(endpoints, title="chatcore", version=chatcore_version())
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # The stores are async resources, so both calls return awaitables.
        try:
            await cast(Awaitable[None], container.init_resources())
            log.info("chatcore started")
            yield
        finally:
            await cast(Awaitable[None], container.shutdown_resources())
            log.info("chatcore stopped")

    http_app = Starlette(
        routes=[*starlette_routes(endpoints, runtime), static_mount()],
        middleware=[
            Middleware(RequestLog, metrics=runtime.metrics),
            Middleware(
                EnvelopeCORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                expose_headers=[
                    "X-Request-ID",
                    "Retry-After",
                    "RateLimit-Limit",
                    "RateLimit-Remaining",
                    "RateLimit-Reset",
                ],
                max_age=600,
            ),
            Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    # `/api/users/me/` is not `/api/users/me`: a 404 in the envelope, not an empty 307.
    http_app.router.redirect_slashes = False
    # Process-wide fixes of python-engineio's long-polling (see socketio/transport.py).
    transport.install()
    register_socket_handlers(sio, runtime, max_sockets_per_user=settings.max_sockets_per_user)

    app = ChatcoreApp(sio, other_asgi_app=http_app)
    app.container = container
    app.runtime = runtime
    app.sio = sio
    app.http_app = http_app
    return app
