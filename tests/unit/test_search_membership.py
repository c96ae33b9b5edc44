"""The in-memory search (the reference adapter) for a user in 10,000 conversations: the
same answers as for a small user, newest first, membership as of the call."""

from __future__ import annotations

from chatcore.search import query_words
from chatcore.testing import factories as make
from chatcore.testing import in_memory_storage


async def test_a_user_in_10000_conversations() -> None:
    storage = in_memory_storage()
    rooms = [make.group("u-alice", "u-bob") for _ in range(10_000)]
    for room in rooms:
        await storage.conversations.create(room)
    foreign = await make.stored_group(storage, "u-bob", "u-carol")
    for i, room in enumerate(rooms[::500]):
        await storage.messages.append(make.message(room.id, "u-bob", f"budget {i}", seconds=i))
    await storage.messages.append(make.message(foreign.id, "u-bob", "budget secret", seconds=99))

    found = await storage.search.search(
        "u-alice", query_words("budg"), conversation_id=None, limit=50, after=None
    )

    assert [m.body for m in found] == [f"budget {i}" for i in reversed(range(20))]
    await storage.conversations.remove_member(rooms[0].id, "u-alice")
    again = await storage.search.search(
        "u-alice", query_words("budg"), conversation_id=None, limit=50, after=None
    )
    assert [m.body for m in again] == [f"budget {i}" for i in reversed(range(1, 20))]
