"""Durability across restarts, and behaviour during and after an outage.

Each test runs its own SecantusDB so it can stop or kill it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from adapters.mongo import MongoStore, MongoTimeouts
from chatcore.errors import Unavailable
from chatcore.models import RefreshToken, User
from chatcore.system import SystemClock
from chatcore.testing import factories as make
from support.secantus import free_port
from support.waiting import eventually, wait_until

from .conftest import ServerFactory
from .helpers import all_messages, assert_no_half_written_send

pytestmark = [pytest.mark.mongo, pytest.mark.slow]

# Outages are what these tests cause: no need to wait the production 2 s for each.
FAST = MongoTimeouts(server_selection_ms=500, connect_ms=500, socket_ms=2000)


async def test_stored_data_survives_a_server_restart(private_server: ServerFactory) -> None:
    server = private_server()
    now = SystemClock().now()
    alice = User(id="u-a", username="alice", display_name="Alice", created_at=now)
    token = RefreshToken(
        token_hash="h-1", user_id="u-a", created_at=now, expires_at=now + timedelta(days=1)
    )
    async with MongoStore(server.uri, database="chat") as store:
        storage = store.storage
        await storage.users.add(alice, "hash")
        conversation = await make.stored_group(storage, "u-a", "u-b")
        sent = [
            (await storage.messages.append(make.message(conversation.id, "u-b", f"m{i}"))).message
            for i in range(5)
        ]
        receipt, _ = await storage.receipts.advance(conversation.id, "u-a", 3, now)
        await storage.refresh_tokens.add(token)
        stored_conversation = await storage.conversations.get(conversation.id)

    await asyncio.to_thread(server.stop)
    await asyncio.to_thread(server.start)

    async with MongoStore(server.uri, database="chat") as store:
        storage = store.storage
        assert await storage.users.get("u-a") == alice
        assert await storage.conversations.get(conversation.id) == stored_conversation
        assert await storage.messages.range(conversation.id, 1, 5) == sent
        assert await storage.receipts.list_for_conversation(conversation.id) == [receipt]
        assert await storage.refresh_tokens.consume("h-1", now) == token


async def test_ping_reports_an_outage_and_recovers(private_server: ServerFactory) -> None:
    server = private_server()
    async with MongoStore(server.uri, timeouts=FAST) as store:
        await store.ping()

        await asyncio.to_thread(server.kill)
        with pytest.raises(Unavailable):
            await store.ping()

        await asyncio.to_thread(server.start)
        await eventually(store.ping, retry_on=Unavailable)


async def test_opening_without_a_server_is_unavailable() -> None:
    nobody_listens = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"
    store = MongoStore(nobody_listens, timeouts=FAST)

    with pytest.raises(Unavailable):
        await store.open()
    with pytest.raises(RuntimeError):
        _ = store.storage


async def test_a_crash_mid_send_leaves_no_half_written_send(
    private_server: ServerFactory,
) -> None:
    # --sync-on-commit: what the server acknowledged must survive a SIGKILL.
    server = private_server("--sync-on-commit")
    async with MongoStore(server.uri, database="chat", timeouts=FAST) as store:
        storage = store.storage
        conversation = await make.stored_group(storage, "u-a", "u-b")
        outcomes: dict[str, bool] = {}  # clientMsgId -> acknowledged
        stop = asyncio.Event()

        async def keep_sending(task: int) -> None:
            i = 0
            while not stop.is_set():
                key, i = f"k{task}-{i:05d}", i + 1
                try:
                    await storage.messages.append(make.message(conversation.id, "u-a", key, key))
                    outcomes[key] = True
                except Unavailable:
                    outcomes[key] = False

        # Several senders, so that some sends are in flight whatever moment it dies.
        senders = [asyncio.create_task(keep_sending(task)) for task in range(4)]
        await wait_until(lambda: len(outcomes) >= 40)
        await asyncio.to_thread(server.kill)
        await wait_until(lambda: False in outcomes.values(), within=20)
        stop.set()
        await asyncio.gather(*senders)

        # Every kind of call reports the outage as Unavailable.
        with pytest.raises(Unavailable):
            await storage.messages.append(make.message(conversation.id, "u-a"))
        with pytest.raises(Unavailable):
            await storage.conversations.get(conversation.id)
        with pytest.raises(Unavailable):
            await storage.receipts.advance(conversation.id, "u-a", 1, SystemClock().now())

        await asyncio.to_thread(server.start)
        # The same repositories work again once the driver has reconnected.
        await eventually(lambda: all_messages(storage, conversation.id), retry_on=Unavailable)
        stored = await assert_no_half_written_send(storage, conversation.id)
        acknowledged = {key for key, ok in outcomes.items() if ok}
        assert acknowledged <= {m.client_msg_id for m in stored}

        # A client retrying the sends it got no answer for stores each exactly once.
        for key in (key for key, ok in outcomes.items() if not ok):
            await storage.messages.append(make.message(conversation.id, "u-a", key, key))
        stored = await assert_no_half_written_send(storage, conversation.id)
        assert sorted(m.client_msg_id or "" for m in stored) == sorted(outcomes)
