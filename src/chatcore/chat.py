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
    views = ConversationViews(messages=storage.messages, receipts=storage.receipts)
    conversations = ConversationService(
        conversations=storage.conversations,
        users=storage.users,
        views=views,
        notifier=notifier,
        clock=clock,
        ids=ids,
    )
    return Chat(
        auth=AuthService(
            users=storage.users,
            refresh_tokens=storage.refresh_tokens,
            passwords=passwords,
            access_tokens=access_tokens,
            clock=clock,
            ids=ids,
            refresh_ttl=refresh_ttl,
        ),
        users=UserService(users=storage.users),
        conversations=conversations,
        messages=MessageService(
            messages=storage.messages,
            conversations=storage.conversations,
            users=storage.users,
            conversation_service=conversations,
            notifier=notifier,
            clock=clock,
            ids=ids,
        ),
        receipts=ReceiptService(
            receipts=storage.receipts,
            conversations=storage.conversations,
            notifier=notifier,
            clock=clock,
        ),
        presence=PresenceService(
            tracker=presence,
            users=storage.users,
            conversations=storage.conversations,
            notifier=notifier,
            clock=clock,
        ),
        typing=TypingService(conversations=storage.conversations, notifier=notifier),
        search=SearchService(search=storage.search, conversations=storage.conversations),
    )
