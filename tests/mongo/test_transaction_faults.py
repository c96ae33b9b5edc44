"""Transactions under faults, over the wire (SecantusDB with failCommand): a write
conflict that outlasts the deadline is Unavailable (503), never an internal error;
a transaction cut off by a stall is killed server-side once the server answers,
so the next one on the same document commits. The time limit is hard: a body
still waiting at the limit is cancelled (Unavailable, its session killed too),
and so is a repository call (adapters.mongo.errors.TimeBound)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo import MongoTimeouts
from adapters.mongo.documents import Document
from adapters.mongo.errors import TimeBound, request_deadline, storage_call, translate_errors
from adapters.mongo.server import ServerInfo
from adapters.mongo.transactions import Transactions
from chatcore.errors import Unavailable
from support.mongo import unique_database_name

from .conftest import fail_next, failpoint_client

pytestmark = [pytest.mark.mongo, pytest.mark.slow]

LIMIT_MS = 500


@pytest.fixture
async def client(fail_server: Any) -> AsyncIterator[AsyncMongoClient[Document]]:
    timeouts = MongoTimeouts(
        server_selection_ms=LIMIT_MS, connect_ms=LIMIT_MS, socket_ms=LIMIT_MS, operation_ms=LIMIT_MS
    )
    async with failpoint_client(fail_server.uri, timeouts) as client:
        yield client


@pytest.fixture
async def db(client: AsyncMongoClient[Document]) -> AsyncIterator[AsyncDatabase[Document]]:
    database = client[unique_database_name()]
    await database.counters.insert_one({"_id": "c", "n": 0})
    try:
        yield database
    finally:
        await client.drop_database(database.name)


async def _run(transactions: Transactions, db: AsyncDatabase[Document]) -> None:
    # As a repository runs it: driver errors become domain errors at this boundary.
    with translate_errors():
        await transactions.run(_increment(db))


def _increment(db: AsyncDatabase[Document]) -> Any:
    async def body(session: AsyncClientSession | None) -> None:
        await db.counters.update_one({"_id": "c"}, {"$inc": {"n": 1}}, session=session)

    return body


async def test_a_conflict_past_the_deadline_is_unavailable(
    client: AsyncMongoClient[Document], db: AsyncDatabase[Document]
) -> None:
    # Every update conflicts, far more often than the deadline leaves retries for.
    await fail_next(
        client, 10_000, "update", errorCode=112, errorLabels=["TransientTransactionError"]
    )
    transactions = Transactions(ServerInfo(client))

    with pytest.raises(Unavailable):
        await _run(transactions, db)

    await client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
    assert (await db.counters.find_one({"_id": "c"}) or {})["n"] == 0


async def test_a_transaction_cut_off_by_a_stall_is_killed_and_the_next_one_commits(
    client: AsyncMongoClient[Document], db: AsyncDatabase[Document]
) -> None:
    transactions = Transactions(ServerInfo(client))
    await _run(transactions, db)  # warm: the profile and a connection
    # The commit stalls past the deadline: the update is done inside the transaction,
    # which stays open on the server holding the document.
    await fail_next(client, 1, "commitTransaction", blockConnection=True, blockTimeMS=3 * LIMIT_MS)

    with pytest.raises(Unavailable):
        await _run(transactions, db)
    assert transactions.reaper.pending == 1

    await transactions.reaper.wait_idle()
    assert transactions.reaper.pending == 0
    await _run(transactions, db)  # no conflict with the cut-off one
    assert (await db.counters.find_one({"_id": "c"}) or {})["n"] in {2, 3}


async def test_a_body_still_waiting_at_the_limit_is_cancelled_and_its_session_killed(
    client: AsyncMongoClient[Document], db: AsyncDatabase[Document]
) -> None:
    # What pymongo's server selection does while the server is unknown: it waits on,
    # past the deadline (it looks at it only every 0.5 s). Here: forever.
    never = asyncio.Event()

    async def stuck(session: AsyncClientSession | None) -> None:
        await db.counters.update_one({"_id": "c"}, {"$inc": {"n": 1}}, session=session)
        await never.wait()

    transactions = Transactions(ServerInfo(client))
    with pytest.raises(Unavailable):
        await transactions.run(stuck)
    await transactions.reaper.wait_idle()  # the open transaction holding "c" is killed
    await _run(transactions, db)  # so this one does not conflict with it
    assert (await db.counters.find_one({"_id": "c"}) or {})["n"] == 1


class _Stuck(TimeBound):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.bound_by(db)
        self.never = asyncio.Event()

    @storage_call
    async def call(self) -> None:
        await self.never.wait()


async def test_a_repository_call_still_waiting_at_the_client_timeout_is_unavailable(
    db: AsyncDatabase[Document],
) -> None:
    stuck = _Stuck(db)
    assert stuck.call_limit == LIMIT_MS / 1000
    with pytest.raises(Unavailable):
        await stuck.call()


async def test_calls_within_a_request_deadline_share_it(db: AsyncDatabase[Document]) -> None:
    stuck = _Stuck(db)
    stuck.call_limit = 3600.0  # alone, the call would wait that long
    with request_deadline(0.05), pytest.raises(Unavailable):
        await stuck.call()
