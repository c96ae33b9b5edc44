"""GroupCommit: batches form only while a batch is being written, bounded, answered per item."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from adapters.mongo.group_commit import GroupCommit


class Writer:
    """Records each batch; holds a batch until released when ``hold`` is set."""

    def __init__(self, *, hold: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def __call__(self, items: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        await self.release.wait()
        if -1 in items:
            raise ConnectionError("down")
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


async def test_a_lone_item_is_written_at_once_alone() -> None:
    writer = Writer()
    group = GroupCommit(writer, max_batch=10)

    assert await group.submit(1) == 10
    assert await group.submit(2) == 20
    assert writer.batches == [[1], [2]]


async def test_items_arriving_during_a_write_go_together_in_the_next_batch() -> None:
    writer = Writer(hold=True)
    group = GroupCommit(writer, max_batch=10)
    first = asyncio.create_task(group.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert writer.batches == [[1]]  # written without waiting for company

    rest = [asyncio.create_task(group.submit(i)) for i in range(2, 6)]
    await asyncio.sleep(0)
    assert group.queued == 4
    writer.release.set()

    assert await asyncio.gather(first, *rest) == [10, 20, 30, 40, 50]
    assert writer.batches == [[1], [2, 3, 4, 5]]


async def test_batches_are_bounded_and_keep_arrival_order() -> None:
    writer = Writer()
    group = GroupCommit(writer, max_batch=3)

    results = await asyncio.gather(*(group.submit(i) for i in range(1, 9)))

    assert results == [i * 10 for i in range(1, 9)]
    assert writer.batches == [[1, 2, 3], [4, 5, 6], [7, 8]]


async def test_an_items_own_error_fails_only_that_item() -> None:
    group = GroupCommit(Writer(), max_batch=10)

    results = await asyncio.gather(
        group.submit(1), group.submit(-2), group.submit(3), return_exceptions=True
    )

    assert results[0] == 10
    assert isinstance(results[1], ValueError)
    assert results[2] == 30


async def test_a_failed_write_fails_its_whole_batch_and_only_it() -> None:
    writer = Writer()
    group = GroupCommit(writer, max_batch=2)

    results = await asyncio.gather(
        group.submit(-1), group.submit(2), group.submit(3), return_exceptions=True
    )

    assert [type(r) for r in results[:2]] == [ConnectionError, ConnectionError]
    assert results[2] == 30


def test_a_batch_holds_at_least_one_item() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        GroupCommit(Writer(), max_batch=0)
