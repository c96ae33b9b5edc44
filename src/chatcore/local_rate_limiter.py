"""The in-process :class:`~chatcore.ports.RateLimiter`: one server, or a shared one's fallback."""

from __future__ import annotations

from typing import Final

from chatcore.ports import Clock, RateLimiter
from chatcore.rate_limits import Quota, Rate, gcra, micros, refunded

# Expired keys are forgotten every this many acquisitions.
_SWEEP_EVERY: Final = 4096


class LocalRateLimiter(RateLimiter):
    """Counts in this process only (one server, or the fallback when Redis is down).

    One integer per key; keys whose TAT has passed are forgotten now and then, so
    memory follows the number of recently active keys, not of every key ever seen.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tats: dict[str, int] = {}
        self._since_sweep = 0

    async def acquire(self, key: str, rate: Rate) -> Quota:
        return self.acquire_now(key, rate)

    async def release(self, key: str, rate: Rate) -> None:
        self.release_now(key, rate)

    def acquire_now(self, key: str, rate: Rate) -> Quota:
        """:meth:`acquire` without the await (for callers that are not coroutines)."""
        now = micros(self._clock.now())
        new_tat, quota = gcra(self._tats.get(key), now, rate)
        if new_tat is not None:
            self._tats[key] = new_tat
            self._since_sweep += 1
            if self._since_sweep >= _SWEEP_EVERY:
                self._sweep(now)
        return quota

    def release_now(self, key: str, rate: Rate) -> None:
        """:meth:`release` without the await."""
        new_tat = refunded(self._tats.get(key), micros(self._clock.now()), rate)
        if new_tat is None:
            self._tats.pop(key, None)
        else:
            self._tats[key] = new_tat

    def __len__(self) -> int:
        """How many keys are remembered (expired ones until the next sweep)."""
        return len(self._tats)

    def _sweep(self, now: int) -> None:
        self._since_sweep = 0
        self._tats = {k: tat for k, tat in self._tats.items() if tat > now}
