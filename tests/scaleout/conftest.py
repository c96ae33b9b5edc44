"""Fixtures of the scale-out tests: Redis (shared, with a key prefix of one's own, or
a throwaway redis-server) and several ``chatcore serve`` processes.

Every test here needs Redis: it is skipped, with the reason shown, when no Redis
answers on 127.0.0.1:6379 (``CHATCORE_TEST_REDIS_URL`` points elsewhere), and the
outage tests also when ``redis-server`` is not installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis_support import (
    REDIS_URL,
    RedisServer,
    delete_prefixed,
    redis_server_problem,
    shared_redis_problem,
    unique_prefix,
)


@pytest.fixture(scope="session")
def shared_redis_url() -> str:
    problem = shared_redis_problem()
    if problem is not None:
        pytest.skip(problem)
    return REDIS_URL


@pytest.fixture
async def redis_prefix(shared_redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own on the shared Redis; its keys are deleted after."""
    prefix = unique_prefix()
    try:
        yield prefix
    finally:
        client = aioredis.Redis.from_url(shared_redis_url)
        try:
            await delete_prefixed(client, prefix)
        finally:
            await client.aclose()


@pytest.fixture
async def redis_client(shared_redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(
        shared_redis_url, socket_timeout=2.0, socket_connect_timeout=2.0
    )
    try:
        yield client
    finally:
        await client.aclose()


def _own_redis(tmp_path: Path, *, persistent: bool) -> Iterator[RedisServer]:
    problem = redis_server_problem()
    if problem is not None:
        pytest.skip(problem)
    server = RedisServer(tmp_path / "redis", persistent=persistent)
    server.start()
    try:
        yield server
    finally:
        server.kill()


# Both also ask for the shared Redis, only so that the whole package is skipped alike.
@pytest.fixture
def own_redis(shared_redis_url: str, tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own that keeps nothing: a restart comes back empty."""
    yield from _own_redis(tmp_path, persistent=False)


@pytest.fixture
def own_persistent_redis(shared_redis_url: str, tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own that keeps every write across a kill."""
    yield from _own_redis(tmp_path, persistent=True)
