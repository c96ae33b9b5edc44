"""Group commit: requests that arrive while a batch is being written go together in the next.

No timer: when nothing is being written, a request starts a batch at once (alone),
so a lone request waits for nothing. While that batch is in flight, the requests
that arrive queue up, and the next batch takes up to ``max_batch`` of them in
arrival order. Batches form only under concurrency, and their size follows the
load: the slower the database answers, the more each batch carries.

One batch is written at a time per :class:`GroupCommit`. The writer answers
every item of a batch with a result or an exception of its own (so one item's
failure does not fail the others); if the writer raises, every item of that
batch gets the exception.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# The writer answers each item with its result, or with the error for that item alone.
Writer = Callable[[Sequence[T]], Awaitable[Sequence[R | Exception]]]


class GroupCommit(Generic[T, R]):
    """``await group.submit(item)``: the result of ``item``, written in a batch with others.

    ``write(items)`` must return one outcome per item, in order.
    """

    def __init__(self, write: Writer[T, R], *, max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._write = write
        self._max_batch = max_batch
        self._queue: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Queue ``item`` for the next batch and wait for its outcome."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        return await future

    @property
    def queued(self) -> int:
        """Items waiting for a batch (not counting the one being written)."""
        return len(self._queue)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = [
                    self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))
                ]
                await self._write_one(batch)
        finally:
            self._writer = None
            # Cancelled (loop shutting down): nobody would ever answer these.
            while self._queue:
                _, future = self._queue.popleft()
                if not future.done():
                    future.cancel()

    async def _write_one(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            outcomes = await self._write([item for item, _ in batch])
        except Exception as exc:  # the batch failed as a whole: every waiter gets it
            outcomes = [exc] * len(batch)
        except BaseException:  # cancelled (loop shutting down): nobody will answer them
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the waiter was cancelled; its item was written anyway
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
