"""The real app (create_app) driven in-process through httpx, lifespan included.

By default storage is the in-memory kit; tests that also run on a MongoDB-wire
server (SecantusDB, or the mongod of CHATCORE_TEST_MONGODB_URI) are marked
``@on_every_backend`` (see :mod:`support.app`). The domain's clock is a
:class:`FixedClock` (the ``clock`` fixture) starting now, so tests that care
about ordering move time on explicitly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from httpkit import ApiClient

from chatcore.chat import Storage
from chatcore.testing import FixedClock, in_memory_storage
from entrypoints.app import ChatcoreApp, create_app
from entrypoints.settings import Settings
from support.app import AppFactory, make_container, make_settings, on_fresh_database, running


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC))


@pytest.fixture
async def settings(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> AsyncIterator[Settings]:
    if backend == "memory":
        yield make_settings(tmp_path)
        return
    async with on_fresh_database(tmp_path, str(request.getfixturevalue("mongo_uri"))) as settings:
        yield settings


@pytest.fixture
def app(settings: Settings, backend: str, clock: FixedClock) -> ChatcoreApp:
    storage = in_memory_storage() if backend == "memory" else None
    return create_app(settings, container=make_container(settings, storage, clock))


@pytest.fixture
async def http(app: ChatcoreApp) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as client:
        yield client


@pytest.fixture
def api(http: httpx.AsyncClient) -> ApiClient:
    return ApiClient(http)


@pytest.fixture
def start_app(tmp_path: Path) -> AppFactory:
    """An app of one's own: ``async with start_app(storage=..., **settings) as http``."""

    @asynccontextmanager
    async def start(
        storage: Storage | None = None, **overrides: object
    ) -> AsyncIterator[httpx.AsyncClient]:
        settings = make_settings(tmp_path, **overrides)
        container = make_container(settings, storage or in_memory_storage())
        async with running(create_app(settings, container=container)) as client:
            yield client

    return start
