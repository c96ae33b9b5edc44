"""Use cases: one service per area, each built from ports by constructor injection."""

from chatcore.services.auth import AuthService
from chatcore.services.conversations import ConversationService
from chatcore.services.messaging import MessageService
from chatcore.services.presence import PresenceService
from chatcore.services.reactions import ReactionService
from chatcore.services.receipts import ReceiptService
from chatcore.services.search import SearchService
from chatcore.services.typing_indicators import TypingService
from chatcore.services.users import UserService

__all__ = [
    "AuthService",
    "ConversationService",
    "MessageService",
    "PresenceService",
    "ReactionService",
    "ReceiptService",
    "SearchService",
    "TypingService",
    "UserService",
]
