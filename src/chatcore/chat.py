"""Assemble every service from a storage and a few ports: the embedding entry point."""

from __future__ import annotations

from datetime import timedelta

from attrs import frozen

from chatcore.ports import (
    AccessTokens,
    Clock,
    ConversationRepository,
    IdGenerator,
    MessageRepository,
    MessageSearch,
    Notifier,
    PasswordHasher,
    PresenceTracker,
    ReceiptRepository,
    RefreshTokenRepository,
    UserRepository,
)
from chatcore.services import (
    AuthService,
    ConversationService,
    MessageService,
    PresenceService,
    ReceiptService,
    SearchService,
    TypingService,
    UserService,
)
from chatcore.services.conversations import ConversationViews
from chatcore.system import SystemClock, TimeOrderedIdGenerator


@frozen(kw_only=True)
class Storage:
    """The repositories of one store (in-memory, MongoDB, or your own)."""

    users: UserRepository
    conversations: ConversationRepository
    messages: MessageRepository
    receipts: ReceiptRepository
    refresh_tokens: RefreshTokenRepository
    search: MessageSearch


@frozen(kw_only=True)
class Chat:
    """Every use case of chatcore, ready to call."""

    auth: AuthService
    users: UserService
    conversations: ConversationService
    messages: MessageService
    receipts: ReceiptService
    presence: PresenceService
    typing: TypingService
    search: SearchService


def build_chat(
    *,
    storage: Storage,
    notifier: Notifier,
    presence: PresenceTracker,
    passwords: PasswordHasher,
    access_tokens: AccessTokens,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    refresh_ttl: timedelta = timedelta(days=30),
) -> Chat:
    """Wire the services together; no I/O happens here."""
    clock = clock or SystemClock()
    ids = ids or TimeOrderedIdGenerator()
    views = ConversationViews(storage.messages, storage.receipts)
    conversations = ConversationService(
        storage.conversations, storage.users, views, notifier, clock, ids
    )
    return Chat(
        auth=AuthService(
            storage.users, storage.refresh_tokens, passwords, access_tokens, clock, ids, refresh_ttl
        ),
        users=UserService(storage.users),
        conversations=conversations,
        messages=MessageService(
            storage.messages,
            storage.conversations,
            storage.users,
            conversations,
            notifier,
            clock,
            ids,
        ),
        receipts=ReceiptService(storage.receipts, storage.conversations, notifier, clock),
        presence=PresenceService(presence, storage.users, storage.conversations, notifier, clock),
        typing=TypingService(storage.conversations, notifier),
        search=SearchService(storage.search, storage.conversations),
    )
