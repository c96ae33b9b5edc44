"""Deterministic stand-ins for the non-storage ports: time, ids, hashing, tokens, events."""

from __future__ import annotations

import hashlib
import itertools
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from attrs import frozen

from chatcore.errors import Unauthorized
from chatcore.events import ServerEvent
from chatcore.models import ConversationView, IssuedAccessToken, Message, ReadReceipt
from chatcore.ports import AccessTokens, Clock, IdGenerator, Notifier, PasswordHasher
from chatcore.system import truncate_to_millis

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class FixedClock(Clock):
    """A clock that stands still until told to move."""

    def __init__(self, start: datetime = EPOCH) -> None:
        self._now = truncate_to_millis(start)

    def now(self) -> datetime:
        return self._now

    def set(self, at: datetime) -> None:
        self._now = truncate_to_millis(at)

    def advance(self, **delta: float) -> datetime:
        """Move forward by ``timedelta(**delta)``, e.g. ``advance(seconds=5)``."""
        self._now = truncate_to_millis(self._now + timedelta(**delta))
        return self._now


class SequentialIds(IdGenerator):
    """``prefix-1``, ``prefix-2``, ... zero-padded so that they sort in creation order."""

    def __init__(self, prefix: str = "id") -> None:
        self._prefix = prefix
        self._counter = itertools.count(1)

    def new_id(self) -> str:
        return f"{self._prefix}-{next(self._counter):08d}"


class FakePasswordHasher(PasswordHasher):
    """Fast, salted like the real one (the same password hashes differently each time);
    for tests only: one SHA-256 round is no password hash."""

    async def hash(self, password: str) -> str:
        salt = secrets.token_hex(8)
        return f"fake${salt}${self._digest(salt, password)}"

    async def verify(self, password_hash: str, password: str) -> bool:
        scheme, _, rest = password_hash.partition("$")
        salt, _, digest = rest.partition("$")
        if scheme != "fake" or not salt or not digest:
            return False
        return secrets.compare_digest(digest, self._digest(salt, password))

    @staticmethod
    def _digest(salt: str, password: str) -> str:
        return hashlib.sha256(f"{salt}:{password}".encode()).hexdigest()


class FakeAccessTokens(AccessTokens):
    """Tokens of the form ``access:<userId>:<n>`` that expire like real ones
    (``expires_in`` seconds by ``clock``); ``revoke_all`` makes them all invalid."""

    def __init__(self, expires_in: int = 900, clock: Clock | None = None) -> None:
        self._expires_in = expires_in
        self._clock = clock
        self._counter = itertools.count(1)
        self._valid: dict[str, tuple[str, datetime | None]] = {}

    def issue(self, user_id: str) -> IssuedAccessToken:
        token = f"access:{user_id}:{next(self._counter)}"
        expires_at = (
            self._clock.now() + timedelta(seconds=self._expires_in) if self._clock else None
        )
        self._valid[token] = (user_id, expires_at)
        return IssuedAccessToken(token=token, expires_in=self._expires_in)

    def verify(self, token: str) -> str:
        return self.verify_expiring(token)[0]

    def verify_expiring(self, token: str) -> tuple[str, datetime | None]:
        found = self._valid.get(token)
        if found is None:
            raise Unauthorized("invalid access token")
        user_id, expires_at = found
        if expires_at is not None and self._clock is not None and self._clock.now() >= expires_at:
            raise Unauthorized("access token expired")
        return user_id, expires_at

    def revoke_all(self) -> None:
        self._valid.clear()


@frozen
class Event:
    """One recorded notification: the contract's event name, what, and to whom."""

    name: str
    payload: Any
    recipient_ids: tuple[str, ...]


class RecordingNotifier(Notifier):
    """Keeps every notification, in order, for assertions."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]

    def clear(self) -> None:
        self.events.clear()

    def _record(self, name: str, payload: Any, recipient_ids: Sequence[str]) -> None:
        self.events.append(Event(name, payload, tuple(recipient_ids)))

    async def message_created(self, message: Message, recipient_ids: Sequence[str]) -> None:
        self._record(ServerEvent.NEW_MESSAGE, message, recipient_ids)

    async def message_updated(self, message: Message, recipient_ids: Sequence[str]) -> None:
        self._record(ServerEvent.MESSAGE_UPDATED, message, recipient_ids)

    async def message_deleted(self, message: Message, recipient_ids: Sequence[str]) -> None:
        self._record(ServerEvent.MESSAGE_DELETED, message, recipient_ids)

    async def message_read(self, receipt: ReadReceipt, recipient_ids: Sequence[str]) -> None:
        self._record(ServerEvent.MESSAGE_READ, receipt, recipient_ids)

    async def typing(
        self, conversation_id: str, user_id: str, is_typing: bool, recipient_ids: Sequence[str]
    ) -> None:
        payload = {"conversationId": conversation_id, "userId": user_id, "isTyping": is_typing}
        self._record(ServerEvent.TYPING, payload, recipient_ids)

    async def user_online(self, user_id: str, recipient_ids: Sequence[str]) -> None:
        self._record(ServerEvent.USER_ONLINE, {"userId": user_id}, recipient_ids)

    async def user_offline(
        self, user_id: str, last_seen_at: datetime, recipient_ids: Sequence[str]
    ) -> None:
        self._record(
            ServerEvent.USER_OFFLINE, {"userId": user_id, "lastSeenAt": last_seen_at}, recipient_ids
        )

    async def conversation_updated(self, views: Sequence[ConversationView]) -> None:
        for view in views:
            self._record(ServerEvent.CONVERSATION_UPDATED, view, (view.viewer_id,))
