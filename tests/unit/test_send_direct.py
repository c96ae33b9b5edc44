"""The seed-compatible direct paths: send_direct and history_direct."""

from __future__ import annotations

import pytest
from unitkit import fill

from chatcore.errors import NotFound, ValidationFailed
from chatcore.models import User
from chatcore.testing import ChatKit


async def test_send_direct_creates_the_direct_conversation_on_first_use(
    kit: ChatKit, alice: User, bob: User
) -> None:
    result = await kit.chat.messages.send_direct(alice.id, bob.id, "hi Bob")

    assert result.created
    assert result.message.seq == 1
    cid = result.message.conversation_id
    assert [e.name for e in kit.notifier.events] == [
        "conversationUpdated",
        "conversationUpdated",
        "newMessage",
    ]
    assert {e.recipient_ids for e in kit.notifier.named("conversationUpdated")} == {
        (alice.id,),
        (bob.id,),
    }
    assert set(kit.notifier.named("newMessage")[0].recipient_ids) == {alice.id, bob.id}
    # Every path reaches the same conversation.
    assert (await kit.chat.conversations.open_direct(bob.id, alice.id)).conversation.id == cid
    reply = await kit.chat.messages.send_direct(bob.id, alice.id, "hi Alice")
    assert (reply.message.conversation_id, reply.message.seq) == (cid, 2)
    assert len(kit.notifier.named("conversationUpdated")) == 2


async def test_send_direct_uses_an_existing_direct_conversation(
    kit: ChatKit, alice: User, bob: User, dm: str
) -> None:
    result = await kit.chat.messages.send_direct(bob.id, alice.id, "hello")

    assert result.message.conversation_id == dm
    assert [e.name for e in kit.notifier.events] == ["newMessage"]


async def test_send_direct_is_idempotent(kit: ChatKit, alice: User, bob: User) -> None:
    first = await kit.chat.messages.send_direct(alice.id, bob.id, "hi", "c-9")
    replay = await kit.chat.messages.send_direct(alice.id, bob.id, "hi", "c-9")

    assert replay.created is False
    assert replay.message == first.message
    assert len(kit.notifier.named("newMessage")) == 1


async def test_send_direct_to_an_unknown_user_is_not_found(kit: ChatKit, alice: User) -> None:
    with pytest.raises(NotFound):
        await kit.chat.messages.send_direct(alice.id, "nobody", "hi")

    assert kit.notifier.events == []
    assert (await kit.chat.conversations.list_for_user(alice.id)).items == []


async def test_send_direct_to_oneself_is_refused(kit: ChatKit, alice: User) -> None:
    with pytest.raises(ValidationFailed):
        await kit.chat.messages.send_direct(alice.id, alice.id, "note to self")

    assert (await kit.chat.conversations.list_for_user(alice.id)).items == []


@pytest.mark.parametrize(("body", "client_msg_id"), [("   ", None), ("hi", ""), ("hi", "k" * 65)])
async def test_send_direct_with_bad_input_creates_nothing(
    kit: ChatKit, alice: User, bob: User, body: str, client_msg_id: str | None
) -> None:
    with pytest.raises(ValidationFailed):
        await kit.chat.messages.send_direct(alice.id, bob.id, body, client_msg_id)

    assert kit.notifier.events == []
    assert (await kit.chat.conversations.list_for_user(alice.id)).items == []


async def test_history_direct_reads_the_direct_conversation(
    kit: ChatKit, alice: User, bob: User, dm: str
) -> None:
    sent = await fill(kit, alice, dm, 5)

    mine = await kit.chat.messages.history_direct(alice.id, bob.id)
    his = await kit.chat.messages.history_direct(bob.id, alice.id, before=4, limit=2)
    after = await kit.chat.messages.history_direct(bob.id, alice.id, after=4)

    assert (mine.messages, mine.has_more) == (sent, False)
    assert (his.messages, his.has_more) == (sent[1:3], True)
    assert (after.messages, after.has_more) == (sent[4:], False)


async def test_history_direct_with_someone_never_talked_to_is_empty_and_creates_nothing(
    kit: ChatKit, alice: User, bob: User
) -> None:
    history = await kit.chat.messages.history_direct(alice.id, bob.id)

    assert history.messages == []
    assert history.has_more is False
    assert kit.notifier.events == []
    assert (await kit.chat.conversations.list_for_user(alice.id)).items == []
    assert (await kit.chat.conversations.list_for_user(bob.id)).items == []


async def test_history_direct_errors(kit: ChatKit, alice: User, bob: User) -> None:
    with pytest.raises(NotFound):
        await kit.chat.messages.history_direct(alice.id, "nobody")
    with pytest.raises(ValidationFailed):
        await kit.chat.messages.history_direct(alice.id, alice.id)
    with pytest.raises(ValidationFailed):
        await kit.chat.messages.history_direct(alice.id, bob.id, before=3, after=1)
    with pytest.raises(ValidationFailed):
        await kit.chat.messages.history_direct(alice.id, bob.id, limit=101)


async def test_history_direct_ignores_groups_with_the_same_two_members(
    kit: ChatKit, alice: User, bob: User
) -> None:
    pair_group = await kit.chat.conversations.create_group(alice.id, "Just us", [bob.id])
    await kit.chat.messages.send(alice.id, pair_group.conversation.id, "group talk")

    history = await kit.chat.messages.history_direct(bob.id, alice.id)

    assert history.messages == []
