"""SocketIONotifier: the Notifier port over python-socketio rooms.

Every connection joins ``user:<userId>``; an event for several users is one
``emit`` to a list of rooms (python-socketio resolves rooms to sockets and
encodes the packet once; with the Redis manager it is one publish), never a
loop over sockets here.

Delivery is best effort by design: the notifier runs after the change is
stored, so a failed emit (a broker hiccup, a socket closing mid-write) is
logged and swallowed. Failing the request instead would report an error for a
change that did happen; clients catch up with ``sync`` after a reconnect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import socketio

from adapters.wire import conversation_json, iso, message_json, receipt_json
from chatcore.events import ServerEvent
from chatcore.models import ConversationView, Message, ReadReceipt
from chatcore.ports import Notifier

logger = logging.getLogger(__name__)


# The prefix of the rooms every connection of a user joins (routing reads it back).
USER_ROOM_PREFIX = "user:"


def user_room(user_id: str) -> str:
    """The room every connection of ``user_id`` joins."""
    return USER_ROOM_PREFIX + user_id


class SocketIONotifier(Notifier):
    """Emits the contract's server-to-client events to the recipients' user rooms."""

    def __init__(
        self, sio: socketio.AsyncServer, *, on_event: Callable[[str], None] | None = None
    ) -> None:
        self._sio = sio
        # Told the name of every event emitted (metrics count newMessage through it).
        self._on_event = on_event

    async def _emit(self, event: str, data: Any, to: str | list[str]) -> None:
        if self._on_event is not None:
            self._on_event(event)
        try:
            await self._sio.emit(event, data, to=to)
        except Exception:
            logger.warning("emitting %s failed", event, exc_info=True)

    async def _emit_to_users(self, event: str, data: Any, recipient_ids: Sequence[str]) -> None:
        # Never emit with an empty room list: python-socketio reads ``to=[]`` as
        # "no recipient given" and broadcasts to every connected socket.
        if recipient_ids:
            await self._emit(event, data, [user_room(u) for u in recipient_ids])

    async def message_created(self, message: Message, recipient_ids: Sequence[str]) -> None:
        await self._emit_to_users(ServerEvent.NEW_MESSAGE, message_json(message), recipient_ids)

    async def message_updated(self, message: Message, recipient_ids: Sequence[str]) -> None:
        await self._emit_to_users(ServerEvent.MESSAGE_UPDATED, message_json(message), recipient_ids)

    async def message_deleted(self, message: Message, recipient_ids: Sequence[str]) -> None:
        await self._emit_to_users(ServerEvent.MESSAGE_DELETED, message_json(message), recipient_ids)

    async def message_read(self, receipt: ReadReceipt, recipient_ids: Sequence[str]) -> None:
        await self._emit_to_users(ServerEvent.MESSAGE_READ, receipt_json(receipt), recipient_ids)

    async def typing(
        self, conversation_id: str, user_id: str, is_typing: bool, recipient_ids: Sequence[str]
    ) -> None:
        payload = {"conversationId": conversation_id, "userId": user_id, "isTyping": is_typing}
        await self._emit_to_users(ServerEvent.TYPING, payload, recipient_ids)

    async def user_online(self, user_id: str, recipient_ids: Sequence[str]) -> None:
        await self._emit_to_users(ServerEvent.USER_ONLINE, {"userId": user_id}, recipient_ids)

    async def user_offline(
        self, user_id: str, last_seen_at: datetime, recipient_ids: Sequence[str]
    ) -> None:
        payload = {"userId": user_id, "lastSeenAt": iso(last_seen_at)}
        await self._emit_to_users(ServerEvent.USER_OFFLINE, payload, recipient_ids)

    async def conversation_updated(self, views: Sequence[ConversationView]) -> None:
        # Each member sees their own lastReadSeq/unreadCount, so one emit per viewer.
        for view in views:
            await self._emit(
                ServerEvent.CONVERSATION_UPDATED, conversation_json(view), user_room(view.viewer_id)
            )
