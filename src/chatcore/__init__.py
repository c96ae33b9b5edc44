"""chatcore: a real-time chat domain with no framework in it.

Build a :class:`Chat` with :func:`build_chat` from a :class:`Storage` and a few
ports, or get an in-memory one from :mod:`chatcore.testing`.
"""

from chatcore.chat import Chat, Storage, build_chat
from chatcore.errors import (
    ChatError,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from chatcore.models import (
    AppendResult,
    AuthSession,
    Conversation,
    ConversationType,
    ConversationView,
    History,
    Message,
    Page,
    Presence,
    ReadReceipt,
    User,
)

__all__ = [
    "AppendResult",
    "AuthSession",
    "Chat",
    "ChatError",
    "Conflict",
    "Conversation",
    "ConversationType",
    "ConversationView",
    "Forbidden",
    "History",
    "Message",
    "NotFound",
    "Page",
    "PayloadTooLarge",
    "Presence",
    "RateLimited",
    "ReadReceipt",
    "Storage",
    "Unauthorized",
    "Unavailable",
    "User",
    "ValidationFailed",
    "build_chat",
]
