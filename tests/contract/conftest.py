"""The adapters every contract suite runs against.

To add an adapter, add a factory to ``STORAGES`` or ``PRESENCE_TRACKERS`` (its
key is the test id): an async context manager factory given the fixture request,
yielding a fresh, empty adapter. ``MARKS`` adds pytest marks to an adapter's tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from adapters.mongo import mongo_storage
from adapters.redis import RedisPresenceTracker
from chatcore.chat import Storage
from chatcore.ports import PresenceTracker
from chatcore.system import LocalPresenceTracker
from chatcore.testing import in_memory_storage
from support.mongo import backend_uri, fresh_database

StorageFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[Storage]]
TrackerFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[PresenceTracker]]


@asynccontextmanager
async def _memory_storage(request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
    yield in_memory_storage()


def _mongo_storage(backend: str) -> StorageFactory:
    @asynccontextmanager
    async def open_storage(request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
        async with fresh_database(backend_uri(request, backend)) as db:
            yield mongo_storage(db)

    return open_storage


@asynccontextmanager
async def _local_presence(request: pytest.FixtureRequest) -> AsyncIterator[PresenceTracker]:
    yield LocalPresenceTracker()


# The Redis the "redis" tracker runs on; the test is skipped when nobody answers there.
REDIS_URL = os.environ.get("CHATCORE_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"


@asynccontextmanager
async def _redis_presence(request: pytest.FixtureRequest) -> AsyncIterator[PresenceTracker]:
    # A shared server: every key under a prefix of this test's own, deleted afterwards.
    client = aioredis.Redis.from_url(REDIS_URL, socket_timeout=2.0, socket_connect_timeout=2.0)
    prefix = f"chatcore-test:{uuid.uuid4().hex}:"
    try:
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            pytest.skip(f"no Redis answers at {REDIS_URL} ({exc}); set CHATCORE_TEST_REDIS_URL")
        try:
            yield RedisPresenceTracker(client, prefix=prefix)
        finally:
            keys = [key async for key in client.scan_iter(match=prefix + "*", count=500)]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()


STORAGES: dict[str, StorageFactory] = {
    "memory": _memory_storage,
    "secantus": _mongo_storage("secantus"),
    # The Mongo adapter's fallback for servers without transactions.
    "secantus-standalone": _mongo_storage("secantus-standalone"),
    "mongod": _mongo_storage("mongod"),
}

PRESENCE_TRACKERS: dict[str, TrackerFactory] = {
    "memory": _local_presence,
    "redis": _redis_presence,
}

MARKS: dict[str, tuple[pytest.MarkDecorator, ...]] = {
    "secantus": (pytest.mark.mongo,),
    "secantus-standalone": (pytest.mark.mongo,),
    "mongod": (pytest.mark.mongo,),
}


def _params(names: list[str]) -> list[object]:
    return [pytest.param(name, id=name, marks=MARKS.get(name, ())) for name in names]


@pytest.fixture(params=_params(list(STORAGES)))
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
    async with STORAGES[request.param](request) as opened:
        yield opened


@pytest.fixture(params=_params(list(PRESENCE_TRACKERS)))
async def presence_tracker(request: pytest.FixtureRequest) -> AsyncIterator[PresenceTracker]:
    async with PRESENCE_TRACKERS[request.param](request) as tracker:
        yield tracker
