"""Building and starting the real app for HTTP tests (imported by conftest and tests)."""

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
from entrypoints.settings import RATE_LIMIT_SETTINGS, Settings

JWT_SECRET = "test-secret-" + "x" * 52
BASE_URL = "http://testserver"

BACKENDS = ["memory", pytest.param("mongo", marks=pytest.mark.mongo)]
# Runs a test on the in-memory kit and on a MongoDB-wire server (SecantusDB or mongod).
on_every_backend = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

AppFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    # Rate limits off unless a test sets them: many tests send bursts (tests/http/
    # test_http_rate_limits.py runs with the contract's defaults).
    values: dict[str, object] = {
        "data_dir": data_dir,
        "jwt_secret": JWT_SECRET,
        **dict.fromkeys(RATE_LIMIT_SETTINGS, "off"),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def make_container(
    settings: Settings, storage: Storage | None, clock: Clock | None = None
) -> Container:
    """The production container, with in-memory ``storage`` if given (else MongoDB from
    the settings), a test ``clock`` if given, and argon2 at its cheapest parameters."""
    container = Container(settings=settings)
    if storage is not None:
        container.storage.override(providers.Object(storage))
    if clock is not None:
        container.clock.override(providers.Object(clock))
    container.passwords.override(providers.Object(Argon2PasswordHasher(argon2.profiles.CHEAPEST)))
    return container


@asynccontextmanager
async def running(app: ChatcoreApp) -> AsyncIterator[httpx.AsyncClient]:
    """The app started (lifespan), and a client talking to it in-process."""
    async with (
        # Generous: opening MongoDB (index creation) can be slow on a loaded machine.
        LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(manager.app), base_url=BASE_URL) as http,
    ):
        yield http
