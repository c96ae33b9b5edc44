"""Building the real app for tests: settings, the container, a database of its own,
and the app started in-process (lifespan included) behind an httpx client.

The HTTP tests (tests/http), the live servers of the real-time and browser tests
(tests/realtime/livechat.py) and the lifespan tests (tests/scaleout) all build the
app here, so a test server differs from ``chatcore serve`` only where said below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import argon2
import httpx
import pytest
from asgi_lifespan import LifespanManager
from dependency_injector import providers

from adapters.passwords import Argon2PasswordHasher
from chatcore.chat import Storage
from chatcore.ports import Clock
from entrypoints.app import ChatcoreApp
from entrypoints.container import Container
from entrypoints.settings import Settings
from support.mongo import drop_database, unique_database_name

JWT_SECRET = "test-secret-" + "x" * 52
BASE_URL = "http://testserver"

BACKENDS = ["memory", pytest.param("mongo", marks=pytest.mark.mongo)]
# Runs a test on the in-memory kit and on a MongoDB-wire server (SecantusDB or mongod),
# through the ``backend`` fixture of tests/conftest.py.
on_every_backend = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

AppFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings read from nothing but these values (no environment file), with a fixed
    JWT secret so that tests can mint and forge tokens."""
    values: dict[str, object] = {"data_dir": data_dir, "jwt_secret": JWT_SECRET}
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
