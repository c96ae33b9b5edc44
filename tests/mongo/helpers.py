"""Building blocks of the Mongo adapter tests."""

from __future__ import annotations

from chatcore.chat import Storage
from chatcore.models import Conversation, ConversationType, Message, NewMessage
from chatcore.system import SystemClock, TimeOrderedIdGenerator

_ids = TimeOrderedIdGenerator()
_clock = SystemClock()


def new_message(
    conversation_id: str, sender_id: str, body: str = "hello", client_msg_id: str | None = None
) -> NewMessage:
    return NewMessage(
        id=_ids.new_id(),
        conversation_id=conversation_id,
        sender_id=sender_id,
        body=body,
        client_msg_id=client_msg_id,
        created_at=_clock.now(),
    )


async def new_group(storage: Storage, *member_ids: str) -> Conversation:
    now = _clock.now()
    conversation = Conversation(
        id=_ids.new_id(),
        type=ConversationType.GROUP,
        name="group",
        member_ids=member_ids,
        created_by=member_ids[0],
        created_at=now,
        last_activity_at=now,
    )
    await storage.conversations.create(conversation)
    return conversation


async def all_messages(storage: Storage, conversation_id: str) -> tuple[int, list[Message]]:
    """The conversation's lastSeq and every stored message up to well beyond it."""
    conversation = await storage.conversations.get(conversation_id)
    assert conversation is not None
    return conversation.last_seq, await storage.messages.range(
        conversation_id, 1, conversation.last_seq + 1000
    )


async def assert_no_half_written_send(storage: Storage, conversation_id: str) -> list[Message]:
    """Every seq 1..lastSeq has exactly one message, there is none beyond, and the
    conversation's lastMessage is the one with seq lastSeq."""
    last_seq, messages = await all_messages(storage, conversation_id)
    assert [m.seq for m in messages] == list(range(1, last_seq + 1))
    assert len({m.id for m in messages}) == len(messages)
    conversation = await storage.conversations.get(conversation_id)
    assert conversation is not None
    assert conversation.last_message == (messages[-1] if messages else None)
    return messages
