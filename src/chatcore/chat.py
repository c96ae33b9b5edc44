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
    RateLimiter,
    ReceiptRepository,
    RefreshTokenRepository,
    UserRepository,
)
from chatcore.rate_limits import RateLimits
from chatcore.services import (
    AuthService,
    ConversationService,
    MessageService,
    PresenceService,
    ReactionService,
    ReceiptService,
    SearchService,
    TypingService,
    UserService,
)
from chatcore.services.conversations import ConversationViews
from chatcore.services.throttle import Throttle
from chatcore.system import LocalRateLimiter, SystemClock, TimeOrderedIdGenerator


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
    reactions: ReactionService
    # The rate limits; the services apply them, edges add the per-request ``api`` one.
    throttle: Throttle


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
    rate_limits: RateLimits | None = None,
    rate_limiter: RateLimiter | None = None,
) -> Chat:
    """Wire the services together; no I/O happens here.

    ``rate_limits`` default to the public contract's; ``rate_limiter`` to counting
    in this process (pass a shared one to limit across processes)."""
    clock = clock or SystemClock()
    ids = ids or TimeOrderedIdGenerator()
    throttle = Throttle(
        limiter=rate_limiter or LocalRateLimiter(clock),
        limits=RateLimits() if rate_limits is None else rate_limits,
    )
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
            throttle=throttle,
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
            throttle=throttle,
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
        typing=TypingService(
            conversations=storage.conversations, notifier=notifier, throttle=throttle
        ),
        search=SearchService(search=storage.search, conversations=storage.conversations),
        reactions=ReactionService(
            messages=storage.messages, conversations=storage.conversations, notifier=notifier
        ),
        throttle=throttle,
    )
