"""The Socket.IO server, guarded against clients that never authenticate or misbehave.

python-socketio's ``AsyncServer`` with four additions, each at the one place
python-socketio hands an Engine.IO session or packet to Socket.IO:

* An Engine.IO session that has not completed an authenticated Socket.IO connect
  within ``handshake_timeout`` seconds is closed: such a session costs a task, a
  queue and pings, and would otherwise live for as long as the client likes.
* At most ``max_handshaking`` such sessions exist at once; past that, new Engine.IO
  sessions are refused (HTTP 401 from python-engineio) until some authenticate or
  expire.
* A packet over ``max_packet_bytes`` is not decoded: an event that asks for an ack
  gets ``payload_too_large``; either way the socket stays up. (Past Engine.IO's own
  ``max_http_buffer_size`` the transport closes the connection; see
  :mod:`entrypoints.socketio.polling_guard` for long-polling POSTs.)
* A packet python-socketio cannot make sense of (broken JSON, an event that is
  not a list with a name) is answered with a ``validation_error`` ack when it
  asks for one, and logged as one line, not a traceback.

Two more keep sockets cheap (entrypoints/socketio/lean.py, adapters/socketio_fanout.py):
each Engine.IO session's queue is a :class:`~entrypoints.socketio.lean.SocketQueue`,
a connected socket's handshake headers are dropped after the connect handler ran,
and acks take the fan-out's direct path.

These override private methods of python-socketio 5.x (``_handle_eio_*``,
``_handle_connect``, ``_send_packet``); tests/realtime/test_socket_abuse.py pins
their behaviour.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

import socketio
from socketio import packet

from adapters.socketio_fanout import engineio_packets
from entrypoints.socketio.deadlines import Deadlines
from entrypoints.socketio.handlers import Ack, error_ack
from entrypoints.socketio.lean import SocketQueue, forget_handshake_headers

logger = logging.getLogger(__name__)

# The ack id of a text EVENT packet: type 2, optional "/namespace,", then the id.
_ACK_ID: Final = re.compile(r"2(?:(/[^,]*),)?(\d+)")


class ChatcoreSocketServer(socketio.AsyncServer):  # type: ignore[misc]  # socketio ships no types
    """``socketio.AsyncServer`` with a handshake deadline, a bound on sessions still
    handshaking, a packet size limit and answers to malformed packets."""

    def __init__(
        self,
        *,
        handshake_timeout: float,
        max_handshaking: int,
        max_packet_bytes: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.handshake_timeout = handshake_timeout
        self.max_handshaking = max_handshaking
        self.max_packet_bytes = max_packet_bytes
        # Engine.IO sessions not (yet) connected to Socket.IO, with their deadlines.
        self._handshaking = Deadlines(self._close_session)
        # Each Engine.IO session's outgoing queue, without asyncio.Queue's four deques.
        self.eio.create_queue = SocketQueue

    @property
    def handshaking(self) -> int:
        """Engine.IO sessions open but not yet authenticated."""
        return len(self._handshaking)

    async def _handle_eio_connect(self, eio_sid: str, environ: Any) -> bool | None:
        if len(self._handshaking) >= self.max_handshaking:
            logger.warning(
                "refused an Engine.IO session: %d are already waiting to authenticate",
                len(self._handshaking),
            )
            return False
        await super()._handle_eio_connect(eio_sid, environ)
        self._handshaking.set(eio_sid, self.handshake_timeout)
        return None

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        await super()._handle_connect(eio_sid, namespace, data)
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace or "/")
        if sid is not None and self.manager.is_connected(sid, namespace or "/"):
            self._handshaking.cancel(eio_sid)
            environ = self.environ.get(eio_sid)
            if environ is not None:
                forget_handshake_headers(environ)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        self._handshaking.cancel(eio_sid)
        await super()._handle_eio_disconnect(eio_sid, reason)

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        if len(data) > self.max_packet_bytes:
            await self._answer(
                eio_sid,
                data,
                error_ack(
                    "payload_too_large", f"a packet is at most {self.max_packet_bytes} bytes"
                ),
            )
            return
        try:
            await super()._handle_eio_message(eio_sid, data)
        except Exception as exc:
            logger.warning("malformed Socket.IO packet from %s: %r", eio_sid, exc)
            await self._answer(eio_sid, data, error_ack("validation_error", "malformed packet"))

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        # Acks and connect answers take the fan-out's path (adapters/socketio_fanout.py):
        # on an idle WebSocket written at once, else queued, without python-engineio's
        # awaited queue put and its writer task's wake-up per packet. Same order per socket.
        fanout = getattr(self.manager, "fanout", None)
        if fanout is None:
            await super()._send_packet(eio_sid, pkt)
            return
        encoded = pkt.encode()
        fanout.send(eio_sid, engineio_packets(encoded if isinstance(encoded, list) else [encoded]))

    async def _answer(self, eio_sid: str, data: str | bytes, ack: Ack) -> None:
        """Send ``ack`` to the packet ``data`` if it is an event asking for one."""
        head = data[:80] if isinstance(data, str) else ""
        match = _ACK_ID.match(head)
        if match is None:
            return
        namespace, ack_id = match.group(1) or "/", int(match.group(2))
        reply = self.packet_class(packet.ACK, namespace=namespace, data=[ack], id=ack_id)
        await self._send_packet(eio_sid, reply)

    async def _close_session(self, eio_sid: str) -> None:
        socket = self.eio.sockets.get(eio_sid)
        if socket is None:
            return
        logger.info("closed Engine.IO session %s: no authenticated connect in time", eio_sid)
        # Not eio.disconnect(): it waits for the client to fetch the CLOSE packet, which a
        # client that went away never does.
        await socket.close(wait=False)
        self.eio.sockets.pop(eio_sid, None)
