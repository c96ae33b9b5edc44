"""TypingService: ephemeral indicators to the other members only."""

from __future__ import annotations

import pytest

from chatcore.errors import NotFound
from chatcore.models import User
from chatcore.testing import ChatKit


@pytest.mark.parametrize("is_typing", [True, False])
async def test_typing_goes_to_the_other_members_only(
    kit: ChatKit, alice: User, bob: User, carol: User, dave: User, is_typing: bool
) -> None:
    group = await kit.chat.conversations.create_group(alice.id, "G", [bob.id, carol.id])
    cid = group.conversation.id
    kit.notifier.clear()

    await kit.chat.typing.set_typing(bob.id, cid, is_typing)

    [event] = kit.notifier.events
    assert event.name == "typing"
    assert event.payload == {"conversationId": cid, "userId": bob.id, "isTyping": is_typing}
    assert sorted(event.recipient_ids) == sorted([alice.id, carol.id])


async def test_typing_in_a_direct_conversation_reaches_the_other_one(
    kit: ChatKit, alice: User, bob: User
) -> None:
    dm = await kit.chat.conversations.open_direct(alice.id, bob.id)
    kit.notifier.clear()

    await kit.chat.typing.set_typing(alice.id, dm.conversation.id, True)

    assert [e.recipient_ids for e in kit.notifier.events] == [(bob.id,)]


async def test_typing_alone_in_a_group_tells_nobody(kit: ChatKit, alice: User) -> None:
    solo = await kit.chat.conversations.create_group(alice.id, "Just me", [])
    kit.notifier.clear()

    await kit.chat.typing.set_typing(alice.id, solo.conversation.id, True)

    assert kit.notifier.events == []


async def test_typing_is_not_stored(kit: ChatKit, alice: User, bob: User) -> None:
    dm = await kit.chat.conversations.open_direct(alice.id, bob.id)

    await kit.chat.typing.set_typing(alice.id, dm.conversation.id, True)

    view = await kit.chat.conversations.get(bob.id, dm.conversation.id)
    assert (view.conversation.last_seq, view.unread_count) == (0, 0)
    assert (await kit.chat.messages.history(bob.id, dm.conversation.id)).messages == []


async def test_a_former_member_cannot_signal_typing(
    kit: ChatKit, alice: User, bob: User, carol: User
) -> None:
    group = await kit.chat.conversations.create_group(alice.id, "G", [bob.id, carol.id])
    await kit.chat.conversations.remove_member(carol.id, group.conversation.id, carol.id)
    kit.notifier.clear()

    with pytest.raises(NotFound):
        await kit.chat.typing.set_typing(carol.id, group.conversation.id, True)
    assert kit.notifier.events == []
