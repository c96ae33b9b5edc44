"""Waiting for a condition by polling with a deadline (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_until(
    condition: Callable[[], bool], *, within: float = 10.0, interval: float = 0.01
) -> None:
    """Return as soon as ``condition()`` is true; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


async def eventually(
    attempt: Callable[[], Awaitable[T]],
    *,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    within: float = 15.0,
    interval: float = 0.05,
) -> T:
    """The first result of ``attempt()`` that does not raise ``retry_on``, retrying
    until ``within`` seconds have passed (then the last error propagates)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await attempt()
        except retry_on:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval)
