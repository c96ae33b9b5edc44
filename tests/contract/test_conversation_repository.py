"""Contract of ConversationRepository, for every adapter."""

from __future__ import annotations

import asyncio

import attrs
import pytest

from chatcore.chat import Storage
from chatcore.errors import Conflict
from chatcore.models import Conversation, ConversationCursor
from chatcore.testing import factories as make


def _ids(conversations: list[Conversation]) -> list[str]:
    return [c.id for c in conversations]


async def test_create_then_get_returns_the_conversation(storage: Storage) -> None:
    group = make.group("u-a", "u-b", "u-c", name="Team")

    await storage.conversations.create(group)

    assert await storage.conversations.get(group.id) == group
    assert await storage.conversations.get("missing") is None


async def test_create_with_an_existing_id_is_a_conflict(storage: Storage) -> None:
    group = make.group("u-a", "u-b")
    await storage.conversations.create(group)

    with pytest.raises(Conflict):
        await storage.conversations.create(attrs.evolve(make.group("u-c", "u-d"), id=group.id))

    assert await storage.conversations.get(group.id) == group


async def test_get_or_create_direct_is_unique_per_pair_in_either_order(storage: Storage) -> None:
    first = make.direct("u-a", "u-b")

    created, was_created = await storage.conversations.get_or_create_direct(first)
    again, created_again = await storage.conversations.get_or_create_direct(
        make.direct("u-b", "u-a")
    )

    assert (created, was_created) == (first, True)
    assert (again.id, created_again) == (first.id, False)
    assert await storage.conversations.find_direct("u-a", "u-b") == first
    assert await storage.conversations.find_direct("u-b", "u-a") == first
    assert await storage.conversations.find_direct("u-a", "u-c") is None


async def test_direct_conversations_of_different_pairs_are_different(storage: Storage) -> None:
    ab, _ = await storage.conversations.get_or_create_direct(make.direct("u-a", "u-b"))
    ac, created = await storage.conversations.get_or_create_direct(make.direct("u-a", "u-c"))

    assert created
    assert ab.id != ac.id
    assert await storage.conversations.find_direct("u-c", "u-a") == ac


async def test_concurrent_get_or_create_direct_ends_with_one_conversation(
    storage: Storage,
) -> None:
    attempts = [
        make.direct("u-a", "u-b") if i % 2 else make.direct("u-b", "u-a") for i in range(10)
    ]

    results = await asyncio.gather(
        *(storage.conversations.get_or_create_direct(c) for c in attempts)
    )

    winners = [c for c, created in results if created]
    assert len(winners) == 1
    assert {c.id for c, _ in results} == {winners[0].id}
    assert await storage.conversations.find_direct("u-a", "u-b") == winners[0]
    assert _ids(await storage.conversations.list_for_member("u-a", limit=50, after=None)) == [
        winners[0].id
    ]


async def test_get_for_member_hides_the_conversation_from_non_members(storage: Storage) -> None:
    group = make.group("u-a", "u-b")
    await storage.conversations.create(group)

    assert await storage.conversations.get_for_member(group.id, "u-a") == group
    assert await storage.conversations.get_for_member(group.id, "u-x") is None
    assert await storage.conversations.get_for_member("missing", "u-a") is None


async def _five_conversations(storage: Storage) -> list[Conversation]:
    # Activity times 0, 1, 1, 1, 2 seconds: ties must be broken by id descending.
    conversations = [
        make.group("u-a", "u-b", seconds=0),
        make.group("u-a", "u-c", seconds=1),
        make.group("u-a", seconds=1),
        make.group("u-b", "u-a", seconds=1),
        make.group("u-a", "u-d", seconds=2),
    ]
    for c in conversations:
        await storage.conversations.create(c)
    await storage.conversations.create(make.group("u-b", "u-c", seconds=3))  # not u-a's
    return conversations


def _expected_order(conversations: list[Conversation]) -> list[str]:
    ordered = sorted(conversations, key=lambda c: (c.activity_at, c.id), reverse=True)
    return _ids(ordered)


