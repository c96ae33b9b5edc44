"""Domain models: plain, frozen attrs classes with no knowledge of storage or wire."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Generic, TypeVar

from attrs import frozen

T = TypeVar("T")


class ConversationType(enum.StrEnum):
    """A direct conversation has exactly two members and is unique per pair."""

    DIRECT = "direct"
    GROUP = "group"


@frozen(kw_only=True)
class User:
    """A registered user as others may see them (no secrets)."""

    id: str
    username: str
    display_name: str
    created_at: datetime
    last_seen_at: datetime | None = None


@frozen(kw_only=True)
class Credentials:
    """A user with the password hash, only for authentication."""

    user: User
    password_hash: str


@frozen(kw_only=True)
class ThreadSummary:
    """A thread root's summary: how many replies, the newest one's time, who replied
    (in order of their first reply)."""

    reply_count: int
    last_reply_at: datetime
    participant_ids: tuple[str, ...]


@frozen(kw_only=True)
class Reaction:
    """One emoji on a message and who reacted with it, in the order they did."""

    emoji: str
    user_ids: tuple[str, ...]


@frozen(kw_only=True)
class Message:
    """A stored message; ``seq`` is gapless per conversation, starting at 1.

    ``thread_id`` is the root's id on a thread reply (None on top-level messages);
    ``thread`` is set on a root once it has a reply. ``reactions`` are in order of
    each emoji's first use; ``mentions`` are the members named as ``@username``.
    """

    id: str
    conversation_id: str
    seq: int
    sender_id: str
    body: str
    client_msg_id: str | None
    created_at: datetime
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    thread_id: str | None = None
    thread: ThreadSummary | None = None
    reactions: tuple[Reaction, ...] = ()
    mentions: tuple[str, ...] = ()

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


@frozen(kw_only=True)
class Conversation:
    """A conversation as stored: members, the seq counter and the newest message."""

    id: str
    type: ConversationType
    name: str | None
    member_ids: tuple[str, ...]
    created_by: str | None
    created_at: datetime
    last_seq: int = 0
    last_message: Message | None = None
    last_activity_at: datetime | None = None

    def has_member(self, user_id: str) -> bool:
        return user_id in self.member_ids

    @property
    def activity_at(self) -> datetime:
        """When something last happened here: the sort key of conversation lists."""
        return self.last_activity_at or self.created_at


@frozen(kw_only=True)
class ConversationView:
    """A conversation as one member sees it: with their read pointer and unread count."""

    conversation: Conversation
    viewer_id: str
    last_read_seq: int
    unread_count: int
    unread_mentions: int = 0


@frozen(kw_only=True)
class ReadReceipt:
    """ "User U has read conversation C up to seq N"; only ever moves forward."""

    conversation_id: str
    user_id: str
    last_read_seq: int
    read_at: datetime


@frozen(kw_only=True)
class Presence:
    """Whether a user has any live connection, and when they were last seen."""

    user_id: str
    online: bool
    last_seen_at: datetime | None


@frozen(kw_only=True)
class NewMessage:
    """What a send asks the message store to append (seq is assigned by the store)."""

    id: str
    conversation_id: str
    sender_id: str
    body: str
    client_msg_id: str | None
    created_at: datetime
    # A thread reply: the root's id (a top-level message of the same conversation).
    thread_id: str | None = None
    # Users named in the body; the store keeps those who are members when it stores.
    mentions: tuple[str, ...] = ()


@frozen(kw_only=True)
class AppendResult:
    """The stored message, the conversation after the append, and whether it is new.

    ``created`` is False on an idempotent replay (same sender, conversation and
    clientMsgId): then ``message`` is the one stored the first time.
    ``thread_root`` is the root with its updated summary when a new reply was stored.
    """

    message: Message
    conversation: Conversation
    created: bool
    thread_root: Message | None = None


@frozen(kw_only=True)
class RefreshToken:
    """A stored refresh token: only its hash is kept."""

    token_hash: str
    user_id: str
    created_at: datetime
    expires_at: datetime
    # The login this token descends from through rotations ("": a family of its own):
    # replaying a rotated-out token revokes the whole family.
    family_id: str = ""

    @property
    def family(self) -> str:
        return self.family_id or self.token_hash


@frozen(kw_only=True)
class IssuedAccessToken:
    token: str
    expires_in: int


@frozen(kw_only=True)
class AuthSession:
    """What register, login and refresh return."""

    user: User
    access_token: str
    refresh_token: str
    expires_in: int


@frozen(kw_only=True)
class Page(Generic[T]):
    """One page of a list and the opaque cursor of the next page (None at the end)."""

    items: list[T]
    next_cursor: str | None


@frozen(kw_only=True)
class History:
    """A window of messages ascending by seq, and whether more lie beyond it."""

    messages: list[Message]
    has_more: bool


@frozen(kw_only=True)
class ConversationCursor:
    """Position in a member's conversation list (most recent activity first)."""

    activity_at: datetime
    conversation_id: str
