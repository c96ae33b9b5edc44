"""How many commands (round trips) each operation costs, counted with a CommandListener."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.mongo import ServerInfo, ServerProfile, mongo_storage
from chatcore.chat import Storage
from chatcore.models import ConversationCursor
from chatcore.testing import factories as make
from support.mongo import CommandCounter, backend_uri, fresh_database

pytestmark = pytest.mark.mongo


@pytest.fixture(params=["secantus", "secantus-standalone", "mongod"])
async def counted(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Storage, CommandCounter]]:
    counter = CommandCounter()
    uri = backend_uri(request, request.param)
    async with fresh_database(uri, command_listeners=[counter]) as db:
        storage = mongo_storage(db)
        await storage.messages.count_unread("warm-up", {})  # nothing sent yet
        yield storage, counter


async def _profile(storage: Storage) -> ServerProfile:
    server: ServerInfo = storage.messages._server  # type: ignore[attr-defined]
    return await server.profile()


async def _transactional(storage: Storage) -> bool:
    return (await _profile(storage)).transactions


async def test_a_send_costs_three_commands_in_a_transaction_or_two_without(
    counted: tuple[Storage, CommandCounter],
) -> None:
    storage, counter = counted
    conversation = await make.stored_group(storage, "u-a", "u-b")
    transactional = await _transactional(storage)

    counter.clear()
    await storage.messages.append(make.message(conversation.id, "u-a"))
    plain = counter.commands[:]
    counter.clear()
    await storage.messages.append(make.message(conversation.id, "u-a", client_msg_id="k-1"))
    with_id = counter.commands[:]

    if transactional:
        assert plain == ["findAndModify", "insert", "commitTransaction"]
        assert with_id == plain  # the unique index catches replays: no look-up first
    else:
        assert plain == ["findAndModify", "insert"]
        assert with_id == ["find", "findAndModify", "insert"]


async def test_a_replay_stores_nothing_and_costs_a_few_commands(
    counted: tuple[Storage, CommandCounter],
) -> None:
    storage, counter = counted
    conversation = await make.stored_group(storage, "u-a", "u-b")
    await storage.messages.append(make.message(conversation.id, "u-a", client_msg_id="k-1"))

    counter.clear()
    replay = await storage.messages.append(make.message(conversation.id, "u-a", "x", "k-1"))

    assert not replay.created
    assert "commitTransaction" not in counter.commands
    assert counter.by_name()["insert"] <= 1
    assert counter.count <= 5


async def test_reads_of_a_conversation_list_page_cost_one_command_each(
    counted: tuple[Storage, CommandCounter],
) -> None:
    storage, counter = counted
    conversations = [await make.stored_group(storage, "u-a", f"u-{i}") for i in range(12)]
    for i, c in enumerate(conversations):  # each active at its own time
        await storage.messages.append(make.message(c.id, c.member_ids[1], seconds=i))
    first = await storage.conversations.list_for_member("u-a", limit=5, after=None)
    cursor = ConversationCursor(activity_at=first[-1].activity_at, conversation_id=first[-1].id)

    counter.clear()
    page = await storage.conversations.list_for_member("u-a", limit=5, after=cursor)
    assert counter.commands == ["find"]
    assert len(page) == 5
    counter.clear()
    await storage.receipts.for_user("u-a", [c.id for c in page])
    assert counter.commands == ["find"]
    counter.clear()
    await storage.messages.count_unread("u-a", {c.id: 0 for c in page})
    if (await _profile(storage)).indexed_or:
        assert counter.commands == ["aggregate"]
    else:  # SecantusDB: one indexed aggregate per conversation (see ServerProfile)
        assert counter.commands == ["aggregate"] * len(page)
    counter.clear()
    await storage.messages.range(conversations[0].id, 1, 50)
    assert counter.commands == ["find"]
