"""Storage calls cancelled at their deadline while pymongo waits for a server must
leave the client usable (:mod:`adapters.mongo.cancellation`): on Python 3.11 such a
cancellation could leave pymongo's topology lock taken for good."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from adapters.mongo import create_client
from adapters.mongo.client import MongoTimeouts
from support.secantus import SecantusProcess

pytestmark = [pytest.mark.mongo, pytest.mark.slow]

# pymongo's server selection re-checks every 0.5 s (MIN_HEARTBEAT_INTERVAL): calls
# cancelled around that instant race its wait's own timeout.
_AROUND_A_RECHECK = [0.5 + i * 0.0001 for i in range(200)]


async def test_calls_cancelled_while_the_database_is_down_leave_the_client_working(
    tmp_path: Path,
) -> None:
    database = SecantusProcess(tmp_path / "db")  # not started yet: its port refuses
    client = create_client(database.uri, timeouts=MongoTimeouts(server_selection_ms=30_000))
    failures: Counter[str] = Counter()

    async def cancelled_call(after: float) -> None:
        try:
            async with asyncio.timeout(after):  # as adapters.mongo.errors.hard_limit does
                await client.chatcore.probe.find_one({})
        except TimeoutError:
            pass
        except Exception as exc:  # a RuntimeError from pymongo's lock, without the fix
            failures[repr(exc)] += 1

    try:
        for _ in range(5):
            await asyncio.gather(*(cancelled_call(after) for after in _AROUND_A_RECHECK))
        database.start()
        # The database is back: the client answers (a lost lock would hang it forever).
        async with asyncio.timeout(10):
            found = await client.chatcore.probe.find_one({})
    finally:
        try:
            async with asyncio.timeout(10):  # close() also takes the topology lock
                await client.close()
        finally:
            database.kill()

    assert found is None
    assert not failures, failures
