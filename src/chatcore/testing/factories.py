"""Domain objects for tests of storage adapters (the contract suites, the Mongo tests,
benchmarks, an embedder's own repository): ids unique in the process that sort in
creation order, and times at millisecond precision (what stores keep), from ``T0``.

>>> from chatcore.testing import factories as make
>>> room = make.group("u-1", "u-2", name="Team")
>>> hello = make.message(room.id, "u-1", "hi", seconds=5)
>>> (hello.conversation_id == room.id, hello.created_at - make.T0)
(True, datetime.timedelta(seconds=5))
"""

from __future__ import annotations

import itertools
from datetime import timedelta

from chatcore.chat import Storage
from chatcore.models import Conversation, ConversationType, NewMessage, RefreshToken, User
from chatcore.testing.fakes import EPOCH

_counter = itertools.count(1)

# A time with milliseconds (what stores keep), to check they come back exactly.
T0 = EPOCH + timedelta(hours=1, milliseconds=123)


def new_id(prefix: str) -> str:
    """Ids that sort in creation order, like the production generator's."""
    return f"{prefix}-{next(_counter):08d}"


def at(seconds: float = 0) -> timedelta:
    """``seconds`` after ``T0``, as an offset."""
    return timedelta(seconds=seconds)


def user(username: str, display_name: str | None = None, *, seconds: float = 0) -> User:
    return User(
        id=new_id("u"),
        username=username,
        display_name=display_name or username.capitalize(),
        created_at=T0 + at(seconds),
    )


def group(*member_ids: str, name: str = "group", seconds: float = 0) -> Conversation:
    """A group of ``member_ids``, created by the first one (not stored)."""
    created = T0 + at(seconds)
    return Conversation(
        id=new_id("c"),
        type=ConversationType.GROUP,
        name=name,
        member_ids=tuple(member_ids),
        created_by=member_ids[0] if member_ids else None,
        created_at=created,
        last_activity_at=created,
    )


def direct(user_a: str, user_b: str, *, seconds: float = 0) -> Conversation:
    """The direct conversation of two users (not stored)."""
    created = T0 + at(seconds)
    return Conversation(
        id=new_id("c"),
        type=ConversationType.DIRECT,
        name=None,
        member_ids=(user_a, user_b),
        created_by=user_a,
        created_at=created,
        last_activity_at=created,
    )


def message(
    conversation_id: str,
    sender_id: str,
    body: str = "hello",
    client_msg_id: str | None = None,
    *,
    seconds: float = 0,
    thread_id: str | None = None,
    mentions: tuple[str, ...] = (),
) -> NewMessage:
    """A message to append (``MessageRepository.append`` gives it its seq)."""
    return NewMessage(
        id=new_id("m"),
        conversation_id=conversation_id,
        sender_id=sender_id,
        body=body,
        client_msg_id=client_msg_id,
        created_at=T0 + at(seconds),
        thread_id=thread_id,
        mentions=mentions,
    )


def refresh_token(user_id: str, *, expires_in: float = 3600) -> RefreshToken:
    return RefreshToken(
        token_hash=new_id("hash"),
        user_id=user_id,
        created_at=T0,
        expires_at=T0 + at(expires_in),
    )


async def stored_group(storage: Storage, *member_ids: str, name: str = "group") -> Conversation:
    """A :func:`group`, created in ``storage``."""
    conversation = group(*member_ids, name=name)
    await storage.conversations.create(conversation)
    return conversation
