"""Checks of the Mongo adapter tests (objects to store: ``chatcore.testing.factories``)."""

from __future__ import annotations

from chatcore.chat import Storage
from chatcore.models import Message


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
    seqs = [m.seq for m in messages]
    assert seqs == list(range(1, last_seq + 1)), f"seqs {seqs}, lastSeq {last_seq}"
    assert len({m.id for m in messages}) == len(messages)
    conversation = await storage.conversations.get(conversation_id)
    assert conversation is not None
    assert conversation.last_message == (messages[-1] if messages else None)
    return messages
