"""The server-to-client events of the contract: each name spelt once, here.

The Notifier port has one method per event; every notifier (the Socket.IO
adapter, the recording fake of ``chatcore.testing``) names what it sends with
these constants. Plain strings, not an enum: they go on the wire as they are
and compare equal to the names clients (and tests) write.
"""

from __future__ import annotations

from typing import Final


class ServerEvent:
    """Event name = the :class:`~chatcore.ports.Notifier` method that sends it."""

    NEW_MESSAGE: Final = "newMessage"  # message_created
    MESSAGE_UPDATED: Final = "messageUpdated"  # message_updated
    MESSAGE_DELETED: Final = "messageDeleted"  # message_deleted
    MESSAGE_READ: Final = "messageRead"  # message_read
    TYPING: Final = "typing"  # typing
    USER_ONLINE: Final = "userOnline"  # user_online
    USER_OFFLINE: Final = "userOffline"  # user_offline
    CONVERSATION_UPDATED: Final = "conversationUpdated"  # conversation_updated


# Every event name, in the order of the contract's table.
SERVER_EVENTS: Final = tuple(value for name, value in vars(ServerEvent).items() if name.isupper())
