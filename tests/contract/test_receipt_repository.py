"""Contract of ReceiptRepository, for every adapter."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from chatcore.chat import Storage
from chatcore.models import ReadReceipt
from chatcore.testing import factories as make

T1 = make.T0 + timedelta(seconds=1)
T2 = make.T0 + timedelta(seconds=2, milliseconds=500)


async def test_the_first_advance_stores_a_pointer_even_at_seq_0(storage: Storage) -> None:
    receipt, moved = await storage.receipts.advance("c-1", "u-a", 0, T1)

    assert moved
    assert receipt == ReadReceipt(conversation_id="c-1", user_id="u-a", last_read_seq=0, read_at=T1)
    assert receipt.read_at.utcoffset() == timedelta(0)
    assert await storage.receipts.list_for_conversation("c-1") == [receipt]


async def test_advance_moves_forward_only(storage: Storage) -> None:
    await storage.receipts.advance("c-1", "u-a", 5, T1)

    forward, moved_forward = await storage.receipts.advance("c-1", "u-a", 7, T2)
    same, moved_same = await storage.receipts.advance("c-1", "u-a", 7, T2 + timedelta(seconds=1))
    back, moved_back = await storage.receipts.advance("c-1", "u-a", 3, T2 + timedelta(seconds=2))

    assert (forward.last_read_seq, forward.read_at, moved_forward) == (7, T2, True)
    # Not moving keeps the pointer and its read time as they were.
    assert (same, moved_same) == (forward, False)
    assert (back, moved_back) == (forward, False)
    assert await storage.receipts.list_for_conversation("c-1") == [forward]


async def test_concurrent_advances_end_at_the_highest_seq(storage: Storage) -> None:
    seqs = [3, 9, 1, 7, 9, 2, 8, 5, 4, 6]

    results = await asyncio.gather(*(storage.receipts.advance("c-1", "u-a", s, T1) for s in seqs))

    assert any(moved for _, moved in results)
    assert all(r.last_read_seq >= s for (r, _), s in zip(results, seqs, strict=True))
    [stored] = await storage.receipts.list_for_conversation("c-1")
    assert stored.last_read_seq == 9


async def test_list_for_conversation_has_every_reader_of_that_conversation(
    storage: Storage,
) -> None:
    await storage.receipts.advance("c-1", "u-b", 2, T1)
    await storage.receipts.advance("c-1", "u-a", 4, T2)
    await storage.receipts.advance("c-2", "u-a", 9, T2)

    receipts = await storage.receipts.list_for_conversation("c-1")

    assert sorted(receipts, key=lambda r: r.user_id) == [
        ReadReceipt(conversation_id="c-1", user_id="u-a", last_read_seq=4, read_at=T2),
        ReadReceipt(conversation_id="c-1", user_id="u-b", last_read_seq=2, read_at=T1),
    ]
    assert await storage.receipts.list_for_conversation("c-3") == []


async def test_for_user_gives_the_pointers_of_the_asked_conversations(storage: Storage) -> None:
    await storage.receipts.advance("c-1", "u-a", 4, T1)
    await storage.receipts.advance("c-2", "u-a", 0, T1)
    await storage.receipts.advance("c-3", "u-a", 7, T1)
    await storage.receipts.advance("c-1", "u-b", 9, T1)

    found = await storage.receipts.for_user("u-a", ["c-1", "c-2", "c-4"])

    assert found == {"c-1": 4, "c-2": 0}
    assert await storage.receipts.for_user("u-a", []) == {}
    assert await storage.receipts.for_user("u-z", ["c-1"]) == {}
