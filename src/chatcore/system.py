"""Production implementations of the Clock and IdGenerator ports (standard library only)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from chatcore.ports import Clock, IdGenerator


def truncate_to_millis(at: datetime) -> datetime:
    """Stores keep milliseconds; so does every time the domain hands out."""
    return at.replace(microsecond=at.microsecond - at.microsecond % 1000)


class SystemClock(Clock):
    """Wall-clock time in UTC at millisecond precision."""

    def now(self) -> datetime:
        return truncate_to_millis(datetime.now(UTC))


class TimeOrderedIdGenerator(IdGenerator):
    """24 hex characters like a MongoDB ObjectId: 6 bytes of milliseconds, 6 random.

    Ids created later sort later (to the millisecond), which keeps index inserts
    append-mostly; they reveal creation time, as ObjectIds do.
    """

    def new_id(self) -> str:
        millis = time.time_ns() // 1_000_000
        return millis.to_bytes(6, "big").hex() + os.urandom(6).hex()
