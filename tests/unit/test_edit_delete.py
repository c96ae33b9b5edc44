"""MessageService.edit and delete: only the sender, soft delete, notifications."""

from __future__ import annotations

import pytest
from unitkit import fill, stored

from chatcore.errors import Conflict, Forbidden, NotFound, ValidationFailed
from chatcore.limits import (
    MAX_BODY_CHARS,
)
from chatcore.models import User
from chatcore.testing import EPOCH, ChatKit


async def test_the_sender_edits_a_message(
    kit: ChatKit, alice: User, bob: User, carol: User, group: str
) -> None:
    original = (await kit.chat.messages.send(alice.id, group, "helo")).message
    kit.clock.advance(minutes=1)
    kit.notifier.clear()

    edited = await kit.chat.messages.edit(alice.id, group, original.id, "  hello  ")

    assert (edited.id, edited.seq, edited.created_at) == (
        original.id,
        original.seq,
        original.created_at,
    )
    assert edited.body == "hello"
    assert edited.edited_at == EPOCH.replace(minute=1)
    [event] = kit.notifier.events
    assert (event.name, event.payload) == ("messageUpdated", edited)
    assert set(event.recipient_ids) == {alice.id, bob.id, carol.id}
    assert await stored(kit, bob, group) == [edited]


async def test_only_the_sender_edits_or_deletes(
    kit: ChatKit, alice: User, bob: User, group: str
) -> None:
    message = (await kit.chat.messages.send(alice.id, group, "mine")).message
    kit.notifier.clear()

    with pytest.raises(Forbidden):
        await kit.chat.messages.edit(bob.id, group, message.id, "yours now")
    with pytest.raises(Forbidden):
        await kit.chat.messages.delete(bob.id, group, message.id)

    assert kit.notifier.events == []
    assert await stored(kit, alice, group) == [message]


@pytest.mark.parametrize("body", ["", "   ", "y" * (MAX_BODY_CHARS + 1)])
async def test_edit_validates_the_body(kit: ChatKit, alice: User, dm: str, body: str) -> None:
    message = (await kit.chat.messages.send(alice.id, dm, "hi")).message

    with pytest.raises(ValidationFailed):
        await kit.chat.messages.edit(alice.id, dm, message.id, body)

    assert await stored(kit, alice, dm) == [message]


async def test_editing_or_deleting_an_unknown_message_is_not_found(
    kit: ChatKit, alice: User, dm: str, group: str
) -> None:
    elsewhere = (await kit.chat.messages.send(alice.id, group, "in the group")).message

    for message_id in ("no-such-message", elsewhere.id):  # ids of other conversations too
        with pytest.raises(NotFound):
            await kit.chat.messages.edit(alice.id, dm, message_id, "x")
        with pytest.raises(NotFound):
            await kit.chat.messages.delete(alice.id, dm, message_id)


async def test_delete_keeps_id_and_seq_and_empties_the_body(
    kit: ChatKit, alice: User, bob: User, dm: str
) -> None:
    first, second, third = await fill(kit, alice, dm, 3)
    kit.clock.advance(hours=1)
    kit.notifier.clear()

    deleted = await kit.chat.messages.delete(alice.id, dm, second.id)

    assert (deleted.id, deleted.seq, deleted.sender_id) == (second.id, 2, alice.id)
    assert deleted.body == ""
    assert deleted.deleted_at == EPOCH.replace(hour=1)
    assert deleted.is_deleted
    [event] = kit.notifier.events
    assert (event.name, event.payload) == ("messageDeleted", deleted)
    assert set(event.recipient_ids) == {alice.id, bob.id}
    assert await stored(kit, bob, dm) == [first, deleted, third]


async def test_deleting_twice_returns_the_deleted_message_unchanged(
    kit: ChatKit, alice: User, dm: str
) -> None:
    message = (await kit.chat.messages.send(alice.id, dm, "oops")).message
    deleted = await kit.chat.messages.delete(alice.id, dm, message.id)
    kit.clock.advance(minutes=5)
    kit.notifier.clear()

    again = await kit.chat.messages.delete(alice.id, dm, message.id)

    assert again == deleted
    assert kit.notifier.events == []


async def test_a_deleted_message_cannot_be_edited(kit: ChatKit, alice: User, dm: str) -> None:
    message = (await kit.chat.messages.send(alice.id, dm, "oops")).message
    deleted = await kit.chat.messages.delete(alice.id, dm, message.id)
    kit.notifier.clear()

    with pytest.raises(Conflict):
        await kit.chat.messages.edit(alice.id, dm, message.id, "resurrected")

    assert kit.notifier.events == []
    assert await stored(kit, alice, dm) == [deleted]