async def test_list_for_member_orders_by_activity_then_id_descending(storage: Storage) -> None:
    mine = await _five_conversations(storage)

    listed = await storage.conversations.list_for_member("u-a", limit=50, after=None)

    assert _ids(listed) == _expected_order(mine)
    assert listed[0].id == mine[4].id
    assert [c.id for c in listed[1:4]] == sorted((c.id for c in mine[1:4]), reverse=True)


async def test_list_for_member_pages_with_a_cursor(storage: Storage) -> None:
    mine = await _five_conversations(storage)
    seen: list[str] = []
    after: ConversationCursor | None = None
    while True:
        page = await storage.conversations.list_for_member("u-a", limit=2, after=after)
        assert len(page) <= 2
        if not page:
            break
        seen.extend(_ids(page))
        after = ConversationCursor(activity_at=page[-1].activity_at, conversation_id=page[-1].id)

    assert seen == _expected_order(mine)


async def test_list_by_ids_for_member_keeps_existing_conversations_of_the_member(
    storage: Storage,
) -> None:
    mine = make.group("u-a", "u-b")
    theirs = make.group("u-b", "u-c")
    for c in (mine, theirs):
        await storage.conversations.create(c)

    found = await storage.conversations.list_by_ids_for_member(
        "u-a", [mine.id, theirs.id, "missing", mine.id]
    )

    assert found == [mine]
    assert await storage.conversations.list_by_ids_for_member("u-a", []) == []


async def test_add_member_adds_once(storage: Storage) -> None:
    group = make.group("u-a", "u-b")
    await storage.conversations.create(group)

    added = await storage.conversations.add_member(group.id, "u-c")
    again = await storage.conversations.add_member(group.id, "u-c")

    assert added is not None
    assert added.member_ids == ("u-a", "u-b", "u-c")
    assert again == added
    assert await storage.conversations.get_for_member(group.id, "u-c") == added
    assert await storage.conversations.add_member("missing", "u-c") is None


async def test_remove_member_removes_and_ignores_non_members(storage: Storage) -> None:
    group = make.group("u-a", "u-b", "u-c")
    await storage.conversations.create(group)

    removed = await storage.conversations.remove_member(group.id, "u-b")
    again = await storage.conversations.remove_member(group.id, "u-b")

    assert removed is not None
    assert removed.member_ids == ("u-a", "u-c")
    assert again == removed
    assert await storage.conversations.get_for_member(group.id, "u-b") is None
    assert _ids(await storage.conversations.list_for_member("u-b", limit=50, after=None)) == []
    assert await storage.conversations.remove_member("missing", "u-a") is None


async def test_contact_ids_are_everyone_sharing_a_conversation(storage: Storage) -> None:
    for c in (
        make.group("u-a", "u-b", "u-c"),
        make.direct("u-a", "u-d"),
        make.group("u-e", "u-f"),
        make.group("u-a"),
    ):
        await storage.conversations.create(c)

    assert await storage.conversations.contact_ids("u-a") == {"u-b", "u-c", "u-d"}
    assert await storage.conversations.contact_ids("u-d") == {"u-a"}
    assert await storage.conversations.contact_ids("u-z") == set()


async def test_list_for_member_pages_through_many_ties_one_by_one(storage: Storage) -> None:
    # All active in the same millisecond: only the ids order them.
    tied = [make.group("u-a", f"u-{i}", seconds=5) for i in range(10)]
    for c in tied:
        await storage.conversations.create(c)
    seen: list[str] = []
    after: ConversationCursor | None = None
    for _ in range(len(tied) + 1):
        page = await storage.conversations.list_for_member("u-a", limit=1, after=after)
        if not page:
            break
        seen.extend(_ids(page))
        after = ConversationCursor(activity_at=page[-1].activity_at, conversation_id=page[-1].id)

    assert seen == sorted(_ids(tied), reverse=True)
