"""FanoutManager: python-socketio's client manager without an asyncio Task per recipient.

python-socketio's ``AsyncManager.emit`` encodes a packet once, then creates one
Task per recipient socket, each of which awaits ``eio.send_packet`` ->
``socket.send`` (a ping-timeout check, an awaited ``queue.put``, a log call)
and finally waits for all of them. The only thing that delivery needs is the
packet in the socket's outgoing queue: Engine.IO's per-socket writer (the
WebSocket writer task, or the pending long-poll GET) takes it from there.

:class:`FanoutManager` does exactly that, synchronously, for every recipient:

* **encoded once**: one Socket.IO encoding and one Engine.IO packet per emit,
  shared by every recipient (Engine.IO caches the packet's encoding, so the
  writers of all recipients write the same string);
* **no Task, no await per recipient**: on an idle WebSocket served by uvicorn,
  the frame (built once) is written to the socket's transport at once
  (:mod:`adapters.socketio_direct`); otherwise ``queue.put_nowait`` on the
  socket's unbounded queue, in the emitting task, for its writer to send;
* **per-socket order kept**: each socket's queue is FIFO and has one writer;
* **one slow or broken socket isolated**: queuing never waits for a socket's
  writer, so a slow socket only grows its own queue; a closed or vanished
  socket is skipped; a socket whose client stopped answering pings takes
  python-socketio's own path (``socket.send``), which closes it.

Emits with an ack callback (one packet per recipient, each with its own id) keep
python-socketio's path: chatcore never emits with a callback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from adapters import socketio_direct
from adapters.socketio_direct import text_frame, write_frame


def socketio_packets(server: Any, namespace: str, event: str, data: Any) -> list[Any]:
    """The encoded Socket.IO packet(s) of one event: one text, or a text plus
    binary attachments. ``data`` is the emit's argument (a tuple means several)."""
    if isinstance(data, tuple):
        args = [event, *data]
    elif data is None:
        args = [event]
    else:
        args = [event, data]
    encoded = server.packet_class(sio_packet.EVENT, namespace=namespace, data=args).encode()
    return encoded if isinstance(encoded, list) else [encoded]


def engineio_packets(encoded: Iterable[Any]) -> list[Any]:
    """Engine.IO MESSAGE packets carrying already encoded Socket.IO packet(s)."""
    return [eio_packet.Packet(eio_packet.MESSAGE, p) for p in encoded]


class LocalFanout:
    """Puts packets in the outgoing queues of this process's sockets in some rooms."""

    def __init__(self, manager: socketio.AsyncManager) -> None:
        self._manager = manager
        # Sockets being closed for a ping timeout: their Tasks must be referenced.
        self._closing: set[asyncio.Task[Any]] = set()

    def deliver(self, namespace: str, room: Any, packets: list[Any], skip: Any = None) -> int:
        """Queue ``packets`` (Engine.IO packets) for every socket of ``namespace``
        in ``room`` (a name, a list of names, or None for all), except the
        Socket.IO session ids in ``skip``; a socket in several of the rooms gets
        them once. Never waits; returns how many sockets were given them."""
        manager = self._manager
        rooms = manager.rooms.get(namespace)
        if not rooms:
            return 0
        if room is None or isinstance(room, str):
            members = rooms.get(room)
            if members is None:
                return 0
            # bidict's forward dict; nothing below runs other code, so no copy is needed.
            targets: dict[str, str] = members._fwdm
        else:
            targets = {}
            for name in room:
                members = rooms.get(name)
                if members is not None:
                    targets.update(members._fwdm)
        if skip is not None:
            skipped = {skip} if isinstance(skip, str) else set(skip)
            targets = {sid: eio for sid, eio in targets.items() if sid not in skipped}
        return self._queue(targets.values(), packets)

    def send(self, eio_sid: str, packets: list[Any]) -> bool:
        """Give ``packets`` (Engine.IO packets) to one socket, as :meth:`deliver` gives
        them to each of a room's; False when the socket is gone or closed."""
        return self._queue((eio_sid,), packets) == 1

    def _queue(self, eio_sids: Iterable[str], packets: list[Any]) -> int:
        eio = self._manager.server.eio
        sockets = eio.sockets
        ping_timeout = eio.ping_timeout
        now = time.time()
        delivered = 0
        # The WebSocket frame of a single text packet, built at most once for all.
        frame: bytes | None = None
        direct = len(packets) == 1 and not packets[0].binary
        for eio_sid in eio_sids:
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed:
                continue
            last_ping = socket.last_ping
            if last_ping and now - last_ping > ping_timeout:
                # The client stopped answering: socket.send closes it (rare, off the hot path).
                self._close_gone(socket, packets)
                continue
            delivered += 1
            if direct and getattr(socket, "direct_line", None) is not None:
                if frame is None:
                    frame = text_frame(packets[0].encode())
                if write_frame(socket, frame):
                    continue
            queue = socket.queue
            for p in packets:
                queue.put_nowait(p)
        return delivered

    def _close_gone(self, socket: Any, packets: list[Any]) -> None:
        task = asyncio.ensure_future(socket.send(packets[0]))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


class FanoutManager(socketio.AsyncManager):  # type: ignore[misc]  # socketio ships no types
    """python-socketio's in-process client manager, fanning out without a Task per
    recipient (see the module docstring). A drop-in ``client_manager``: rooms,
    ``sio.emit``, ``enter_room`` etc. behave as upstream."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Cooperative: also a base of pub/sub managers, whose arguments pass through.
        super().__init__(*args, **kwargs)
        self.fanout = LocalFanout(self)
        socketio_direct.install()

    async def connect(self, sid: str, namespace: str) -> Any:
        sid = await super().connect(sid, namespace)
        # The connection's WSGI-style environ lives as long as the socket; its
        # 'wsgi.input' is a request-body reader whose class Engine.IO's ASGI driver
        # defines per request (~2.5 KiB each). The socket never reads it again.
        environ = self.server.environ.get(self.eio_sid_from_sid(sid, namespace))
        if environ is not None:
            environ.pop("wsgi.input", None)
        return sid

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to
            )
            return
        room = to or room
        if namespace not in self.rooms:
            return
        packets = engineio_packets(socketio_packets(self.server, namespace, event, data))
        self.fanout.deliver(namespace, room, packets, skip_sid)
