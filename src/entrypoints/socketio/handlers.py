"""Socket.IO inbound event handlers (an entrypoint, like the HTTP routes).

Each handler is thin: check the payload's shape, call one service, return the
acknowledgement. python-socketio sends a handler's return value as the ack, so
every handler returns ``{"ok": True, ...}`` or ``{"ok": False, "error": {code,
message}}`` and never raises: the socket stays connected whatever a client sends.
Domain errors map to acks in one place, :func:`error_ack`.

The user id of each connection is kept in a plain dict keyed by sid rather than
python-socketio's session store: it is read on every event of the hot path and
a dict lookup needs no await and no copy.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import socketio

from adapters.mongo.errors import request_deadline
from adapters.socketio_notifier import user_room
from adapters.wire import message_json, receipt_json
from chatcore.errors import ChatError, RateLimited
from entrypoints.bearer import bearer_credentials
from entrypoints.error_codes import INTERNAL_ERROR
from entrypoints.runtime import Runtime
from entrypoints.socketio import payloads as socket_payloads
from entrypoints.socketio.deadlines import Deadlines

logger = logging.getLogger(__name__)

# Server-to-client event sent just before a socket is closed because its token expired.
SESSION_EXPIRED = "sessionExpired"

Ack = dict[str, Any]
Handler = Callable[..., Awaitable[Ack]]
# (sid, user id, the event's arguments) -> ack
EventHandler = Callable[[str, str, tuple[Any, ...]], Awaitable[Ack]]


def error_ack(code: str, message: str, details: Any = None) -> Ack:
    """The failure acknowledgement: ``{"ok": false, "error": {"code", "message",
    "details"?}}``."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"ok": False, "error": error}


def _chat_error_ack(exc: ChatError) -> Ack:
    # Details only where the contract gives acks some (rate_limited: retryAfter); other
    # acks keep v1's exact {code, message} (docs/decisions.md).
    details = exc.details if isinstance(exc, RateLimited) else None
    return error_ack(exc.code, exc.message, details)


def bearer_token(auth: Any, environ: Mapping[str, Any]) -> str | None:
    """The access token of a handshake: ``auth.token``, else ``Authorization: Bearer``."""
    if isinstance(auth, dict):
        token = auth.get("token")
        if token is not None:
            # Present but not a string is a malformed token, not a missing one.
            return token if isinstance(token, str) else ""
    header = environ.get("HTTP_AUTHORIZATION")
    return bearer_credentials(header) if isinstance(header, str) else None


