"""Helpers of the domain unit tests (imported by name: tests/unit is on sys.path)."""

from __future__ import annotations

from chatcore.models import Message, User
from chatcore.testing import ChatKit

PASSWORD = "correct horse battery"


async def fill(kit: ChatKit, sender: User, conversation_id: str, n: int) -> list[Message]:
    return [
        (await kit.chat.messages.send(sender.id, conversation_id, f"m{i}")).message
        for i in range(1, n + 1)
    ]


async def stored(kit: ChatKit, user: User, conversation_id: str) -> list[Message]:
    history = await kit.chat.messages.history(user.id, conversation_id, limit=100)
    return history.messages
