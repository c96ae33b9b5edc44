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

All three are process-wide class attributes of python-engineio (python-socketio's own
admin instrumentation patches the same class the same way); :func:`install` is
idempotent. On the WebSocket transport the only effect is that the writer takes
queued packets 16 at a time (each is still written as its own frame).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from engineio import exceptions as engineio_exceptions
from engineio.async_socket import AsyncSocket
from engineio.payload import Payload

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


def install() -> None:
    """Apply the three fixes (once per process)."""
    global _installed
    if _installed:
        return
    Payload.max_decode_packets = max(Payload.max_decode_packets, MAX_PACKETS_PER_POST)
    AsyncSocket.poll = _bounded_poll
    AsyncSocket.close = _close_releasing_long_poll
    _installed = True
