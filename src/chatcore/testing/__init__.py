"""Test kit: in-memory adapters for every port, a settable clock, predictable ids
and a recording notifier, so chat logic can be unit tested with no infrastructure.

>>> import asyncio
>>> from chatcore.testing import in_memory_chat
>>> async def demo():
...     kit = in_memory_chat()
...     alice = await kit.chat.auth.register("alice", "correct horse")
...     bob = await kit.chat.auth.register("bob", "battery staple")
...     dm = await kit.chat.conversations.open_direct(alice.user.id, bob.user.id)
...     sent = await kit.chat.messages.send(alice.user.id, dm.conversation.id, "hi Bob")
...     return sent.message.seq, [e.name for e in kit.notifier.events][-1]
>>> asyncio.run(demo())
(1, 'newMessage')
"""

from __future__ import annotations

from datetime import timedelta

from attrs import frozen

from chatcore.chat import Chat, Storage, build_chat
from chatcore.rate_limits import RateLimits
from chatcore.system import LocalPresenceTracker, LocalRateLimiter
from chatcore.testing.fakes import (
    EPOCH,
    Event,
    FakeAccessTokens,
    FakePasswordHasher,
    FixedClock,
    RecordingNotifier,
    SequentialIds,
)
from chatcore.testing.memory import (
    InMemoryConversationRepository,
    InMemoryMessageRepository,
    InMemoryReceiptRepository,
    InMemoryRefreshTokenRepository,
    InMemoryUserRepository,
    in_memory_storage,
)


@frozen(kw_only=True)
class ChatKit:
    """A :class:`~chatcore.Chat` on in-memory adapters, with handles on the fakes."""

    chat: Chat
    storage: Storage
    clock: FixedClock
    ids: SequentialIds
    notifier: RecordingNotifier
    presence: LocalPresenceTracker
    access_tokens: FakeAccessTokens


def in_memory_chat(
    *,
    storage: Storage | None = None,
    refresh_ttl: timedelta = timedelta(days=30),
    rate_limits: RateLimits | None = None,
) -> ChatKit:
    """Everything in memory: deterministic time and ids, events recorded.

    Rate limits are off unless ``rate_limits`` are given (the clock stands still,
    so a test that sends a burst would otherwise trip them); counted by ``clock``."""
    storage = storage or in_memory_storage()
    clock = FixedClock()
    ids = SequentialIds()
    notifier = RecordingNotifier()
    presence = LocalPresenceTracker()
    tokens = FakeAccessTokens(clock=clock)
    chat = build_chat(
        storage=storage,
        notifier=notifier,
        presence=presence,
        passwords=FakePasswordHasher(),
        access_tokens=tokens,
        clock=clock,
        ids=ids,
        refresh_ttl=refresh_ttl,
        rate_limits=rate_limits or RateLimits.off(),
        rate_limiter=LocalRateLimiter(clock),
    )
    return ChatKit(
        chat=chat,
        storage=storage,
        clock=clock,
        ids=ids,
        notifier=notifier,
        presence=presence,
        access_tokens=tokens,
    )


__all__ = [
    "EPOCH",
    "ChatKit",
    "Event",
    "FakeAccessTokens",
    "FakePasswordHasher",
    "FixedClock",
    "InMemoryConversationRepository",
    "InMemoryMessageRepository",
    "InMemoryReceiptRepository",
    "InMemoryRefreshTokenRepository",
    "InMemoryUserRepository",
    "LocalPresenceTracker",
    "RecordingNotifier",
    "SequentialIds",
    "in_memory_chat",
    "in_memory_storage",
]
