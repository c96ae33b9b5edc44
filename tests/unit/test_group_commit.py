"""GroupCommit: batches form only while batches are being written, bounded, answered per item,
never two batches in flight with the same key."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from adapters.mongo.group_commit import GroupCommit


class Writer:
    """Records each batch; holds every batch until released when ``hold`` is set."""

    def __init__(self, *, hold: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.deadlines: list[float | None] = []
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def __call__(self, items: Sequence[int], deadline: float | None) -> list[int | Exception]:
        self.batches.append(list(items))
        self.deadlines.append(deadline)
        await self.release.wait()
        if -1 in items:
            raise ConnectionError("down")
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


def _group(writer: Writer, *, max_batch: int = 10, max_in_flight: int = 1) -> GroupCommit[int, int]:
    # Key: the item's tens (items 11 and 12 share a key, 11 and 21 do not).
    return GroupCommit(
        writer, key=lambda i: abs(i) // 10, max_batch=max_batch, max_in_flight=max_in_flight
    )


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_lone_item_is_written_at_once_alone() -> None:
    writer = Writer()
    group = _group(writer)

    assert await group.submit(1) == 10
    assert await group.submit(2) == 20
    assert writer.batches == [[1], [2]]


async def test_items_arriving_during_a_write_go_together_in_the_next_batch() -> None:
    writer = Writer(hold=True)
    group = _group(writer)
    first = asyncio.create_task(group.submit(1))
    await _settle()
    assert writer.batches == [[1]]  # written without waiting for company

    rest = [asyncio.create_task(group.submit(i)) for i in range(2, 6)]
    await _settle()
    assert group.queued == 4
    writer.release.set()

    assert await asyncio.gather(first, *rest) == [10, 20, 30, 40, 50]
    assert writer.batches == [[1], [2, 3, 4, 5]]


async def test_batches_are_bounded_and_keep_arrival_order() -> None:
    writer = Writer()
    group = _group(writer, max_batch=3)

    results = await asyncio.gather(*(group.submit(i) for i in range(1, 9)))

    assert results == [i * 10 for i in range(1, 9)]
    assert writer.batches == [[1, 2, 3], [4, 5, 6], [7, 8]]


async def test_batches_in_flight_never_share_a_key_and_a_key_keeps_its_order() -> None:
    writer = Writer(hold=True)
    group = _group(writer, max_in_flight=2)
    first = asyncio.create_task(group.submit(11))  # key 1 in flight
    await _settle()
    # 12 and 13 (key 1) must wait; 21 and 31 may go in a second batch at once; 14
    # arrives later but stays behind 12 and 13.
    rest = [asyncio.create_task(group.submit(i)) for i in (12, 21, 13, 31, 14)]
    await _settle()
    assert writer.batches == [[11], [21, 31]]
    assert group.queued == 3

    writer.release.set()
    assert await asyncio.gather(first, *rest) == [110, 120, 210, 130, 310, 140]
    assert writer.batches == [[11], [21, 31], [12, 13, 14]]


async def test_an_items_own_error_fails_only_that_item() -> None:
    group = _group(Writer())

    results = await asyncio.gather(
        group.submit(1), group.submit(-2), group.submit(3), return_exceptions=True
    )

    assert results[0] == 10
    assert isinstance(results[1], ValueError)
    assert results[2] == 30


async def test_a_failed_write_fails_its_whole_batch_and_only_it() -> None:
    writer = Writer()
    group = _group(writer, max_batch=2)

    results = await asyncio.gather(
        group.submit(-1), group.submit(2), group.submit(3), return_exceptions=True
    )

    assert [type(r) for r in results[:2]] == [ConnectionError, ConnectionError]
    assert results[2] == 30


def test_a_batch_holds_at_least_one_item() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        _group(Writer(), max_batch=0)


async def test_an_item_that_waited_too_long_is_answered_without_being_written() -> None:
    writer = Writer(hold=True)
    group = GroupCommit(
        writer,
        key=lambda i: i,
        max_batch=10,
        max_wait=0.3,
        expired=lambda: TimeoutError("too slow"),
    )
    first = asyncio.create_task(group.submit(1))
    await _settle()
    late = asyncio.create_task(group.submit(2))
    await asyncio.sleep(0.6)  # the batch in flight takes longer than max_wait
    fresh = asyncio.create_task(group.submit(3))
    await _settle()
    writer.release.set()

    assert await first == 10
    with pytest.raises(TimeoutError, match="too slow"):
        await late
    assert await fresh == 30
    assert writer.batches == [[1], [3]]


async def test_an_item_cancelled_while_queued_is_never_written() -> None:
    writer = Writer(hold=True)
    group = _group(writer)
    first = asyncio.create_task(group.submit(1))
    await _settle()
    gone = asyncio.create_task(group.submit(2))
    kept = asyncio.create_task(group.submit(3))
    await _settle()
    gone.cancel()
    writer.release.set()

    assert (await first, await kept) == (10, 30)
    assert gone.cancelled()
    assert writer.batches == [[1], [3]]


async def test_the_writer_is_told_the_deadline_of_the_batchs_oldest_item() -> None:
    writer = Writer(hold=True)
    group = GroupCommit(writer, key=lambda i: i, max_batch=10, max_wait=5.0)
    first = asyncio.create_task(group.submit(1))
    await _settle()
    queued = asyncio.get_running_loop().time()
    waiting = [asyncio.create_task(group.submit(i)) for i in (2, 3)]
    await asyncio.sleep(0.2)  # they wait behind the batch in flight
    writer.release.set()
    await asyncio.gather(first, *waiting)

    first_deadline, second_deadline = writer.deadlines
    assert first_deadline is not None
    assert second_deadline is not None
    # The second batch's deadline counts from when its items arrived, not from its start.
    assert queued + 5.0 - 0.1 <= second_deadline <= queued + 5.0 + 0.1
    assert writer.batches == [[1], [2, 3]]


async def test_without_max_wait_the_writer_has_no_deadline() -> None:
    writer = Writer()
    assert await _group(writer).submit(1) == 10
    assert writer.deadlines == [None]
