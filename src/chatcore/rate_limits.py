"""Rate limits: what a limit is, the decision a limiter makes, and the arithmetic of both.

The algorithm is GCRA (the generic cell rate algorithm, a sliding window without a
log): for a :class:`Rate` of ``count`` actions per ``period``, each action moves the
key's *theoretical arrival time* (TAT) ``period / count`` further; an action is
allowed while the TAT stays within one ``period`` of now. So a fresh key allows a
burst of ``count``, then one action per ``period / count``; nothing is stored per
action, one number per key. Times are whole microseconds so that every limiter
(this one, the Redis script) computes exactly the same decisions.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final, NamedTuple

from attrs import field, frozen

MICROS: Final = 1_000_000
_RATE_RE: Final = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s\s*")


@frozen
class Rate:
    """``count`` actions per ``period`` seconds (a burst of ``count``, then a steady pace)."""

    count: int = field()
    period: float = field()

    @count.validator
    def _positive_count(self, _: object, value: int) -> None:
        if value < 1:
            raise ValueError("a rate allows at least one action")

    # Microseconds one action costs (at least one), and ``count`` of them: the period
    # in whole intervals, so that a burst is exactly ``count`` (at most ``count``
    # microseconds shorter than the period). Computed once: read on every check.
    interval_us: int = field(init=False, eq=False, repr=False)
    window_us: int = field(init=False, eq=False, repr=False)

    @period.validator
    def _positive_period(self, _: object, value: float) -> None:
        if value <= 0:
            raise ValueError("a rate's period must be positive")

    def __attrs_post_init__(self) -> None:
        interval = max(1, round(self.period * MICROS) // self.count)
        object.__setattr__(self, "interval_us", interval)
        object.__setattr__(self, "window_us", interval * self.count)

    def __str__(self) -> str:
        return f"{self.count}/{self.period:g}s"


def parse_rate(text: str) -> Rate | None:
    """``"<count>/<seconds>s"`` (e.g. ``"30/10s"``) as a Rate; ``"off"`` as None."""
    if text.strip().lower() == "off":
        return None
    match = _RATE_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"a rate is '<count>/<seconds>s' (e.g. '30/10s') or 'off', not {text!r}")
    return Rate(int(match.group(1)), float(match.group(2)))


@frozen(kw_only=True)
class RateLimits:
    """The limits of the public contract (API.md, v1.1 "Rate limits"); None turns one off."""

    # Message sends per user, HTTP and socket together (idempotent replays free).
    send: Rate | None = Rate(30, 10)
    # Failed logins per (client address, username).
    login: Rate | None = Rate(10, 60)
    # Registrations per client address.
    register: Rate | None = Rate(20, 60)
    # Every other authenticated HTTP request and socket event per user, typing excluded.
    api: Rate | None = Rate(600, 60)
    # Typing events per user.
    typing: Rate | None = Rate(20, 10)

    @classmethod
    def off(cls) -> RateLimits:
        """No limit at all (tests and benchmarks that send bursts)."""
        return cls(send=None, login=None, register=None, api=None, typing=None)


class Quota(NamedTuple):
    """A limiter's decision on one action, and where the key stands after it.

    A NamedTuple rather than an attrs class: one is made on every limited action,
    and a tuple is built in a fifth of the time (bench/rate_limits.py)."""

    allowed: bool
    limit: int
    remaining: int
    # Seconds until the key is back to its full ``limit``.
    reset_after: float
    # Seconds until an action would be allowed (0 when this one was).
    retry_after: float


def micros(at: datetime) -> int:
    """``at`` (an aware datetime of millisecond precision, as every Clock gives) as whole
    microseconds since the Unix epoch. ``timestamp()`` is exact to far below a
    microsecond for such values and twice as fast as timedelta arithmetic."""
    return round(at.timestamp() * MICROS)


def gcra(tat: int | None, now: int, rate: Rate) -> tuple[int | None, Quota]:
    """One GCRA step: the key's new TAT (None: unchanged, refused) and the decision.
    The Redis limiter's script is this function, line for line."""
    interval, period = rate.interval_us, rate.window_us
    base = now if tat is None or tat < now else tat
    new_tat = base + interval
    allow_at = new_tat - period
    if now < allow_at:
        return None, refusal(base - now, allow_at - now, rate)
    return new_tat, quota_after(new_tat, now, rate)


def refusal(reset_us: int, retry_us: int, rate: Rate) -> Quota:
    """The decision of a refused action: full again in ``reset_us``, next one in ``retry_us``."""
    return Quota(False, rate.count, 0, reset_us / MICROS, retry_us / MICROS)


def quota_after(new_tat: int, now: int, rate: Rate) -> Quota:
    """The decision of an allowed action that left the key at ``new_tat``."""
    remaining = (rate.window_us - (new_tat - now)) // rate.interval_us
    return Quota(True, rate.count, max(0, remaining), (new_tat - now) / MICROS, 0.0)


def refunded(tat: int | None, now: int, rate: Rate) -> int | None:
    """The TAT after giving one action back (None: nothing left to remember)."""
    if tat is None:
        return None
    new_tat = tat - rate.interval_us
    return new_tat if new_tat > now else None
