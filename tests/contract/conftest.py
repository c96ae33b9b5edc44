"""The adapters every contract suite runs against.

To add an adapter, add a factory to ``STORAGES``, ``PRESENCE_TRACKERS`` or
``RATE_LIMITERS`` (its key is the test id): an async context manager factory given
the fixture request (rate limiters also the test's clock), yielding a fresh, empty
adapter. ``MARKS`` adds pytest marks to an adapter's tests.
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
from adapters.redis import RedisPresenceTracker, RedisRateLimiter
from chatcore.chat import Storage
from chatcore.ports import PresenceTracker, RateLimiter
from chatcore.system import LocalPresenceTracker, LocalRateLimiter
from chatcore.testing import FixedClock, in_memory_storage
from support.mongo import backend_uri, fresh_database

StorageFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[Storage]]
TrackerFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[PresenceTracker]]
LimiterFactory = Callable[
    [pytest.FixtureRequest, FixedClock], AbstractAsyncContextManager[RateLimiter]
]


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
async def _shared_redis() -> AsyncIterator[tuple[aioredis.Redis, str]]:
    """A client of the shared Redis and a key prefix of this test's own (its keys are
    deleted afterwards); skips the test when nobody answers."""
    client = aioredis.Redis.from_url(REDIS_URL, socket_timeout=2.0, socket_connect_timeout=2.0)
    prefix = f"chatcore-test:{uuid.uuid4().hex}:"
    try:
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            pytest.skip(f"no Redis answers at {REDIS_URL} ({exc}); set CHATCORE_TEST_REDIS_URL")
        try:
            yield client, prefix
        finally:
            keys = [key async for key in client.scan_iter(match=prefix + "*", count=500)]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()


@asynccontextmanager
async def _redis_presence(request: pytest.FixtureRequest) -> AsyncIterator[PresenceTracker]:
    async with _shared_redis() as (client, prefix):
        yield RedisPresenceTracker(client, prefix=prefix)


@asynccontextmanager
async def _local_limiter(
    request: pytest.FixtureRequest, clock: FixedClock
) -> AsyncIterator[RateLimiter]:
    yield LocalRateLimiter(clock)


@asynccontextmanager
async def _redis_limiter(
    request: pytest.FixtureRequest, clock: FixedClock
) -> AsyncIterator[RateLimiter]:
    async with _shared_redis() as (client, prefix):
        # A generous timeout: on a loaded machine a slow answer must not become a fallback.
        yield RedisRateLimiter(client, clock=clock, prefix=prefix, timeout=10.0)


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

RATE_LIMITERS: dict[str, LimiterFactory] = {
    "memory": _local_limiter,
    "redis": _redis_limiter,
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


@pytest.fixture
def limiter_clock() -> FixedClock:
    """The clock the ``rate_limiter`` decides by (tests move it)."""
    return FixedClock()


@pytest.fixture(params=_params(list(RATE_LIMITERS)))
async def rate_limiter(
    request: pytest.FixtureRequest, limiter_clock: FixedClock
) -> AsyncIterator[RateLimiter]:
    async with RATE_LIMITERS[request.param](request, limiter_clock) as limiter:
        yield limiter
