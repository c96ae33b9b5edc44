"""Per-key deadlines that run a coroutine when they pass (handshakes, token expiry)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class Deadlines:
    """One pending timer per key; when it fires, ``on_expiry(key)`` runs as a task
    (kept referenced until done). :meth:`cancel` forgets a key before it fires."""

    def __init__(self, on_expiry: Callable[[str], Awaitable[None]]) -> None:
        self._on_expiry = on_expiry
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._running: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._timers)

    def set(self, key: str, delay: float) -> None:
        """Run ``on_expiry(key)`` in ``delay`` seconds (replacing a pending deadline)."""
        self.cancel(key)
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(max(0.0, delay), self._fire, key)

    def cancel(self, key: str) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _fire(self, key: str) -> None:
        if self._timers.pop(key, None) is None:
            return
        task = asyncio.get_running_loop().create_task(self._run(key))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, key: str) -> None:
        await self._on_expiry(key)
