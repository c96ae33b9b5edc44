"""Building domain objects for the contract suites: unique ids, millisecond times."""

from __future__ import annotations

import itertools
from datetime import timedelta

from chatcore.models import Conversation, ConversationType, NewMessage, RefreshToken, User
from chatcore.testing import EPOCH

_counter = itertools.count(1)

# A time with milliseconds (what stores keep), to check they come back exactly.
T0 = EPOCH + timedelta(hours=1, milliseconds=123)


def new_id(prefix: str) -> str:
    """Ids that sort in creation order, like the production generator's."""
    return f"{prefix}-{next(_counter):08d}"


def at(seconds: float = 0) -> timedelta:
    return timedelta(seconds=seconds)


def user(username: str, display_name: str | None = None, *, seconds: float = 0) -> User:
    return User(
        id=new_id("u"),
        username=username,
        display_name=display_name or username.capitalize(),
        created_at=T0 + at(seconds),
    )


def group(*member_ids: str, name: str = "group", seconds: float = 0) -> Conversation:
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
    *,
    client_msg_id: str | None = None,
    seconds: float = 0,
    thread_id: str | None = None,
    mentions: tuple[str, ...] = (),
) -> NewMessage:
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
