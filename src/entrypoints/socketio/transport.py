"""Engine.IO long-polling behaviours that hurt stock clients, fixed once per process.

python-engineio decodes at most ``Payload.max_decode_packets`` (16) packets per
HTTP long-polling payload, on the server *and* in its own client, and treats a
longer payload as an error:

* The JavaScript client batches every buffered packet into one POST, so a
  browser on polling that emits 17 events in a burst would have the whole batch
  refused (python-engineio logs "Too many packets in payload"; the events are
  lost). The server therefore accepts larger batches; ``max_http_buffer_size``
  still bounds a POST in bytes, which is what the limit protected.
* The server answers a GET with every packet queued for the socket, so a
  python-socketio client on polling that is sent 17 events between two polls
  (any busy group) rejects the payload and drops the connection. The server
  therefore answers a GET with at most 16 packets; the rest wait for the next
  poll, which the client sends at once.
* When a polling client closes (a CLOSE packet in a POST), python-engineio does
  not answer the client's pending long-poll GET, and python-socketio's
  ``disconnect()`` waits for that GET: up to 30 s per socket. The server now
  answers it (empty) as soon as the session is closed, as it already does for
  WebSocket sessions.

On the WebSocket transport, python-engineio's reader loop wraps every incoming
packet's read in a new Task and an ``asyncio.wait_for`` (the ping timeout): a
Task, its first step a loop iteration later, a waiter future and a timer per
``sendMessage``. The server reads instead in the session's own task, under one
re-arming timer per socket (same timeout, same outcome: the session closes).

All four (and :func:`entrypoints.socketio.lean.schedule_ping`) are process-wide class
attributes of python-engineio (python-socketio's own admin instrumentation patches the
same class the same way); :func:`install` is idempotent. On the WebSocket transport the
other effect is that the writer takes queued packets 16 at a time (each is still written
as its own frame).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from engineio import exceptions as engineio_exceptions
from engineio import packet as engineio_packet
from engineio.async_socket import AsyncSocket
from engineio.payload import Payload

from adapters import socketio_direct
from entrypoints.socketio import lean

# The default of python-engineio clients: a GET response must not carry more.
MAX_PACKETS_PER_POLL_RESPONSE: Final = 16
# Accepted per POST; the byte size is bounded separately (max_http_buffer_size).
MAX_PACKETS_PER_POST: Final = 1000

_installed = False
_original_close = AsyncSocket.close


async def _bounded_poll(self: Any) -> list[Any]:
    # engineio.async_socket.AsyncSocket.poll with a cap on the batch (engineio 4.x):
    # wait for one packet, then take what is queued, up to the cap. ``None`` in the
    # queue means "closing" and is put back for the next poll to see.
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for wraps the get in a new
    # Task, i.e. one Task per packet batch and socket on the delivery hot path.
    try:
        async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
            packets = [await self.queue.get()]
        self.queue.task_done()
    except (TimeoutError, asyncio.CancelledError):
        raise engineio_exceptions.QueueEmpty() from None
    if packets == [None]:
        return []
    while len(packets) < MAX_PACKETS_PER_POLL_RESPONSE:
        try:
            pkt = self.queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        self.queue.task_done()
        if pkt is None:
            self.queue.put_nowait(None)
            break
        packets.append(pkt)
    return packets


async def _close_releasing_long_poll(
    self: Any, wait: bool = True, abort: bool = False, reason: Any = None
) -> None:
    was_open = not self.closed and not self.closing
    await _original_close(self, wait=wait, abort=abort, reason=reason)
    # abort=True is the client-initiated close (no CLOSE packet is queued for the
    # client). A polling session's pending GET is waiting on the queue: ``None``
    # makes it return an empty payload, exactly what the WebSocket path does.
    if was_open and abort and not self.upgraded:
        self.queue.put_nowait(None)


async def _websocket_handler(self: Any, ws: Any) -> None:
    # engineio.async_socket.AsyncSocket._websocket_handler (engineio 4.x) line for line,
    # but for the reader loop at the end (no Task and wait_for per incoming packet) and
    # its final wait_for(writer_task, timeout=None), which is a plain await.
    async def websocket_wait() -> Any:
        data = await ws.wait()
        if data and len(data) > self.server.max_http_buffer_size:
            raise ValueError("packet is too large")
        return data

    if self.connected:
        # the socket was already connected, so this is an upgrade
        self.upgrading = True  # hold packet sends during the upgrade
        try:
            pkt = await websocket_wait()
        except OSError:  # pragma: no cover
            return
        decoded_pkt = engineio_packet.Packet(encoded_packet=pkt)
        if decoded_pkt.packet_type != engineio_packet.PING or decoded_pkt.data != "probe":
            self.server.logger.info("%s: Failed websocket upgrade, no PING packet", self.sid)
            self.upgrading = False
            return
        await ws.send(engineio_packet.Packet(engineio_packet.PONG, data="probe").encode())
        await self.queue.put(engineio_packet.Packet(engineio_packet.NOOP))  # end poll
        try:
            pkt = await websocket_wait()
        except OSError:  # pragma: no cover
            self.upgrading = False
            return
        decoded_pkt = engineio_packet.Packet(encoded_packet=pkt)
        if decoded_pkt.packet_type != engineio_packet.UPGRADE:
            self.upgraded = False
            self.server.logger.info(
                "%s: Failed websocket upgrade, expected UPGRADE packet, received %s instead.",
                self.sid,
                pkt,
            )
            self.upgrading = False
            return
        self.upgraded = True
        self.upgrading = False
    else:
        self.connected = True
        self.upgraded = True

    async def writer() -> None:
        while True:
            try:
                packets = await self.poll()
            except engineio_exceptions.QueueEmpty:
                break
            if not packets:
                break  # empty packet list returned -> connection closed
            try:
                for pkt in packets:
                    await ws.send(pkt.encode())
            except (Exception, asyncio.CancelledError):  # upstream: a bare except
                break
        await ws.close()

    writer_task = asyncio.ensure_future(writer())
    self.server.logger.info("%s: Upgrade to websocket successful", self.sid)

    deadline = _ReadDeadline(self.server.ping_interval + self.server.ping_timeout)
    try:
        while True:
            # Upstream: ensure_future(websocket_wait()) + wait_for(task, timeout); it also
            # ends the session on any error, a timeout or a cancellation of this task.
            deadline.waiting()
            try:
                p = await websocket_wait()
            except (Exception, asyncio.CancelledError):
                break
            deadline.received()
            if p is None:
                break  # connection closed by client
            try:
                await self.receive(engineio_packet.Packet(encoded_packet=p))
            except engineio_exceptions.UnknownPacketError:  # pragma: no cover
                pass
            except engineio_exceptions.SocketIsClosedError:  # pragma: no cover
                self.server.logger.info("Receive error -- socket is closed")
                break
            except Exception:  # pragma: no cover
                # log an unexpected error and keep the connection, as upstream
                self.server.logger.exception("Unknown receive error")
    finally:
        deadline.end()

    await self.queue.put(None)  # unlock the writer task so it can exit
    await writer_task
    await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)


class _ReadDeadline:
    """The reader's timeout (no packet within ``seconds`` ends the session) as one timer
    per socket that re-arms itself, instead of a timer created and cancelled per packet
    (``asyncio.timeout``): a packet costs two assignments. On expiry the reading task is
    cancelled, exactly where ``asyncio.timeout`` would cancel it."""

    __slots__ = ("_expired", "_handle", "_loop", "_seconds", "_since", "_task")

    def __init__(self, seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._seconds = seconds
        self._since: float | None = None  # when the pending read began; None: not reading
        self._expired = False
        self._handle = self._loop.call_later(seconds, self._check)

    def waiting(self) -> None:
        self._since = self._loop.time()

    def received(self) -> None:
        self._since = None

    def end(self) -> None:
        """Stop the timer (call once the reading is over, however it ended)."""
        self._handle.cancel()
        if self._expired and self._task is not None:
            # Our own cancellation, handled (the session ends): not the caller's.
            self._task.uncancel()

    def _check(self) -> None:
        since = self._since
        now = self._loop.time()
        if since is not None and now - since >= self._seconds:
            self._expired = True
            if self._task is not None:
                self._task.cancel()
            return
        # Not reading (a packet is being handled) or read recently: check again when the
        # pending read would time out, or a whole period from now.
        due = (since if since is not None else now) + self._seconds
        self._handle = self._loop.call_at(due, self._check)


def install() -> None:
    """Apply the four fixes (once per process)."""
    global _installed
    if _installed:
        return
    Payload.max_decode_packets = max(Payload.max_decode_packets, MAX_PACKETS_PER_POST)
    AsyncSocket.poll = _bounded_poll
    AsyncSocket.close = _close_releasing_long_poll
    # A timer handle per socket for the next ping, not a sleeping Task (socketio/lean.py).
    AsyncSocket.schedule_ping = lean.schedule_ping
    # Through socketio_direct: its recording of direct lines (if any) runs around it.
    socketio_direct.use_inner_handler(_websocket_handler)
    _installed = True
