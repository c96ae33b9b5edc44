"""Contract of RateLimiter (GCRA), for every adapter: the same decisions to the microsecond."""

from __future__ import annotations

import asyncio

from chatcore.ports import RateLimiter
from chatcore.rate_limits import Quota, Rate
from chatcore.testing import FixedClock


async def test_a_fresh_key_allows_a_burst_of_count(rate_limiter: RateLimiter) -> None:
    rate = Rate(3, 6)

    quotas = [await rate_limiter.acquire("k", rate) for _ in range(4)]

    assert quotas == [
        Quota(True, 3, 2, 2.0, 0.0),
        Quota(True, 3, 1, 4.0, 0.0),
        Quota(True, 3, 0, 6.0, 0.0),
        Quota(False, 3, 0, 6.0, 2.0),
    ]


async def test_then_one_action_per_interval(
    rate_limiter: RateLimiter, limiter_clock: FixedClock
) -> None:
    rate = Rate(2, 1)  # one per 500 ms
    await rate_limiter.acquire("k", rate)
    await rate_limiter.acquire("k", rate)

    limiter_clock.advance(milliseconds=499)
    early = await rate_limiter.acquire("k", rate)
    limiter_clock.advance(milliseconds=1)
    on_time = await rate_limiter.acquire("k", rate)

    assert (early.allowed, early.retry_after) == (False, 0.001)
    assert (on_time.allowed, on_time.remaining) == (True, 0)


async def test_refusals_are_not_counted(
    rate_limiter: RateLimiter, limiter_clock: FixedClock
) -> None:
    rate = Rate(1, 10)
    await rate_limiter.acquire("k", rate)
    for _ in range(20):
        assert not (await rate_limiter.acquire("k", rate)).allowed

    limiter_clock.advance(seconds=10)

    assert await rate_limiter.acquire("k", rate) == Quota(True, 1, 0, 10.0, 0.0)


async def test_a_full_period_later_the_key_is_fresh(
    rate_limiter: RateLimiter, limiter_clock: FixedClock
) -> None:
    rate = Rate(5, 2)
    for _ in range(5):
        await rate_limiter.acquire("k", rate)
    limiter_clock.advance(seconds=2)

    assert (await rate_limiter.acquire("k", rate)).remaining == 4


async def test_keys_and_rates_are_independent(rate_limiter: RateLimiter) -> None:
    await rate_limiter.acquire("a", Rate(1, 10))

    assert (await rate_limiter.acquire("b", Rate(1, 10))).allowed
    assert not (await rate_limiter.acquire("a", Rate(1, 10))).allowed


async def test_release_gives_back_one_action(rate_limiter: RateLimiter) -> None:
    rate = Rate(2, 10)
    await rate_limiter.acquire("k", rate)
    await rate_limiter.acquire("k", rate)

    await rate_limiter.release("k", rate)

    assert await rate_limiter.acquire("k", rate) == Quota(True, 2, 0, 10.0, 0.0)
    assert not (await rate_limiter.acquire("k", rate)).allowed


async def test_release_never_goes_below_an_empty_key(rate_limiter: RateLimiter) -> None:
    rate = Rate(2, 10)
    await rate_limiter.release("never-used", rate)
    await rate_limiter.acquire("k", rate)
    for _ in range(5):
        await rate_limiter.release("k", rate)

    allowed = [(await rate_limiter.acquire("k", rate)).allowed for _ in range(3)]

    assert allowed == [True, True, False]


async def test_concurrent_acquires_let_exactly_count_through(rate_limiter: RateLimiter) -> None:
    rate = Rate(10, 60)

    quotas = await asyncio.gather(*(rate_limiter.acquire("k", rate) for _ in range(50)))

    assert sum(q.allowed for q in quotas) == 10
    assert sorted(q.remaining for q in quotas if q.allowed) == list(range(10))


async def test_rates_finer_than_a_millisecond_are_exact(rate_limiter: RateLimiter) -> None:
    rate = Rate(3000, 1)  # one per 333 microseconds

    quotas = [await rate_limiter.acquire("k", rate) for _ in range(3001)]

    assert sum(q.allowed for q in quotas) == 3000
    assert 0 < quotas[-1].retry_after < 0.001
