"""Graceful drain on SIGTERM: answer what is in flight, say goodbye, then stop.

uvicorn's own shutdown closes WebSockets at once and then waits for HTTP
requests; a socket event still being handled then finds its socket gone (the
message is stored but never acknowledged), and a socket disconnected after the
lifespan closed storage loses its user's ``lastSeenAt``. ``chatcore serve``
therefore runs :func:`drain` first, while everything is still open:

1. new sockets are refused and new socket events answered ``unavailable``
   (HTTP requests go on: uvicorn stops accepting and waits for them next);
2. socket events already running finish and are acknowledged;
3. every socket is disconnected by the server, which runs the disconnect
   handler (presence and ``lastSeenAt`` recorded), and every Engine.IO session
   is closed, which also answers pending long-polling requests at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Final

import socketio

from entrypoints.runtime import Runtime

log = logging.getLogger("chatcore")

_POLL_SECONDS: Final = 0.01
# How long closing Engine.IO sessions may wait for clients to fetch what is queued.
_FLUSH_SECONDS: Final = 1.0
_NAMESPACE: Final = "/"


async def drain(sio: socketio.AsyncServer, runtime: Runtime, *, wait_seconds: float) -> None:
    """Steps 1-3 above; waits for running events ``wait_seconds`` at most."""
    runtime.draining = True
    started = time.monotonic()
    deadline = started + wait_seconds
    # Polled, not an Event: the hot path then keeps a plain counter (no Event to set).
    while runtime.in_flight.count and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(_POLL_SECONDS)
    if runtime.in_flight.count:
        log.warning("drain: %d socket event(s) still running", runtime.in_flight.count)
    # One more turn of the loop: the acks of the events that just finished are queued.
    await asyncio.sleep(0)
    sids = [sid for sid, _ in sio.manager.get_participants(_NAMESPACE, None)]
    # ignore_queue: these sockets are all local; no need to go through Redis.
    await asyncio.gather(
        *(sio.disconnect(sid, ignore_queue=True) for sid in sids), return_exceptions=True
    )
    if sio.eio.sockets:  # engineio's disconnect-all fails on an empty set
        # Closing waits until each socket's queue is flushed (the acks and the
        # DISCONNECT above): a polling client that stopped polling never flushes it.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_FLUSH_SECONDS):
                await sio.eio.disconnect()
    log.info("drained %d socket(s) in %.2f s", len(sids), time.monotonic() - started)
