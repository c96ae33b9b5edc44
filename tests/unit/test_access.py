"""The one access rule: to a non-member a conversation does not exist (NotFound, never
Forbidden), on every use case, and the answer is the same as for an id that exists
nowhere, so conversation ids cannot be probed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import pytest

from chatcore.errors import NotFound
from chatcore.models import User
from chatcore.testing import ChatKit


@attrs.frozen
class Scene:
    kit: ChatKit
    conversation_id: str
    message_id: str
    member: User
    outsider: User


Operation = Callable[[Scene, str], Awaitable[object]]

OPERATIONS: dict[str, Operation] = {
    "get": lambda s, cid: s.kit.chat.conversations.get(s.outsider.id, cid),
    "history": lambda s, cid: s.kit.chat.messages.history(s.outsider.id, cid),
    "history-after": lambda s, cid: s.kit.chat.messages.history(s.outsider.id, cid, after=0),
    "send": lambda s, cid: s.kit.chat.messages.send(s.outsider.id, cid, "let me in"),
    "send-idempotent": lambda s, cid: s.kit.chat.messages.send(s.outsider.id, cid, "x", "c-1"),
    "edit": lambda s, cid: s.kit.chat.messages.edit(s.outsider.id, cid, s.message_id, "mine"),
    "delete": lambda s, cid: s.kit.chat.messages.delete(s.outsider.id, cid, s.message_id),
    "mark-read": lambda s, cid: s.kit.chat.receipts.mark_read(s.outsider.id, cid, 1),
    "receipts": lambda s, cid: s.kit.chat.receipts.list_for_conversation(s.outsider.id, cid),
    "typing": lambda s, cid: s.kit.chat.typing.set_typing(s.outsider.id, cid, True),
    "add-self": lambda s, cid: s.kit.chat.conversations.add_member(
        s.outsider.id, cid, s.outsider.id
    ),
    "add-member": lambda s, cid: s.kit.chat.conversations.add_member(
        s.outsider.id, cid, s.member.id
    ),
    "remove-member": lambda s, cid: s.kit.chat.conversations.remove_member(
        s.outsider.id, cid, s.member.id
    ),
    "remove-self": lambda s, cid: s.kit.chat.conversations.remove_member(
        s.outsider.id, cid, s.outsider.id
    ),
}


@pytest.mark.parametrize("kind", ["direct", "group"])
@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_a_non_member_sees_not_found_everywhere(
    kit: ChatKit, alice: User, bob: User, carol: User, kind: str, operation: str
) -> None:
    if kind == "direct":
        view = await kit.chat.conversations.open_direct(alice.id, bob.id)
    else:
        view = await kit.chat.conversations.create_group(bob.id, "Private", [alice.id])
    cid = view.conversation.id
    message = (await kit.chat.messages.send(alice.id, cid, "secret")).message
    await kit.chat.receipts.mark_read(bob.id, cid, 1)
    scene = Scene(kit=kit, conversation_id=cid, message_id=message.id, member=alice, outsider=carol)
    before = await kit.chat.conversations.get(bob.id, cid)
    kit.notifier.clear()

    with pytest.raises(NotFound) as hidden:
        await OPERATIONS[operation](scene, cid)
    with pytest.raises(NotFound) as missing:
        await OPERATIONS[operation](scene, "no-such-conversation")

    assert (hidden.value.message, hidden.value.details) == (
        missing.value.message,
        missing.value.details,
    )
    # Nothing was changed and nobody was told anything.
    assert kit.notifier.events == []
    assert await kit.chat.conversations.get(bob.id, cid) == before
    assert (await kit.chat.messages.history(bob.id, cid)).messages == [message]
