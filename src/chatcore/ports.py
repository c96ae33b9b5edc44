"""Ports: what the domain needs from the outside world, as ``typing.Protocol`` classes.

Adapters subclass these explicitly so mypy checks their signatures. Every
repository method that does I/O is async. Repositories raise
:class:`chatcore.errors.Unavailable` when storage cannot be reached and never
let driver exceptions escape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from chatcore.models import (
    AppendResult,
    Conversation,
    ConversationCursor,
    ConversationView,
    Credentials,
    IssuedAccessToken,
    Message,
    NewMessage,
    ReadReceipt,
    RefreshToken,
    User,
)
from chatcore.rate_limits import Quota, Rate
from chatcore.search import SearchPosition


class Clock(Protocol):
    """Current time, UTC, millisecond precision (what every store keeps)."""

    def now(self) -> datetime: ...


class IdGenerator(Protocol):
    """Opaque, unique, string ids."""

    def new_id(self) -> str: ...


class UserRepository(Protocol):
    async def add(self, user: User, password_hash: str) -> None:
        """Store a new user. Raises Conflict if the username is taken (case-insensitively)."""
        ...

    async def get(self, user_id: str) -> User | None: ...

    async def get_many(self, user_ids: Iterable[str]) -> list[User]:
        """The users that exist among ``user_ids``, in no particular order."""
        ...

    async def find_credentials(self, username: str) -> Credentials | None:
        """Look a user up by username, case-insensitively, with the password hash."""
        ...

    async def search(
        self, query: str | None, *, limit: int, after_username: str | None, exclude_id: str | None
    ) -> list[User]:
        """Users whose username or display name starts with ``query`` (case-insensitive),
        ordered by lower-cased username, starting after ``after_username``."""
        ...

    async def set_last_seen(self, user_id: str, at: datetime) -> None: ...

    async def find_by_usernames(self, usernames: Iterable[str]) -> list[User]:
        """The users whose username is one of ``usernames``, compared case-insensitively,
        in no particular order (resolving ``@mentions``: one indexed query)."""
        ...


class ConversationRepository(Protocol):
    async def create(self, conversation: Conversation) -> None:
        """Store a new group conversation."""
        ...

    async def get_or_create_direct(self, conversation: Conversation) -> tuple[Conversation, bool]:
        """Return the direct conversation between the two members of ``conversation``,
        storing ``conversation`` if there is none yet; the flag says whether it was created.
        Concurrent calls for the same pair (in either order) end with one conversation."""
        ...

    async def find_direct(self, user_a: str, user_b: str) -> Conversation | None: ...

    async def get(self, conversation_id: str) -> Conversation | None: ...

    async def get_for_member(self, conversation_id: str, user_id: str) -> Conversation | None:
        """The conversation, if it exists and ``user_id`` is a member (one round trip)."""
        ...

    async def list_for_member(
        self, user_id: str, *, limit: int, after: ConversationCursor | None
    ) -> list[Conversation]:
        """The member's conversations, most recent activity first (ties: id descending)."""
        ...

    async def list_by_ids_for_member(
        self, user_id: str, conversation_ids: Iterable[str]
    ) -> list[Conversation]:
        """Those of ``conversation_ids`` that exist and have ``user_id`` as a member."""
        ...

    async def add_member(self, conversation_id: str, user_id: str) -> Conversation | None:
        """Add a member (no-op if present); None if the conversation does not exist."""
        ...

    async def remove_member(self, conversation_id: str, user_id: str) -> Conversation | None:
        """Remove a member (no-op if absent); None if the conversation does not exist."""
        ...

    async def contact_ids(self, user_id: str) -> set[str]:
        """Everyone who shares at least one conversation with ``user_id`` (not themselves)."""
        ...


