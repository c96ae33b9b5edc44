"""RedisRateLimiter: one limit shared by every server process, one round trip per check.

The decision is a Lua script (GCRA, exactly :func:`chatcore.rate_limits.gcra`):
one key per limited subject holding its theoretical arrival time in microseconds,
expiring when it no longer matters. The script runs atomically in Redis, so
concurrent processes never both take the last action. Time comes from the
process's Clock (passed in), not from Redis, so that the same tests drive every
limiter; servers are expected to keep their clocks in step (NTP), and a skew of
a few milliseconds moves a decision by as much.

When Redis does not answer (down, unreachable, too slow), the limiter counts in
this process instead (a :class:`~chatcore.system.LocalRateLimiter`),
logs the outage once and its end once, and reports every decision taken that way
through ``on_fallback`` (the server counts them in /metrics). Limits then hold per
process rather than across them; refusing everything, or letting everything
through, would be worse. After a failure Redis is left alone for
``retry_interval`` seconds, so that an outage costs the hot path no waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chatcore.ports import Clock, RateLimiter
from chatcore.rate_limits import Quota, Rate, micros, quota_after, refusal
from chatcore.system import LocalRateLimiter

log = logging.getLogger(__name__)

# KEYS[1]: the subject's key. ARGV: now, interval, window (all microseconds), and
# "1" to acquire or "0" to release. Returns {allowed, microseconds until the key is
# full again, microseconds until the next action is allowed}.
_GCRA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]))
-- Kept 5 s past its TAT: an expired TAT counts as fresh anyway, and the slack keeps
-- a process whose clock runs a little behind from finding the key gone too early.
local function keep(new_tat)
  if new_tat > now then
    redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
               math.ceil((new_tat - now) / 1000) + 5000)
  else
    redis.call('DEL', KEYS[1])
  end
end
if ARGV[4] == '0' then
  if tat ~= nil then keep(tat - interval) end
  return {1, 0, 0}
end
local base = now
if tat ~= nil and tat > now then base = tat end
local new_tat = base + interval
local allow_at = new_tat - period
if now < allow_at then return {0, base - now, allow_at - now} end
keep(new_tat)
return {1, new_tat - now, 0}
"""


class RedisRateLimiter(RateLimiter):
    """Limits shared through Redis by every process using the same ``prefix``."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        clock: Clock,
        prefix: str = "chatcore:rate:",
        on_fallback: Callable[[], None] = lambda: None,
        timeout: float = 1.0,
        retry_interval: float = 1.0,
    ) -> None:
        self._script = client.register_script(_GCRA)
        self._clock = clock
        self._prefix = prefix
        self._on_fallback = on_fallback
        self._timeout = timeout
        self._retry_interval = retry_interval
        self.fallback = LocalRateLimiter(clock)
        # time.monotonic() before which Redis is not asked (it just failed); 0: healthy.
        self._down_until = 0.0

    async def acquire(self, key: str, rate: Rate) -> Quota:
        now = micros(self._clock.now())
        reply = await self._run(key, now, rate, "1")
        if reply is None:
            return self.fallback.acquire_now(key, rate)
        allowed, reset_us, retry_us = reply
        if allowed:
            return quota_after(now + reset_us, now, rate)
        return refusal(reset_us, retry_us, rate)

    async def release(self, key: str, rate: Rate) -> None:
        if await self._run(key, micros(self._clock.now()), rate, "0") is None:
            self.fallback.release_now(key, rate)

    async def _run(self, key: str, now: int, rate: Rate, mode: str) -> list[int] | None:
        """The script's reply, or None when Redis did not answer (count locally)."""
        if self._down_until and time.monotonic() < self._down_until:
            self._on_fallback()
            return None
        args: list[int | str] = [now, rate.interval_us, rate.window_us, mode]
        try:
            async with asyncio.timeout(self._timeout):
                reply: list[int] = await self._script(keys=[self._prefix + key], args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            if not self._down_until:
                log.warning(
                    "rate limits: Redis is not answering (%r); counting per process until it does",
                    exc,
                )
            self._down_until = time.monotonic() + self._retry_interval
            self._on_fallback()
            return None
        if self._down_until:
            log.info("rate limits: Redis answers again; limits are shared across processes")
            self._down_until = 0.0
        return reply
