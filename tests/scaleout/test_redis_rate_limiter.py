"""RedisRateLimiter against real Redis servers: shared between limiters (processes) and
what happens when Redis crashes (SIGKILL), hangs (SIGSTOP) or was never there.

Decided behaviour (docs/decisions.md): the limiter counts per process while Redis
does not answer, logs the outage once and its end once, and reports each decision
taken locally through ``on_fallback`` (``chatcore_rate_limiter_fallbacks`` in /metrics).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis_support import RedisServer

from adapters.redis import RedisRateLimiter
from chatcore.rate_limits import Rate
from chatcore.testing import FixedClock
from support.secantus import free_port

RATE = Rate(3, 60)


def _limiter(
    client: aioredis.Redis,
    clock: FixedClock,
    prefix: str,
    fell_back: list[int],
    retry_interval: float = 0.2,
) -> RedisRateLimiter:
    return RedisRateLimiter(
        client,
        clock=clock,
        prefix=prefix,
        on_fallback=lambda: fell_back.append(1),
        timeout=0.3,
        retry_interval=retry_interval,
    )


@pytest.fixture
async def own_client(own_redis: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(own_redis.url, socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        yield client
    finally:
        await client.aclose()


async def test_two_limiters_on_one_redis_share_one_budget(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    clock = FixedClock()
    fell_back: list[int] = []
    a = _limiter(redis_client, clock, redis_prefix, fell_back)
    b = _limiter(redis_client, clock, redis_prefix, fell_back)

    decisions = [await (a if i % 2 else b).acquire("send:u1", RATE) for i in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert fell_back == []


async def test_no_redis_at_all_counts_per_process(caplog: pytest.LogCaptureFixture) -> None:
    client = aioredis.Redis(port=free_port(), socket_timeout=0.5, socket_connect_timeout=0.5)
    fell_back: list[int] = []
    limiter = _limiter(client, FixedClock(), "p:", fell_back)
    try:
        with caplog.at_level(logging.WARNING, logger="adapters.redis.rate_limiter"):
            decisions = [await limiter.acquire("k", RATE) for _ in range(4)]
    finally:
        await client.aclose()

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert len(fell_back) == 4
    outage_lines = [r for r in caplog.records if "not answering" in r.getMessage()]
    assert len(outage_lines) == 1


async def test_a_crashed_redis_falls_back_then_is_used_again(
    own_redis: RedisServer, own_client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FixedClock()
    fell_back: list[int] = []
    # retry_interval 0: every call asks Redis (no waiting in the test for it to be asked).
    limiter = _limiter(own_client, clock, "p:", fell_back, retry_interval=0)
    assert (await limiter.acquire("k", RATE)).allowed

    own_redis.kill()
    local = [await limiter.acquire("k", RATE) for _ in range(4)]
    assert [d.allowed for d in local] == [True, True, True, False]  # a budget of its own
    assert len(fell_back) == 4

    own_redis.start()
    with caplog.at_level(logging.INFO, logger="adapters.redis.rate_limiter"):
        again = await limiter.acquire("k", RATE)
    assert again.allowed
    assert again.remaining == 2  # Redis came back empty: counted there from scratch
    assert len(fell_back) == 4
    assert any("answers again" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals")
async def test_a_hung_redis_falls_back_after_the_timeout(
    own_redis: RedisServer, own_client: aioredis.Redis
) -> None:
    clock = FixedClock()
    fell_back: list[int] = []
    limiter = _limiter(own_client, clock, "p:", fell_back)
    await limiter.acquire("k", RATE)
    pid = own_redis.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        decisions = [await limiter.acquire("k", RATE) for _ in range(4)]
    finally:
        os.kill(pid, signal.SIGCONT)

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert len(fell_back) == 4
