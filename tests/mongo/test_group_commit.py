"""Group commit across processes: seqs stay gapless and unique, replays store one message.

Each test starts separate Python processes (tests/mongo/send_worker.py) that send at once
through their own client, as several chatcore servers on one database would.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo import mongo_storage
from adapters.mongo.documents import CONVERSATIONS, Document
from chatcore.chat import Storage
from chatcore.testing import factories as make
from support.mongo import backend_uri, fresh_database

from .helpers import assert_no_half_written_send

pytestmark = [pytest.mark.mongo, pytest.mark.slow]

WORKER = Path(__file__).with_name("send_worker.py")
SENDERS = ("u-a", "u-b", "u-c")


@pytest.fixture(params=["secantus", "secantus-standalone", "mongod"])
async def shared(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[str, AsyncDatabase[Document], bool]]:
    """(uri, a fresh database, whether the adapter runs transactions there)."""
    uri = backend_uri(request, request.param)
    async with fresh_database(uri) as db:
        transactions = (await mongo_storage(db).messages._server.profile()).transactions  # type: ignore[attr-defined]
        yield uri, db, transactions


async def _in_processes(
    uri: str, db: AsyncDatabase[Document], transactions: bool, per_process: list[list[Any]]
) -> list[list[Any]]:
    """Run one worker process per list of sends, all at once; their answers, in order."""
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            uri,
            db.name,
            "1" if transactions else "0",
            json.dumps(sends),
            stdout=asyncio.subprocess.PIPE,
        )
        for sends in per_process
    ]
    outputs = await asyncio.gather(*(w.communicate() for w in workers))
    assert [w.returncode for w in workers] == [0] * len(workers)
    return [json.loads(out) for out, _ in outputs]


async def test_sends_from_three_processes_get_gapless_unique_seqs(
    shared: tuple[str, AsyncDatabase[Document], bool],
) -> None:
    uri, db, transactions = shared
    storage = mongo_storage(db, transactions=transactions)
    rooms = [await make.stored_group(storage, *SENDERS) for _ in range(3)]
    per_process = [
        [
            [rooms[i % 3].id, SENDERS[p], f"p{p} m{i}", f"p{p}-k{i}" if i % 2 else None]
            for i in range(45)
        ]
        for p in range(3)
    ]

    answers = await _in_processes(uri, db, transactions, per_process)

    assert all(isinstance(a, list) and a[2] for process in answers for a in process)
    for room in rooms:
        messages = await assert_no_half_written_send(storage, room.id)
        assert len(messages) == 45
        # Each process's sends to one conversation keep their order.
        for p in range(3):
            mine = [m.body for m in messages if m.sender_id == SENDERS[p]]
            assert mine == sorted(mine, key=lambda body: int(body.split(" m")[1]))
    stored = {m.id for room in rooms for m in await _messages(storage, room.id)}
    assert stored == {a[1] for process in answers for a in process}


async def test_replays_racing_across_processes_store_one_message_each(
    shared: tuple[str, AsyncDatabase[Document], bool],
) -> None:
    uri, db, transactions = shared
    if not transactions:
        pytest.skip("without transactions a racing replay may leave a gap (documented)")
    storage = mongo_storage(db, transactions=transactions)
    room = await make.stored_group(storage, *SENDERS)
    # Every process sends the same 10 keys (twice each) between messages of its own.
    per_process = [
        [
            [room.id, "u-a", "keyed", f"k{i // 2 % 10}"]
            if i % 2
            else [room.id, SENDERS[p], f"own {p} {i}", None]
            for i in range(40)
        ]
        for p in range(3)
    ]

    answers = await _in_processes(uri, db, transactions, per_process)

    keyed = [a for process in answers for a in process[1::2]]
    assert sum(created for _, _, created in keyed) == 10
    messages = await assert_no_half_written_send(storage, room.id)
    assert len(messages) == 10 + 3 * 20
    by_key = {m.client_msg_id: m for m in messages if m.client_msg_id}
    assert len(by_key) == 10
    for (seq, message_id, _), key in zip(
        keyed, [f"k{i // 2 % 10}" for _ in range(3) for i in range(1, 40, 2)], strict=True
    ):
        assert (seq, message_id) == (by_key[key].seq, by_key[key].id)


async def test_unread_counts_from_counters_match_counting_messages(
    shared: tuple[str, AsyncDatabase[Document], bool],
) -> None:
    _, db, transactions = shared
    storage = mongo_storage(db, transactions=transactions)
    rooms = [await make.stored_group(storage, *SENDERS) for _ in range(4)]
    sends = [make.message(rooms[i % 4].id, SENDERS[i * 7 % 3], f"m{i}") for i in range(60)]
    await asyncio.gather(*(storage.messages.append(s) for s in sends))
    pointers = [{room.id: seq for room in rooms} for seq in (0, 3, 8, 14, 15)]

    for user in SENDERS:
        expected = [await _counted(storage, user, p) for p in pointers]
        assert [await storage.messages.count_unread(user, p) for p in pointers] == expected
    # Conversations stored before the counters (no ownSince) are counted message by message.
    await db[CONVERSATIONS].update_many({}, {"$unset": {"ownSince": "", "ownSeqs": ""}})
    for user in SENDERS:
        expected = [await _counted(storage, user, p) for p in pointers]
        assert [await storage.messages.count_unread(user, p) for p in pointers] == expected


async def test_unread_counts_hold_for_sender_ids_that_cannot_name_a_field(
    shared: tuple[str, AsyncDatabase[Document], bool],
) -> None:
    # A batch whose sender ids hold "." or start with "$" takes the pipeline
    # update; one of plain ids is rewritten whole in a transaction (the guarded
    # pipeline without one): all keep the same counters.
    _, db, transactions = shared
    storage = mongo_storage(db, transactions=transactions)
    for senders in (("u.a", "$u-b", "u-c"), SENDERS):
        rooms = [await make.stored_group(storage, *senders) for _ in range(3)]
        sends = [
            make.message(rooms[i % 3].id, senders[i % 3], f"m{i}", mentions=(senders[(i + 1) % 3],))
            for i in range(30)
        ]
        await asyncio.gather(*(storage.messages.append(s) for s in sends))
        pointers = [{room.id: seq for room in rooms} for seq in (0, 4, 9)]
        for user in senders:
            expected = [await _counted(storage, user, p) for p in pointers]
            assert [await storage.messages.count_unread(user, p) for p in pointers] == expected
            mentions = [
                (await storage.messages.count_unread_and_mentions(user, p))[1] for p in pointers
            ]
            assert mentions == [await _mentioned(storage, user, p) for p in pointers]


async def _mentioned(storage: Storage, user: str, pointers: dict[str, int]) -> dict[str, int]:
    """Messages mentioning ``user`` after each pointer, counted one by one."""
    counts = {
        cid: sum(1 for m in await _messages(storage, cid) if m.seq > after and user in m.mentions)
        for cid, after in pointers.items()
    }
    return {cid: n for cid, n in counts.items() if n}


async def _messages(storage: Storage, conversation_id: str) -> list[Any]:
    return await storage.messages.range(conversation_id, 1, 10_000)


async def _counted(storage: Storage, user: str, pointers: dict[str, int]) -> dict[str, int]:
    counts = {}
    for cid, after in pointers.items():
        n = sum(1 for m in await _messages(storage, cid) if m.seq > after and m.sender_id != user)
        if n:
            counts[cid] = n
    return counts
