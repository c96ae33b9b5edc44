"""MessageService.sync: what a reconnecting client missed, capped per conversation."""

from __future__ import annotations

import pytest
from unitkit import fill

from chatcore.errors import ValidationFailed
from chatcore.limits import (
    SYNC_MAX_CONVERSATIONS,
    SYNC_MAX_MESSAGES_PER_CONVERSATION,
)
from chatcore.models import User
from chatcore.testing import ChatKit


async def test_sync_returns_exactly_what_was_missed_ascending_per_conversation(
    kit: ChatKit, alice: User, bob: User, dm: str, group: str
) -> None:
    in_dm = await fill(kit, bob, dm, 4)
    in_group = await fill(kit, bob, group, 3)

    result = await kit.chat.messages.sync(alice.id, {dm: 1, group: 0})

    assert result.has_more is False
    assert [m for m in result.messages if m.conversation_id == dm] == in_dm[1:]
    assert [m for m in result.messages if m.conversation_id == group] == in_group
    assert sorted(result.messages, key=lambda m: m.id) == sorted(
        in_dm[1:] + in_group, key=lambda m: m.id
    )


async def test_sync_skips_conversations_the_user_is_not_in(
    kit: ChatKit, alice: User, bob: User, carol: User, dm: str
) -> None:
    theirs = (await kit.chat.conversations.open_direct(bob.id, carol.id)).conversation.id
    await fill(kit, bob, theirs, 2)
    mine = await fill(kit, bob, dm, 2)

    result = await kit.chat.messages.sync(alice.id, {theirs: 0, "no-such-id": 0, dm: 0})

    assert result.messages == mine


async def test_sync_when_up_to_date_or_ahead_returns_nothing(
    kit: ChatKit, alice: User, dm: str
) -> None:
    await fill(kit, alice, dm, 2)

    assert (await kit.chat.messages.sync(alice.id, {dm: 2})).messages == []
    assert (await kit.chat.messages.sync(alice.id, {dm: 50})).messages == []
    assert (await kit.chat.messages.sync(alice.id, {})).messages == []


async def test_sync_shows_edits_and_deletes_as_they_are_now(
    kit: ChatKit, alice: User, bob: User, dm: str
) -> None:
    first, second = await fill(kit, alice, dm, 2)
    edited = await kit.chat.messages.edit(alice.id, dm, first.id, "changed")
    deleted = await kit.chat.messages.delete(alice.id, dm, second.id)

    result = await kit.chat.messages.sync(bob.id, {dm: 0})

    assert result.messages == [edited, deleted]


async def test_sync_caps_each_conversation_and_says_there_is_more(
    kit: ChatKit, alice: User, dm: str
) -> None:
    cap = SYNC_MAX_MESSAGES_PER_CONVERSATION
    await fill(kit, alice, dm, cap + 3)

    first = await kit.chat.messages.sync(alice.id, {dm: 0})
    rest = await kit.chat.messages.sync(alice.id, {dm: first.messages[-1].seq})

    assert [m.seq for m in first.messages] == list(range(1, cap + 1))
    assert first.has_more is True
    assert [m.seq for m in rest.messages] == [cap + 1, cap + 2, cap + 3]
    assert rest.has_more is False


async def test_sync_validates_its_input(kit: ChatKit, alice: User, dm: str) -> None:
    with pytest.raises(ValidationFailed):
        await kit.chat.messages.sync(alice.id, {dm: -1})
    too_many = {f"c{i}": 0 for i in range(SYNC_MAX_CONVERSATIONS + 1)}
    with pytest.raises(ValidationFailed):
        await kit.chat.messages.sync(alice.id, too_many)
    at_limit = {f"c{i}": 0 for i in range(SYNC_MAX_CONVERSATIONS - 1)} | {dm: 0}
    assert (await kit.chat.messages.sync(alice.id, at_limit)).messages == []