def _refuse(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    # python-socketio sends {"message": args[0], "data": args[1]} in the CONNECT_ERROR
    # packet; socket.io-client turns it into an Error with err.message and err.data.
    return socketio.exceptions.ConnectionRefusedError(code, {"code": code, "message": message})


class SocketHandlers:
    """The connection registry (sid -> user id) and the handlers bound to one server."""

    def __init__(
        self, sio: socketio.AsyncServer, runtime: Runtime, *, max_sockets_per_user: int = 20
    ) -> None:
        self._sio = sio
        self._runtime = runtime
        self.users_by_sid: dict[str, str] = {}
        self.max_sockets_per_user = max_sockets_per_user
        # Sockets per user on this process, and each socket's end at its token's expiry.
        self._socket_counts: dict[str, int] = {}
        self._expiries = Deadlines(self._end_session)
        self._unknown = self._guarded("<unknown>", self._not_found)

    def register(self) -> None:
        on = self._sio.on
        on("connect", handler=self.connect)
        on("disconnect", handler=self.disconnect)
        # sendMessage and typing have limits of their own (their services apply them);
        # every other event counts against the user's ``api`` budget.
        on("sendMessage", handler=self._guarded("sendMessage", self.send_message, metered=False))
        on("readMessage", handler=self._guarded("readMessage", self.read_message))
        on("typing", handler=self._guarded("typing", self.typing, metered=False))
        on("sync", handler=self._guarded("sync", self.sync))
        on("react", handler=self._guarded("react", self.react))
        on("*", handler=self.unknown_event)

    # -- connection lifecycle -------------------------------------------------

    async def connect(self, sid: str, environ: Mapping[str, Any], auth: Any = None) -> None:
        """Authenticate the handshake, join ``user:<id>``, mark the user online."""
        if self._runtime.draining:
            raise _refuse("unavailable", "the server is stopping")
        token = bearer_token(auth, environ)
        if token is None:
            raise _refuse("unauthorized", "an access token is required")
        try:
            chat = self._runtime.chat
            user_id, expires_in = chat.auth.authenticate_until(token)
        except ChatError as exc:
            raise _refuse(exc.code, exc.message) from None
        except Exception:
            # python-socketio would leave the client waiting on an unexpected error.
            logger.exception("socket authentication failed unexpectedly")
            raise _refuse(INTERNAL_ERROR, "internal server error") from None
        count = self._socket_counts.get(user_id, 0)
        if count >= self.max_sockets_per_user:
            self._runtime.metrics.refused("sockets", "connect")
            raise _refuse(
                "rate_limited", f"at most {self.max_sockets_per_user} connections per user"
            )
        self._socket_counts[user_id] = count + 1
        self.users_by_sid[sid] = user_id
        if expires_in is not None:
            self._expiries.set(sid, expires_in)
        self._runtime.metrics.socket_connected()
        await self._sio.enter_room(sid, user_room(user_id))
        try:
            await chat.presence.connected(user_id, sid)
        except ChatError as exc:
            # Presence is a courtesy to contacts; a storage hiccup while announcing it
            # must not cost the user a working connection.
            logger.warning("presence update on connect failed for %s: %r", sid, exc)
        except Exception:
            logger.exception("presence update on connect failed for %s", sid)

    async def disconnect(self, sid: str, reason: Any = None) -> None:
        """Forget the connection; on the user's last one, mark them offline."""
        user_id = self.users_by_sid.pop(sid, None)
        if user_id is None:
            return
        self._expiries.cancel(sid)
        left = self._socket_counts.pop(user_id, 1) - 1
        if left > 0:
            self._socket_counts[user_id] = left
        self._runtime.metrics.socket_disconnected()
        try:
            await self._runtime.chat.presence.disconnected(user_id, sid)
        except ChatError as exc:
            # Expected while the server stops (sockets close after the Chat is gone).
            logger.info("presence update on disconnect failed for %s: %r", sid, exc)
        except Exception:
            logger.exception("presence update on disconnect failed for %s", sid)

    async def _end_session(self, sid: str) -> None:
        """The socket's access token expired: say so (``sessionExpired``), then close it.
        A client renews its token and connects again (docs/realtime.md)."""
        payload = {"code": "unauthorized", "message": "access token expired"}
        try:
            await self._sio.emit(SESSION_EXPIRED, payload, to=sid)
            await self._sio.disconnect(sid)
        except Exception:
            logger.exception("closing socket %s at its token's expiry failed", sid)

    # -- events -----------------------------------------------------------------

    def _guarded(self, event: str, handler: EventHandler, *, metered: bool = True) -> Handler:
        users = self.users_by_sid
        runtime = self._runtime
        in_flight = runtime.in_flight

        async def guarded(sid: str, *args: Any) -> Ack:
            user_id = users.get(sid)
            if user_id is None:
                # Only possible in the instant between a disconnect and a late event.
                return error_ack("unauthorized", "not connected")
            if runtime.draining:
                return error_ack("unavailable", "the server is stopping")
            # Counted so that a graceful shutdown answers it before closing the socket.
            in_flight.count += 1
            try:
                if metered:
                    await runtime.chat.throttle.api(user_id)
                # As for an HTTP request: its storage calls together within the timeout.
                with request_deadline(runtime.storage_timeout):
                    return await handler(sid, user_id, args)
            except RateLimited as exc:
                runtime.metrics.refused(exc.limit, event)
                return _chat_error_ack(exc)
            except ChatError as exc:
                return _chat_error_ack(exc)
            except Exception:
                request_id = secrets.token_hex(6)
                logger.exception("socket event %s failed (request %s)", event, request_id)
                return error_ack(INTERNAL_ERROR, f"internal server error (request {request_id})")
            finally:
                in_flight.count -= 1

        guarded.__name__ = handler.__name__
        return guarded

    async def unknown_event(self, event: Any, sid: str, *args: Any) -> Ack:
        """Any other event: acked ``not_found`` so that a client waiting on an ack (e.g.
        ``emitWithAck``) is not left hanging; like an unknown HTTP route. Counts against
        the ``api`` budget like any event."""
        name = str(event)[:64]
        return await self._unknown(sid, name)

    async def _not_found(self, sid: str, user_id: str, args: tuple[Any, ...]) -> Ack:
        return error_ack("not_found", f"unknown event: {args[0]}")

    async def send_message(self, sid: str, user_id: str, args: tuple[Any, ...]) -> Ack:
        """``sendMessage``: acked with the stored message (also on an idempotent replay)."""
        cmd = socket_payloads.send_message(args)
        messages = self._runtime.chat.messages
        send = messages.send_direct if cmd.direct else messages.send
        result = await send(user_id, cmd.to, cmd.body, cmd.client_msg_id, cmd.thread_id)
        return {"ok": True, "message": message_json(result.message)}

    async def react(self, sid: str, user_id: str, args: tuple[Any, ...]) -> Ack:
        """``react``: acked with the message as it is after the change."""
        cmd = socket_payloads.react(args)
        message = await self._runtime.chat.reactions.react(
            user_id, cmd.conversation_id, cmd.message_id, cmd.emoji, add=cmd.add
        )
        return {"ok": True, "message": message_json(message)}

    async def read_message(self, sid: str, user_id: str, args: tuple[Any, ...]) -> Ack:
        """``readMessage``: acked with the read pointer as stored."""
        cmd = socket_payloads.read_message(args)
        receipt = await self._runtime.chat.receipts.mark_read(
            user_id, cmd.conversation_id, cmd.up_to_seq
        )
        return {"ok": True, "receipt": receipt_json(receipt)}

    async def typing(self, sid: str, user_id: str, args: tuple[Any, ...]) -> Ack:
        """``typing``: relayed to the other members, never stored."""
        cmd = socket_payloads.typing(args)
        await self._runtime.chat.typing.set_typing(user_id, cmd.conversation_id, cmd.is_typing)
        return {"ok": True}

    async def sync(self, sid: str, user_id: str, args: tuple[Any, ...]) -> Ack:
        """``sync``: what was missed since the given seqs, ascending per conversation;
        ``hasMore: true`` when a conversation had more than one call returns."""
        cmd = socket_payloads.sync(args)
        result = await self._runtime.chat.messages.sync(user_id, cmd.since)
        ack: Ack = {"ok": True, "messages": [message_json(m) for m in result.messages]}
        # Only when true (docs/decisions.md): the ack otherwise is exactly docs/api.md's shape.
        if result.has_more:
            ack["hasMore"] = True
        return ack


def register_socket_handlers(
    sio: socketio.AsyncServer, runtime: Runtime, *, max_sockets_per_user: int = 20
) -> SocketHandlers:
    """Attach connect/disconnect and every client-to-server event of the contract."""
    handlers = SocketHandlers(sio, runtime, max_sockets_per_user=max_sockets_per_user)
    handlers.register()
    return handlers
