"""Direct WebSocket writes: one frame, built once per emit, written to each socket's transport.

On the WebSocket transport, Engine.IO hands every outgoing packet to a writer
task per socket: queue it, wake the writer, wrap it in an ASGI message, and
uvicorn frames it and writes it. For an emit to many sockets that is, per
recipient, a task wake-up, a timer, a queue round trip, an ASGI dict and a
frame serialisation of the very same bytes.

When a socket is served by uvicorn's sans-I/O ``websockets`` protocol and
nothing is pending for it, :func:`write_frame` instead writes the frame (built
once for the emit by :func:`text_frame`) straight to the socket's transport,
the same call uvicorn's ``send`` ends with. Anything else takes the queue, so
that nothing is ever written out of order or into a closing connection:

* Engine.IO packets still queued, or being written by the writer task
  (counted around its ``ws.send``, which can wait while the transport is
  paused), or an upgrade in progress;
* a transport that is paused (the client reads slowly: writing waits, in the
  writer task, for the transport to drain, exactly as before) or closing;
* a WebSocket that is not open, is mid-fragment, or negotiated an extension
  (per-message deflate: frames differ per connection).

The per-socket state this needs is recorded by a wrapper of
``AsyncSocket._websocket_handler`` installed once per process (:func:`install`).
"""

from __future__ import annotations

from typing import Any

from engineio.async_socket import AsyncSocket
from websockets.protocol import State

# The protocols direct writes know: uvicorn's sans-I/O websockets one (others: queue only).
_DIRECT_PROTOCOLS: tuple[type, ...]
try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    _DIRECT_PROTOCOLS = (WebSocketsSansIOProtocol,)
except ImportError:  # pragma: no cover - another uvicorn version
    _DIRECT_PROTOCOLS = ()

_OPEN = State.OPEN
# The handler the recording runs: Engine.IO's own, or a replacement (use_inner_handler).
_inner_handler = AsyncSocket._websocket_handler
_installed = False


class DirectLine:
    """What a socket's direct writes need: uvicorn's protocol and the writer's activity."""

    __slots__ = ("protocol", "sending")

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.sending = 0  # the writer task's ws.send calls in progress


async def _recording_handler(self: Any, ws: Any) -> None:
    protocol = getattr(ws.asgi_send, "__self__", None)
    if isinstance(protocol, _DIRECT_PROTOCOLS):
        line = DirectLine(protocol)
        send = ws.send

        async def counted_send(message: Any) -> None:
            line.sending += 1
            try:
                await send(message)
            finally:
                line.sending -= 1

        ws.send = counted_send
        self.direct_line = line
        # uvicorn keeps the parsed handshake request (headers: ~3 KiB) for the life of
        # the connection and never reads it after the accept.
        line.protocol.request = None
    try:
        await _inner_handler(self, ws)
    finally:
        self.direct_line = None


def install() -> None:
    """Record each WebSocket session's direct line (once per process; idempotent)."""
    global _installed
    if not _installed:
        AsyncSocket._websocket_handler = _recording_handler
        _installed = True


def use_inner_handler(handler: Any) -> None:
    """Serve WebSocket sessions with ``handler``, a replacement of Engine.IO's
    ``AsyncSocket._websocket_handler`` with the same behaviour (the entrypoint's, see
    entrypoints/socketio/transport.py), whether or not :func:`install` ran before: once
    installed, the recording runs around it."""
    global _inner_handler
    _inner_handler = handler
    if not _installed:
        AsyncSocket._websocket_handler = handler


def text_frame(text: str) -> bytes:
    """An unmasked, unfragmented text frame (what a server sends without extensions):
    the bytes of websockets' ``Frame(Opcode.TEXT, data).serialize(mask=False)``, built
    without its frame object and checks (once per emit and per ack: on the hot path)."""
    data = text.encode()
    size = len(data)
    if size < 126:
        return bytes((0x81, size)) + data
    if size < 0x10000:
        return b"\x81\x7e" + size.to_bytes(2, "big") + data
    return b"\x81\x7f" + size.to_bytes(8, "big") + data


def write_frame(socket: Any, frame: bytes) -> bool:
    """Write ``frame`` to the socket's transport if that keeps every guarantee of the
    queue (see the module docstring); False when the caller must queue instead."""
    line: DirectLine | None = getattr(socket, "direct_line", None)
    if (
        line is None
        or line.sending
        or socket.upgrading
        or not socket.upgraded
        or socket.queue.qsize()
    ):
        return False
    protocol = line.protocol
    conn = protocol.conn
    if (
        protocol.close_sent
        or protocol.disconnected
        or not protocol.writable.is_set()
        or conn.state is not _OPEN
        or conn.expect_continuation_frame
        or conn.extensions
    ):
        return False
    transport = protocol.transport
    if transport.is_closing():
        return False
    transport.write(frame)
    return True
