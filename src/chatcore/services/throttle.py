"""Throttle: the contract's rate limits, applied by the services that do the limited actions.

Services call it before they change anything, so an action over its limit changes
nothing, and an embedding application gets the same limits as the bundled server.
An action that turns out not to count (an idempotent replay, a successful login)
is given back. The edges only map :class:`~chatcore.errors.RateLimited` to their
answer; for the ``RateLimit-*`` headers of HTTP they read :func:`last_quota`.
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from typing import Final

from attrs import define, field

from chatcore.errors import RateLimited
from chatcore.ports import RateLimiter
from chatcore.rate_limits import MICROS, Quota, Rate, RateLimits

# Stands for the client address when the caller gave none (an embedding application).
NO_ADDRESS: Final = "-"

# The decision on the last limited action of the current task (request or event), so
# that an edge can publish it without every service returning it.
_last_quota: ContextVar[Quota | None] = ContextVar("chatcore_last_quota", default=None)


def last_quota() -> Quota | None:
    """The decision on the last limited action taken in this task (None: none was)."""
    return _last_quota.get()


def forget_last_quota() -> None:
    """Start a new request or event: no decision yet."""
    _last_quota.set(None)


def retry_after_seconds(quota: Quota) -> int:
    """Whole seconds to wait (``Retry-After`` and ``details.retryAfter``): at least 1."""
    return max(1, math.ceil(quota.retry_after))


@define
class Throttle:
    """Per-user (per-address before login) limits of sends, logins, registrations,
    other requests and typing; ``limits`` None entries are off."""

    limiter: RateLimiter
    limits: RateLimits = field(factory=RateLimits)

    async def send(self, user_id: str) -> None:
        """Count a message send; RateLimited when over ``limits.send``."""
        await self._take("send", self.limits.send, "send:" + user_id, "message sends")

    async def send_was_replay(self, user_id: str) -> None:
        """The send counted by :meth:`send` stored nothing (idempotent replay): free."""
        await self._give_back(self.limits.send, "send:" + user_id)

    async def login_attempt(self, address: str | None, username: str) -> None:
        """Count a login attempt; RateLimited when the failed ones are over ``limits.login``."""
        await self._take("login", self.limits.login, _login_key(address, username), "logins")

    async def login_succeeded(self, address: str | None, username: str) -> None:
        """Only failed logins count: give back the attempt that succeeded."""
        await self._give_back(self.limits.login, _login_key(address, username))

    async def register(self, address: str | None) -> None:
        """Count a registration from ``address``; RateLimited over ``limits.register``."""
        key = "register:" + (address or NO_ADDRESS)
        await self._take("register", self.limits.register, key, "registrations")

    async def api(self, user_id: str) -> None:
        """Count any other request or event of a user; RateLimited over ``limits.api``."""
        await self._take("api", self.limits.api, "api:" + user_id, "requests")

    async def typing(self, user_id: str) -> None:
        """Count a typing event; RateLimited over ``limits.typing`` (the event is dropped)."""
        await self._take("typing", self.limits.typing, "typing:" + user_id, "typing events")

    async def _take(self, limit: str, rate: Rate | None, key: str, what: str) -> None:
        if rate is None:
            return
        quota = await self.limiter.acquire(key, rate)
        _last_quota.set(quota)
        if not quota.allowed:
            wait = retry_after_seconds(quota)
            raise RateLimited(
                f"too many {what}: at most {rate}; retry in {wait} s",
                retry_after=wait,
                limit=limit,
                quota=quota,
                details={"retryAfter": wait},
            )

    async def _give_back(self, rate: Rate | None, key: str) -> None:
        if rate is None:
            return
        await self.limiter.release(key, rate)
        quota = _last_quota.get()
        if quota is not None and quota.allowed:
            # What an edge publishes is where the key stands now, after the refund.
            _last_quota.set(
                quota._replace(
                    remaining=min(quota.limit, quota.remaining + 1),
                    reset_after=max(0.0, quota.reset_after - rate.interval_us / MICROS),
                )
            )


def _login_key(address: str | None, username: str) -> str:
    # Usernames are case-insensitive: "Alice" and "alice" share one budget.
    return f"login:{address or NO_ADDRESS}:{username.lower()}"
