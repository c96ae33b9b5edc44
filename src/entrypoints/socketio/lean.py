"""Lighter idle sockets: what each open WebSocket keeps in memory while nothing happens.

An idle authenticated socket used to hold ~38 KiB of Python objects (tracemalloc,
``python -m bench.idle_memory``); much of it was never used again after the
handshake, or allocated up front for traffic that rarely comes:

* **two asyncio queues** (uvicorn's incoming queue and Engine.IO's outgoing one),
  each four ``collections.deque`` of ~760 bytes even when empty, and uvicorn's
  ``writable`` :class:`asyncio.Event` (one more). :class:`SocketQueue` and
  :class:`SocketEvent` have the same behaviour for what uses them and allocate
  their buffers only while something is queued or waiting;
* **the handshake request three times**: websockets' parser keeps the parsed
  request (headers as a multi-dict) in its suspended generator for the life of
  the connection, uvicorn keeps its response and the scope's header list, and
  Engine.IO's environ a ``HTTP_*`` string per header. :class:`LeanWebSocketProtocol`
  restarts the parser past the handshake and drops the response;
  :func:`forget_handshake_headers` drops the header copies once the Socket.IO
  connect handler (the only reader) has run;
* **(CPU, not memory)** incoming small text frames are unmasked and handed to the app
  without websockets' generator-based frame parser (:meth:`LeanWebSocketProtocol.
  _take_text_frames`); anything else still goes through it;
* **a Task per socket for the next Engine.IO ping** (a coroutine sleeping 25 s,
  plus its entry in asyncio's task registry): :func:`schedule_ping` uses a timer
  handle instead.

Nothing observable changes: the same packets in the same order, the same ping
and close behaviour, the same back-pressure. The Socket.IO connect handler still
sees the full environ; ``sio.get_environ(sid)`` afterwards has no ``HTTP_*`` keys
but ``HTTP_AUTHORIZATION`` (chatcore reads nothing else, and only at connect).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Generic, TypeVar

from engineio import packet as engineio_packet
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import Protocol, State
from websockets.streams import StreamReader

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

T = TypeVar("T")

_OPEN = State.OPEN
# websockets' frame parser waits here between frames, having consumed nothing.
_AT_FRAME_BOUNDARY = StreamReader.at_eof.__code__

# Kept after the connect: a second Socket.IO connect on the same Engine.IO session runs
# the connect handler again, and it reads this one (entrypoints/socketio/handlers.py).
_KEPT_HEADERS = frozenset({"HTTP_AUTHORIZATION"})


class SocketQueue(Generic[T]):
    """An unbounded FIFO with the interface of :class:`asyncio.Queue` that Engine.IO and
    uvicorn use (``put``/``put_nowait``, ``get``/``get_nowait``, ``task_done``, ``join``,
    ``qsize``, ``empty``), with the same semantics: getters are served in order, a
    cancelled ``get`` loses no item, ``join`` waits for a ``task_done`` per item.

    It holds no deque while empty and no waiter list while nobody waits, where
    ``asyncio.Queue`` holds four deques (~3 KiB) for its whole life."""

    __slots__ = ("_getters", "_items", "_joiners", "_unfinished")

    def __init__(self) -> None:
        self._items: deque[T] | None = None
        self._getters: list[asyncio.Future[None]] | None = None
        self._joiners: list[asyncio.Future[None]] | None = None
        self._unfinished = 0

    def qsize(self) -> int:
        items = self._items
        return len(items) if items is not None else 0

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: T) -> None:
        items = self._items
        if items is None:
            items = self._items = deque()
        items.append(item)
        self._unfinished += 1
        self._wake_getter()

    async def put(self, item: T) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> T:
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            # An emptied deque keeps a 64-slot block: give it back while idle.
            self._items = None
        return item

    async def get(self) -> T:
        while not self._items:
            self._getters, getter = _new_waiter(self._getters)
            try:
                await getter
            except BaseException:
                getter.cancel()
                getters = self._getters
                if getters is not None and getter in getters:
                    getters.remove(getter)
                elif self._items:
                    # Woken, then cancelled: the item it was woken for goes to the next.
                    self._wake_getter()
                raise
        return self.get_nowait()

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._joiners is not None:
            joiners, self._joiners = self._joiners, None
            for joiner in joiners:
                if not joiner.done():
                    joiner.set_result(None)

    async def join(self) -> None:
        if self._unfinished > 0:
            self._joiners, joiner = _new_waiter(self._joiners)
            await joiner

    def _wake_getter(self) -> None:
        # The (empty) list is kept once made: a socket that waits once waits again.
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                break


def _new_waiter(
    waiters: list[asyncio.Future[None]] | None,
) -> tuple[list[asyncio.Future[None]], asyncio.Future[None]]:
    """A new future appended to ``waiters`` (created on first use); both returned."""
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    if waiters is None:
        waiters = []
    waiters.append(waiter)
    return waiters, waiter


class SocketEvent:
    """:class:`asyncio.Event` (``is_set``, ``set``, ``clear``, ``wait``) without a waiter
    deque while nobody waits."""

    __slots__ = ("_value", "_waiters")

    def __init__(self, value: bool = False) -> None:
        self._value = value
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if not self._value:
            self._value = True
            waiters, self._waiters = self._waiters, None
            for waiter in waiters or ():
                if not waiter.done():
                    waiter.set_result(None)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        self._waiters, waiter = _new_waiter(self._waiters)
        try:
            await waiter
            return True
        finally:
            waiters = self._waiters
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O ``websockets`` protocol (``ws="websockets-sansio"``, what
    ``ws="auto"`` picks), keeping less per connection: see the module docstring. Pass the
    class itself as uvicorn's ``ws``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Used as uvicorn uses its asyncio.Queue and Event (put_nowait/get/empty, wait/set).
        self.queue = SocketQueue()  # type: ignore[assignment]
        self.writable = SocketEvent(value=True)  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if (
            conn.state is _OPEN
            and conn.current_size is None  # not inside a fragmented message
            and not conn.extensions
            and not conn.reader.buffer
            and getattr(getattr(conn.parser, "gi_yieldfrom", None), "gi_code", None)
            is _AT_FRAME_BOUNDARY
        ):
            data = self._take_text_frames(data)
            if not data:
                return
        super().data_received(data)

    def _take_text_frames(self, data: bytes) -> bytes:
        """Hand the complete, masked, unfragmented text frames at the start of ``data``
        to the app, as websockets' parser and uvicorn's ``handle_text`` would; return the
        rest (anything else: control frames, fragments, a partial frame, a frame over
        the size limit) for websockets' parser, which is then at a frame boundary.

        websockets parses every frame in a generator pipeline (a Frame object, checks,
        an event list, a dispatch by type): per incoming ``sendMessage`` that was about
        a tenth of the server's CPU at 600 msg/s. Chat clients send small text frames."""
        limit = self.conn.max_message_size
        while len(data) >= 6 and data[0] == 0x81:  # FIN, no RSV bits, TEXT
            size = data[1] ^ 0x80  # a client's frame is masked; else websockets refuses it
            if size < 126:
                start = 6
            elif size == 126 and len(data) >= 8:
                size = int.from_bytes(data[2:4], "big")
                start = 8
            else:
                break  # unmasked, 64-bit length, or the length not all here
            end = start + size
            if len(data) < end or (limit is not None and size > limit):
                break
            self.curr_msg_data_type = "text"
            self.frames = [apply_mask(data[start:end], data[start - 4 : start])]
            self.send_receive_event_to_app()  # decodes; invalid UTF-8 closes (1007)
            data = data[end:]
            if self.transport.is_closing():
                return b""
        return data

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # uvicorn never reads the parsed request after this (its scope has the headers).
        self.request = None  # type: ignore[assignment]
        _restart_parser(self.conn)

    def start_keepalive(self) -> None:
        # Called once, right after the accepted handshake's response went out: the
        # response (headers included) is not used again.
        self.response = None  # type: ignore[assignment]
        super().start_keepalive()


