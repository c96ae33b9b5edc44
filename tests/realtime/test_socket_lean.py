"""Lighter idle sockets (entrypoints/socketio/lean.py): the pieces, and a live server on them.

The queue and event stand in for asyncio's inside uvicorn and Engine.IO, so they are
pinned to asyncio's semantics where those are used; the live tests check what the
lighter socket must still do: pings on a timer, the handshake's headers gone after
the connect but the bearer header.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from typing import Any

import pytest
import websockets
import websockets.asyncio.client
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket
from livechat import TIMEOUT, LiveChat
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from adapters import socketio_direct
from entrypoints.socketio.lean import SocketEvent, SocketQueue, _restart_parser
from support.waiting import wait_until

HANDSHAKE = (
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: a\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"User-Agent: test\r\n\r\n"
)


async def test_queue_is_fifo_and_wakes_a_waiting_getter() -> None:
    queue: SocketQueue[int] = SocketQueue()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()

    queue.put_nowait(1)
    await queue.put(2)

    assert await getter == 1
    assert queue.get_nowait() == 2
    assert queue.empty()
    assert queue.qsize() == 0
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_a_getter_cancelled_after_its_wake_up_loses_no_item() -> None:
    queue: SocketQueue[str] = SocketQueue()
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)

    queue.put_nowait("item")  # wakes the first getter...
    first.cancel()  # ...which is cancelled before it runs

    assert await asyncio.wait_for(second, TIMEOUT) == "item"
    assert first.cancelled()


async def test_join_waits_for_a_task_done_per_item() -> None:
    queue: SocketQueue[str] = SocketQueue()
    await queue.join()  # nothing queued: returns at once
    queue.put_nowait("a")
    queue.put_nowait("b")
    joined = asyncio.ensure_future(queue.join())
    queue.get_nowait()
    queue.task_done()
    await asyncio.sleep(0)
    assert not joined.done()

    queue.get_nowait()
    queue.task_done()

    await asyncio.wait_for(joined, TIMEOUT)
    with pytest.raises(ValueError, match="too many"):
        queue.task_done()


async def test_event_wait_returns_once_set_and_not_after_a_clear() -> None:
    event = SocketEvent(value=True)
    assert await event.wait()
    event.clear()
    waiter = asyncio.ensure_future(event.wait())
    await asyncio.sleep(0)
    assert not waiter.done()

    event.set()

    assert await asyncio.wait_for(waiter, TIMEOUT)
    assert event.is_set()


def test_the_restarted_parser_keeps_no_handshake_request_and_parses_frames() -> None:
    conn = ServerProtocol()
    conn.receive_data(HANDSHAKE)
    [request] = conn.events_received()
    assert isinstance(request, Request)
    conn.send_response(conn.accept(request))
    conn.data_to_send()
    kept = weakref.ref(request)
    del request

    _restart_parser(conn)
    gc.collect()

    assert kept() is None, "the handshake request is still referenced"
    conn.receive_data(Frame(Opcode.TEXT, b"40").serialize(mask=True))
    [frame] = conn.events_received()
    assert (frame.opcode, frame.data) == (Opcode.TEXT, b"40")


def test_a_parser_in_the_middle_of_a_frame_is_left_alone() -> None:
    conn = ServerProtocol()
    conn.receive_data(HANDSHAKE)
    [request] = conn.events_received()
    conn.send_response(conn.accept(request))
    frame = Frame(Opcode.TEXT, b"hello").serialize(mask=True)
    conn.receive_data(frame[:3])  # a client that did not wait for the response
    parser = conn.parser

    _restart_parser(conn)

    assert conn.parser is parser
    conn.receive_data(frame[3:])
    [received] = conn.events_received()
    assert received.data == b"hello"


async def test_pings_keep_coming_on_the_timer(
    live: LiveChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each PONG schedules the next ping: count them on a short interval.
    live.sio.eio.ping_interval = 0.05
    pongs = 0
    schedule = AsyncSocket.schedule_ping

    def counted(self: Any) -> None:
        nonlocal pongs
        pongs += 1
        schedule(self)

    monkeypatch.setattr(AsyncSocket, "schedule_ping", counted)
    (alice,) = await live.users("alice")
    client = await live.connect(alice)

    await wait_until(lambda: pongs >= 3, within=TIMEOUT)

    assert client.sio.connected
    await client.settle()


async def test_a_connected_socket_keeps_the_bearer_header_only(live: LiveChat) -> None:
    (alice,) = await live.users("alice")
    client = await live.connect(alice)

    environ = live.sio.get_environ(client.sid)

    assert "HTTP_USER_AGENT" not in environ
    assert "HTTP_HOST" not in environ
    assert environ["asgi.scope"]["headers"] == []
    await client.settle()


async def test_a_websocket_that_sends_nothing_is_closed_after_the_read_timeout(
    live: LiveChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reader's deadline: ping_interval + ping_timeout without a packet from the
    # client, which here sends nothing at all (the Socket.IO connect deadline is 10 s).
    # The other two guards are kept from firing: the writer's (no packet to send within
    # the same time) by the NOOPs fed below, Engine.IO's ping check by no pings.
    live.sio.eio.ping_interval = 0.1
    live.sio.eio.ping_timeout = 0.1
    monkeypatch.setattr(AsyncSocket, "schedule_ping", lambda self: None)
    url = live.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"

    async def keep_the_writer_busy() -> None:
        while True:
            for socket in list(live.sio.eio.sockets.values()):
                socket.last_ping = None  # no ping outstanding: nothing to time out
                socket.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))
            await asyncio.sleep(0.02)

    feeder = asyncio.create_task(keep_the_writer_busy())
    received: list[str | bytes] = []
    try:
        async with websockets.asyncio.client.connect(url) as ws:
            with contextlib.suppress(websockets.ConnectionClosed):
                async with asyncio.timeout(TIMEOUT):
                    while True:
                        received.append(await ws.recv())
    finally:
        feeder.cancel()

    assert str(received[0]).startswith("0{")  # the Engine.IO open packet
    assert "6" in received  # NOOPs: the writer was alive throughout
    assert "2" not in received  # no ping
    await wait_until(lambda: not live.sio.eio.sockets, within=TIMEOUT)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_text_frames_are_the_bytes_websockets_would_send(size: int) -> None:
    text = ("é" * size)[:size] if size % 2 else "x" * size

    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False)

    assert socketio_direct.text_frame(text) == expected


class RawWebSocket:
    """A WebSocket client whose writes go out exactly as given (websockets' sans-I/O
    client frames them), to send several frames in one write or one frame in pieces."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.protocol = ClientProtocol(parse_uri("ws://127.0.0.1/socket.io/"))
        self.texts: list[str] = []

    @classmethod
    async def open(cls, live: LiveChat) -> RawWebSocket:
        host, port = live.url.removeprefix("http://").split(":")
        raw = cls(*await asyncio.open_connection(host, int(port)))
        request = raw.protocol.connect()
        request.path = "/socket.io/?EIO=4&transport=websocket"
        raw.protocol.send_request(request)
        raw.writer.write(b"".join(raw.protocol.data_to_send()))
        assert (await raw.next_text()).startswith("0{")  # the Engine.IO open packet
        return raw

    def frames(self, *texts: str) -> bytes:
        """The masked frames of ``texts``, as one byte string."""
        for text in texts:
            self.protocol.send_text(text.encode())
        return b"".join(self.protocol.data_to_send())

    async def next_text(self) -> str:
        while not self.texts:
            self.protocol.receive_data(await asyncio.wait_for(self.reader.read(65536), TIMEOUT))
            for event in self.protocol.events_received():
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    self.texts.append(event.data.decode())
        return self.texts.pop(0)

    def close(self) -> None:
        self.writer.close()


