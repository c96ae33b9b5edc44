"""Building the real app for tests: settings, the container, a database of its own,
and the app started: in-process (lifespan included) behind an httpx client, or
served by uvicorn on a free port.

The HTTP tests (tests/http), the live servers of the real-time and browser tests
(tests/realtime/livechat.py) and the lifespan tests (tests/scaleout) all build the
app here, so a test server differs from ``chatcore serve`` only where said below.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from pathlib import Path

import argon2
import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from dependency_injector import providers

from adapters.passwords import Argon2PasswordHasher
from chatcore.chat import Storage
from chatcore.ports import Clock
from entrypoints.app import ChatcoreApp
from entrypoints.container import Container
from entrypoints.settings import RATE_LIMIT_SETTINGS, Settings
from entrypoints.socketio.lean import uvicorn_ws
from support.mongo import drop_database, unique_database_name

JWT_SECRET = "test-secret-" + "x" * 52
BASE_URL = "http://testserver"
# How long a uvicorn-served app may take to start or stop.
_SERVE_DEADLINE = 10.0

BACKENDS = ["memory", pytest.param("mongo", marks=pytest.mark.mongo)]
# Runs a test on the in-memory kit and on a MongoDB-wire server (SecantusDB or mongod),
# through the ``backend`` fixture of tests/conftest.py.
on_every_backend = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

AppFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings read from nothing but these values (no environment file), with a fixed
    JWT secret so that tests can mint and forge tokens. Rate limits are off unless a
    test sets them: many tests send bursts (the rate-limit suites use the defaults)."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "jwt_secret": JWT_SECRET,
        **dict.fromkeys(RATE_LIMIT_SETTINGS, "off"),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def make_container(
    settings: Settings, storage: Storage | None = None, clock: Clock | None = None
) -> Container:
    """The production container, with in-memory ``storage`` if given (else MongoDB from
    the settings), a test ``clock`` if given, and argon2 at its cheapest parameters
    (registration is not what these tests measure)."""
    container = Container(settings=settings)
    if storage is not None:
        container.storage.override(providers.Object(storage))
    if clock is not None:
        container.clock.override(providers.Object(clock))
    container.passwords.override(providers.Object(Argon2PasswordHasher(argon2.profiles.CHEAPEST)))
    return container


@asynccontextmanager
async def on_fresh_database(
    data_dir: Path, mongo_uri: str, **overrides: object
) -> AsyncIterator[Settings]:
    """Settings pointing at a new, uniquely named database on ``mongo_uri``, dropped after."""
    database = unique_database_name("app")
    try:
        yield make_settings(data_dir, mongodb_uri=mongo_uri, mongodb_database=database, **overrides)
    finally:
        await drop_database(mongo_uri, database)


@asynccontextmanager
async def running(app: ChatcoreApp) -> AsyncIterator[httpx.AsyncClient]:
    """The app started (lifespan), and a client talking to it in-process."""
    async with (
        # Generous: opening MongoDB (index creation) can be slow on a loaded machine.
        LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(manager.app), base_url=BASE_URL) as http,
    ):
        yield http


@asynccontextmanager
async def served(app: ChatcoreApp, ws: str = "lean") -> AsyncIterator[str]:
    """Run ``app`` in uvicorn on a free port of 127.0.0.1 (lifespan on) with the
    WebSocket protocol ``ws`` (a ``CHATCORE_WS_PROTOCOL`` value); yield its URL.

    ``CHATCORE_TEST_SERVER=granian`` serves it with granian instead (a candidate
    measured in bench/RESULTS.md, not a dependency: ``pip install granian`` first)."""
    if os.environ.get("CHATCORE_TEST_SERVER") == "granian":
        async with _served_by_granian(app) as url:
            yield url
        return
    config = uvicorn.Config(
        app,
        ws=uvicorn_ws(ws),
        host="127.0.0.1",
        port=0,  # the OS picks a free port: no race between finding and binding it
        lifespan="on",
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    # uvicorn installs signal handlers in serve(); the test runner owns those.
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(_SERVE_DEADLINE):
            while not server.started:
                if task.done():
                    task.result()  # startup failed: raise its error here
                    raise RuntimeError("uvicorn exited during startup")
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, _SERVE_DEADLINE)


@asynccontextmanager
async def _served_by_granian(app: ChatcoreApp) -> AsyncIterator[str]:
    from granian.constants import Interfaces
    from granian.server.embed import Server

    # granian binds the port itself and does not tell which one 0 gave: pick a free one.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Server(
        app, address="127.0.0.1", port=port, interface=Interfaces.ASGI, log_enabled=False
    )
    task = asyncio.create_task(server.serve())
    url = f"http://127.0.0.1:{port}"
    try:
        async with asyncio.timeout(_SERVE_DEADLINE), httpx.AsyncClient() as http:
            while True:
                if task.done():
                    task.result()
                    raise RuntimeError("granian exited during startup")
                with suppress(httpx.TransportError):
                    if (await http.get(f"{url}/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.02)
        yield url
    finally:
        server.stop()
        with suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, _SERVE_DEADLINE)