def _restart_parser(conn: Any) -> None:
    """Replace websockets' server-side parser generator, which keeps the handshake
    request in a local for the life of the connection, by the frame parser it runs
    next, if that one has consumed nothing yet (it waits at the top of its loop for
    data or end of stream: a client sends no frame before the 101 response)."""
    parser = conn.parser
    frames = getattr(parser, "gi_yieldfrom", None)  # the frame parser (Protocol.parse)
    waiting = getattr(frames, "gi_yieldfrom", None)  # what it waits on
    if (
        getattr(frames, "gi_code", None) is not Protocol.parse.__code__
        or getattr(waiting, "gi_code", None) is not _AT_FRAME_BOUNDARY
        or conn.reader.buffer
    ):
        return
    fresh = Protocol.parse(conn)
    next(fresh)  # runs to the same place: at_eof, waiting for data
    conn.parser = fresh
    parser.close()


def forget_handshake_headers(environ: dict[str, Any]) -> None:
    """Drop the header copies of a connected socket's environ (its ``HTTP_*`` strings
    and the ASGI scope's header list, shared with uvicorn) but ``HTTP_AUTHORIZATION``;
    call after the Socket.IO connect handler has run."""
    for key in [k for k in environ if k.startswith("HTTP_") and k not in _KEPT_HEADERS]:
        del environ[key]
    scope = environ.get("asgi.scope")
    if isinstance(scope, dict) and scope.get("type") == "websocket":
        # HTTP long-polling scopes end with their request; a WebSocket's lives on.
        scope["headers"] = []


def schedule_ping(self: Any) -> None:
    """``engineio.async_socket.AsyncSocket.schedule_ping`` (engineio 4.x) on a timer
    handle instead of a Task that sleeps ``ping_interval``: same ping, same timing."""
    # only schedule a new ping if the previous ping wait cycle completed
    if self.last_ping:
        self.last_ping = None
        asyncio.get_running_loop().call_later(self.server.ping_interval, _send_ping, self)


def _send_ping(socket: Any) -> None:
    # AsyncSocket._send_ping after its sleep: socket.send(PING) is a ping-timeout check
    # (passes: last_ping was just set), a closed check (done here) and a queue put.
    if not socket.closing and not socket.closed:
        socket.last_ping = time.time()
        socket.queue.put_nowait(engineio_packet.Packet(engineio_packet.PING))


# CHATCORE_WS_PROTOCOL: uvicorn's WebSocket implementation in `chatcore serve`.
WS_PROTOCOLS = ("lean", "websockets-sansio", "wsproto")


def uvicorn_ws(name: str) -> type[Any] | str:
    """uvicorn's ``ws`` argument for a ``CHATCORE_WS_PROTOCOL`` value: ``lean`` is
    :class:`LeanWebSocketProtocol`, the others are uvicorn's own (by their uvicorn names)."""
    if name not in WS_PROTOCOLS:
        raise ValueError(f"unknown WebSocket protocol {name!r}: one of {WS_PROTOCOLS}")
    return LeanWebSocketProtocol if name == "lean" else name