async def test_text_frames_are_read_whole_batched_split_or_large(live: LiveChat) -> None:
    (alice,) = await live.users("alice")
    raw = await RawWebSocket.open(live)
    try:
        raw.writer.write(raw.frames(f'40{{"token":"{alice.token}"}}'))
        assert (await raw.next_text()).startswith("40{")  # connected

        # Three events asking for acks in one write: three frames in one read.
        sync = '["sync",{"since":{}}]'
        raw.writer.write(raw.frames(f"421{sync}", f"422{sync}", f"423{sync}"))
        # One frame in three writes (header, then the payload in two).
        frame = raw.frames(f"424{sync}")
        for piece in (frame[:3], frame[3:10], frame[10:]):
            raw.writer.write(piece)
            await raw.writer.drain()
        # A frame with a 16-bit length (over 125 bytes), not ASCII.
        raw.writer.write(raw.frames(f'425["sync",{{"since":{{"{"é" * 60}":0}}}}]'))
        # A text frame, a PING control frame and a text frame in one write.
        raw.protocol.send_text(f"426{sync}".encode())
        raw.protocol.send_ping(b"p")
        raw.protocol.send_text(f"427{sync}".encode())
        raw.writer.write(b"".join(raw.protocol.data_to_send()))

        acks = [await raw.next_text() for _ in range(7)]

        assert [a[:3] for a in acks] == ["431", "432", "433", "434", "435", "436", "437"]
        assert all('"ok":true' in a for a in acks), acks
    finally:
        raw.close()


async def test_invalid_utf8_in_a_text_frame_closes_the_connection(live: LiveChat) -> None:
    raw = await RawWebSocket.open(live)
    try:
        raw.protocol.send_frame(Frame(Opcode.TEXT, b"42\xff\xfe"))
        raw.writer.write(b"".join(raw.protocol.data_to_send()))

        with contextlib.suppress(TimeoutError, ConnectionError):
            while True:
                raw.protocol.receive_data(
                    await asyncio.wait_for(raw.reader.read(65536), TIMEOUT) or b""
                )
                if raw.protocol.close_rcvd is not None or raw.reader.at_eof():
                    break

        assert raw.protocol.close_rcvd is not None
        assert raw.protocol.close_rcvd.code == 1007  # invalid frame payload data
    finally:
        raw.close()
