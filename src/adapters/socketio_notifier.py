"""SocketIONotifier: the Notifier port over python-socketio rooms.

Every connection joins ``user:<userId>``; an event for several users is one
``emit`` to a list of rooms (python-socketio resolves rooms to sockets and
encodes the packet once), never a loop over sockets here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import socketio

from adapters.wire import conversation_json, iso, message_json, receipt_json
from chatcore.models import ConversationView, Message, ReadReceipt
from chatcore.ports import Notifier


def user_room(user_id: str) -> str:
    """The room every connection of ``user_id`` joins."""
    return f"user:{user_id}"


class SocketIONotifier(Notifier):
    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio

    async def _emit(self, event: str, data: Any, recipient_ids: Sequence[str]) -> None:
        if recipient_ids:
            await self._sio.emit(event, data, to=[user_room(u) for u in recipient_ids])

    async def message_created(self, message: Message, recipient_ids: Sequence[str]) -> None:
        await self._emit("newMessage", message_json(message), recipient_ids)

    async def message_updated(self, message: Message, recipient_ids: Sequence[str]) -> None:
        await self._emit("messageUpdated", message_json(message), recipient_ids)

    async def message_deleted(self, message: Message, recipient_ids: Sequence[str]) -> None:
        await self._emit("messageDeleted", message_json(message), recipient_ids)

    async def message_read(self, receipt: ReadReceipt, recipient_ids: Sequence[str]) -> None:
        await self._emit("messageRead", receipt_json(receipt), recipient_ids)

    async def typing(
        self, conversation_id: str, user_id: str, is_typing: bool, recipient_ids: Sequence[str]
    ) -> None:
        payload = {"conversationId": conversation_id, "userId": user_id, "isTyping": is_typing}
        await self._emit("typing", payload, recipient_ids)

    async def user_online(self, user_id: str, recipient_ids: Sequence[str]) -> None:
        await self._emit("userOnline", {"userId": user_id}, recipient_ids)

    async def user_offline(
        self, user_id: str, last_seen_at: datetime, recipient_ids: Sequence[str]
    ) -> None:
        payload = {"userId": user_id, "lastSeenAt": iso(last_seen_at)}
        await self._emit("userOffline", payload, recipient_ids)

    async def conversation_updated(self, views: Sequence[ConversationView]) -> None:
        # Each member sees their own lastReadSeq/unreadCount, so one emit per viewer.
        for view in views:
            await self._sio.emit(
                "conversationUpdated", conversation_json(view), to=user_room(view.viewer_id)
            )
