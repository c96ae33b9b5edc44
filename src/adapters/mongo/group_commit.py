"""Group commit: requests that arrive while batches are being written go together in the next.

No timer: when a batch may start, a request starts one at once (alone, if it is
alone), so a lone request waits for nothing. While ``max_in_flight`` batches are
in flight, arriving requests queue up, and the next batch takes up to
``max_batch`` of them in arrival order. Batches form only under concurrency, and
their size follows the load: the slower the database answers, the more each
batch carries.

Every request has a key (for sends: the conversation). Two batches in flight
never share a key, and a batch takes a key's requests in arrival order, so
requests with the same key are written in the order they arrived, and the
batches of one process never race each other for the same key. A second batch
in flight keeps the database busy while the first waits on its round trips and
its commit.

The writer answers every item of a batch with a result or an exception of its
own (so one item's failure does not fail the others); if the writer raises,
every item of that batch gets the exception. With ``max_wait``, every request is
answered within about ``max_wait`` of its arrival, queueing included: an item that
waited longer than that for a batch (the batches before it were slow: the
database is stalling) is not written but answered with ``expired()``, and the
writer is told the batch's deadline (its oldest item's arrival + ``max_wait``) to
bound its own work by what is left of it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# The writer answers each item with its result, or with the error for that item alone;
# its second argument is the batch's deadline (time.monotonic()), None without max_wait.
Writer = Callable[[Sequence[T], float | None], Awaitable[Sequence[R | Exception]]]
# (item, its key, when it was queued, its answer)
_Waiting = tuple[T, Hashable, float, "asyncio.Future[R]"]


class GroupCommit(Generic[T, R]):
    """``await group.submit(item)``: the result of ``item``, written in a batch with others.

    ``write(items, deadline)`` must return one outcome per item, in order, and should
    give up (raise) once ``time.monotonic()`` passes ``deadline``; ``key(item)``
    says which items must never be in two batches in flight at once.
    """

    def __init__(
        self,
        write: Writer[T, R],
        *,
        key: Callable[[T], Hashable],
        max_batch: int,
        max_in_flight: int = 1,
        max_wait: float | None = None,
        expired: Callable[[], Exception] = lambda: TimeoutError("waited too long for a batch"),
    ) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be at least 1")
        self._write = write
        self._key = key
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._max_wait = max_wait
        self._expired = expired
        self._queue: list[_Waiting[T, R]] = []
        self._busy_keys: set[Hashable] = set()
        self._writers: set[asyncio.Task[None]] = set()
        self._starting = False  # a writer is created but has not taken its batch yet

    async def submit(self, item: T) -> R:
        """Queue ``item`` for the next batch that may take it and wait for its outcome."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, self._key(item), time.monotonic(), future))
        self._start_batches()
        return await future

    @property
    def queued(self) -> int:
        """Items waiting for a batch (not counting those being written)."""
        return len(self._queue)

    def _start_batches(self) -> None:
        # One writer at a time waits to start; it takes its batch when it first runs,
        # so requests made in the same turn of the event loop go together for free.
        if self._queue and not self._starting and len(self._writers) < self._max_in_flight:
            self._starting = True
            writer = asyncio.create_task(self._write_next())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)

    def _take(self) -> list[_Waiting[T, R]]:
        """The next batch: queued items whose key is not in flight, in arrival order.
        A key skipped once stays skipped, so its items keep their order."""
        batch: list[_Waiting[T, R]] = []
        rest: list[_Waiting[T, R]] = []
        skipped: set[Hashable] = set()
        too_old = -math.inf if self._max_wait is None else time.monotonic() - self._max_wait
        for waiting in self._queue:
            _, key, queued_at, future = waiting
            if future.cancelled():
                continue  # its sender gave up before it was written: it never will be
            if queued_at < too_old:
                if not future.done():
                    future.set_exception(self._expired())
            elif len(batch) < self._max_batch and key not in self._busy_keys and key not in skipped:
                batch.append(waiting)
            else:
                skipped.add(key)
                rest.append(waiting)
        self._queue = rest
        self._busy_keys.update(key for _, key, _, _ in batch)
        return batch

    async def _write_next(self) -> None:
        self._starting = False
        batch = self._take()
        if not batch:
            return  # every queued key is in flight: a finishing batch starts the next
        self._start_batches()  # for those left over (their key is in flight, or too many)
        deadline = None
        if self._max_wait is not None:
            deadline = min(queued_at for _, _, queued_at, _ in batch) + self._max_wait
        try:
            outcomes = await self._write([item for item, _, _, _ in batch], deadline)
        except Exception as exc:  # the batch failed as a whole: every waiter gets it
            outcomes = [exc] * len(batch)
        except BaseException:  # cancelled (loop shutting down): nobody will answer them
            for *_, future in batch:
                future.cancel()
            raise
        finally:
            self._busy_keys.difference_update(key for _, key, _, _ in batch)
        for (*_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the waiter was cancelled; its item was written anyway
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        # This writer is done: its place goes to the next batch.
        self._writers.discard(asyncio.current_task())
        self._start_batches()