class MessageRepository(Protocol):
    async def append(self, new: NewMessage) -> AppendResult:
        """Atomically give ``new`` the next seq of its conversation and store it.

        Raises NotFound if the conversation does not exist or the sender is not a
        member. With a ``client_msg_id`` already used by the same sender in the same
        conversation, stores nothing and returns the first message (``created`` False).
        Seqs stay gapless and unique under concurrent appends from any number of
        processes; a failure leaves neither a seq without its message nor the reverse.

        A reply (``thread_id`` set: the id of a top-level message of the same
        conversation, checked by the caller) also updates that root's thread summary
        (one more reply, ``last_reply_at``, the sender among the participants) in the
        same atomic step, and returns the root as updated in ``thread_root``; a replay
        changes no summary. ``mentions`` not among the members when the message is
        stored are dropped.
        """
        ...

    async def get(self, conversation_id: str, message_id: str) -> Message | None: ...

    async def range(self, conversation_id: str, first_seq: int, last_seq: int) -> list[Message]:
        """Messages with ``first_seq <= seq <= last_seq``, ascending by seq."""
        ...

    async def edit(
        self, message: Message, body: str, at: datetime, mentions: Sequence[str] = ()
    ) -> Message:
        """Replace the body and mentions and set ``edited_at``; keeps the conversation's
        lastMessage in step. Conflict if the message is deleted (by then: a delete from
        anywhere may land after the caller read ``message``), and nothing changes."""
        ...

    async def delete(self, message: Message, at: datetime) -> Message:
        """Empty the body, clear reactions and mentions, and set ``deleted_at``; id, seq,
        thread id and thread summary stay."""
        ...

    async def react(
        self, conversation_id: str, message_id: str, user_id: str, emoji: str, *, add: bool
    ) -> tuple[Message, bool]:
        """Add (``add``) or remove ``user_id``'s ``emoji`` reaction; whether it changed.

        Atomic per message: concurrent reactions of any number of users, from any
        number of processes, all land (20 users adding the same emoji end with 20
        user ids), and a message never holds more than
        :data:`chatcore.limits.MAX_REACTION_EMOJI` distinct emoji: adding one more
        raises Conflict and changes nothing. Removing a user's last emoji drops the
        entry. NotFound if the message is not in the conversation; Conflict if it is
        deleted. ``edited_at``, ``seq`` and the body never change; the conversation's
        lastMessage is kept in step.
        """
        ...

    async def thread_replies(
        self,
        conversation_id: str,
        root_id: str,
        *,
        before: int | None,
        after: int | None,
        limit: int,
    ) -> list[Message]:
        """Up to ``limit`` replies of the thread ``root_id``, ascending by seq: the oldest
        with ``seq > after`` if ``after`` is given, else the newest (with ``seq < before``
        if ``before`` is given). From an index on (threadId, seq), never a scan."""
        ...

    async def count_unread_and_mentions(
        self, user_id: str, after_seq: Mapping[str, int]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """What :meth:`count_unread` answers, and for each conversation id how many
        messages with ``seq > after_seq`` mention ``user_id`` (only non-zero counts).
        Together because a store may read both off the same records (MongoDB: one
        command for a conversation list page); mentions come from such records or an
        index on mentions, never from scanning a conversation."""
        ...

    async def count_unread(self, user_id: str, after_seq: Mapping[str, int]) -> dict[str, int]:
        """For each conversation id, how many messages from others have ``seq > after_seq``."""
        ...


class MessageSearch(Protocol):
    """Finds messages by word prefixes (see :mod:`chatcore.search` for what matches).

    A read-side port next to :class:`MessageRepository`: the store keeps whatever
    it searches by in step with each message's body, in the same atomic write as
    a send, edit or delete, so a result never reflects a body the message no
    longer has.
    """

    async def search(
        self,
        user_id: str,
        wanted: Sequence[str],
        *,
        conversation_id: str | None,
        limit: int,
        after: SearchPosition | None,
    ) -> list[Message]:
        """Up to ``limit`` messages whose current body has every word of ``wanted``
        (normalised, from :func:`chatcore.search.query_words`) as a word prefix.

        Only conversations ``user_id`` is a member of at the time of the call (and
        only ``conversation_id`` if given); deleted messages never match. Newest
        first (``created_at``, then id, descending), strictly after ``after``, so
        paging by the last result's position returns every match exactly once.
        """
        ...


class ReceiptRepository(Protocol):
    async def advance(
        self, conversation_id: str, user_id: str, up_to_seq: int, at: datetime
    ) -> tuple[ReadReceipt, bool]:
        """Move the read pointer forward to ``up_to_seq`` (``read_at`` = ``at``) unless it is
        already there or beyond. Returns the pointer as stored and whether it moved.
        Never moves it back; with no pointer yet, one is stored even for seq 0."""
        ...

    async def list_for_conversation(self, conversation_id: str) -> list[ReadReceipt]: ...

    async def for_user(self, user_id: str, conversation_ids: Iterable[str]) -> dict[str, int]:
        """The user's last read seq per conversation (absent: nothing read)."""
        ...


class RefreshTokenRepository(Protocol):
    async def add(self, token: RefreshToken) -> None: ...

    async def consume(self, token_hash: str, now: datetime) -> RefreshToken | None:
        """Atomically mark the token used and return it if it existed, was unused and had
        not expired. Of two concurrent consumes of the same token at most one gets it.
        A used token is kept (until it expires) so that a replay is recognised."""
        ...

    async def find_used(self, token_hash: str) -> RefreshToken | None:
        """The token if it was consumed before (rotated out) and is still kept."""
        ...

    async def revoke(self, token_hash: str, user_id: str) -> None:
        """Revoke the token if it is ``user_id``'s (anyone else's stays valid)."""
        ...

    async def revoke_family(self, family: str) -> None:
        """Revoke every token of a family (:attr:`RefreshToken.family`)."""
        ...

    async def revoke_all_for_user(self, user_id: str) -> None: ...


class PasswordHasher(Protocol):
    """Slow, salted password hashing (CPU work kept off the event loop by the adapter)."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...


class AccessTokens(Protocol):
    """Issues and checks short-lived access tokens (JWT lives in an adapter)."""

    def issue(self, user_id: str) -> IssuedAccessToken: ...

    def verify(self, token: str) -> str:
        """The user id the token was issued for. Raises Unauthorized otherwise."""
        ...

    def verify_expiring(self, token: str) -> tuple[str, datetime | None]:
        """Like :meth:`verify`, and when the token stops being accepted (None: the
        adapter can't tell), so that a long-lived connection can end with it."""
        return self.verify(token), None


class PresenceTracker(Protocol):
    """Counts live connections per user across tabs, devices (and nodes, if shared)."""

    async def connect(self, user_id: str, connection_id: str) -> bool:
        """Record a connection; True if it is the user's first (they just came online)."""
        ...

    async def disconnect(self, user_id: str, connection_id: str) -> bool:
        """Forget a connection; True if it was the user's last (they just went offline)."""
        ...

    async def online(self, user_ids: Iterable[str]) -> set[str]:
        """Which of ``user_ids`` have at least one live connection."""
        ...


class Notifier(Protocol):
    """Outbound real-time events. Called only after the change is stored.

    ``recipient_ids`` are user ids; the adapter reaches every connection of each.
    """

    async def message_created(self, message: Message, recipient_ids: Sequence[str]) -> None: ...

    async def message_updated(self, message: Message, recipient_ids: Sequence[str]) -> None: ...

    async def message_deleted(self, message: Message, recipient_ids: Sequence[str]) -> None: ...

    async def message_read(self, receipt: ReadReceipt, recipient_ids: Sequence[str]) -> None: ...

    async def typing(
        self, conversation_id: str, user_id: str, is_typing: bool, recipient_ids: Sequence[str]
    ) -> None: ...

    async def user_online(self, user_id: str, recipient_ids: Sequence[str]) -> None: ...

    async def user_offline(
        self, user_id: str, last_seen_at: datetime, recipient_ids: Sequence[str]
    ) -> None: ...

    async def conversation_updated(self, views: Sequence[ConversationView]) -> None:
        """Each view goes to its own viewer."""
        ...


class RateLimiter(Protocol):
    """Counts actions per key against a :class:`~chatcore.rate_limits.Rate` (GCRA).

    Guarantees: :meth:`acquire` decides and counts in one atomic step, so of any
    number of concurrent callers (in this process, or in every process sharing the
    limiter) at most ``rate.count`` get through a fresh key at once, then one per
    ``rate.period / rate.count``. A refused action is not counted. Decisions follow
    the injected Clock. A limiter shared across processes that loses its backend
    falls back to counting per process (never refuses, never raises because of it).
    """

    async def acquire(self, key: str, rate: Rate) -> Quota:
        """Count one action under ``key`` if ``rate`` allows it; the decision either way."""
        ...

    async def release(self, key: str, rate: Rate) -> None:
        """Give back one action acquired earlier that turned out not to count
        (an idempotent replay, a successful login). Never below an empty key."""
        ...
