"""The fan-out manager (adapters.socketio_fanout) with real clients: no Task per
recipient, per-socket order, and one stopped or killed client isolated from the rest."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from livechat import TIMEOUT, LiveChat, SocketClient, User

from adapters import socketio_direct, socketio_fanout
from adapters.socketio_fanout import FanoutManager

# A client in a process of its own: connects with the token in argv[2], says so, then
# prints the "n" of every "probe" event it receives.
_CLIENT = """
import asyncio, sys, socketio

async def main():
    sio = socketio.AsyncClient(reconnection=False)
    sio.on("probe", lambda data: print(data["n"], flush=True))
    await sio.connect(sys.argv[1], auth={"token": sys.argv[2]}, transports=["websocket"])
    print("connected", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.fixture
def client_process() -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []

    def start(url: str, token: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CLIENT, url, token], stdout=subprocess.PIPE, text=True
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        with_signal = proc.poll() is None
        if with_signal:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        proc.wait()


async def _elsewhere_and_here(
    live: LiveChat, client_process: Any
) -> tuple[User, User, subprocess.Popen[str], SocketClient]:
    """alice with a socket from a client process of her own, bob with one here."""
    alice, bob = await live.users("alice", "bob")
    proc: subprocess.Popen[str] = client_process(live.url, alice.token)
    assert proc.stdout is not None
    assert await asyncio.to_thread(proc.stdout.readline) == "connected\n"
    await live.wait_socket_count(alice, 1)
    return alice, bob, proc, await live.connect(bob)


async def test_the_server_uses_the_fanout_manager(live: LiveChat) -> None:
    assert isinstance(live.sio.manager, FanoutManager)


async def test_an_emit_to_many_sockets_creates_no_task(live: LiveChat) -> None:
    (alice,) = await live.users("alice")
    sockets = [await live.connect(alice) for _ in range(10)]
    loop = asyncio.get_running_loop()
    created: list[Any] = []
    default_factory = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        created.append(coro)
        if default_factory is not None:
            return default_factory(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        await live.sio.emit("probe", {"n": 1}, to=f"user:{alice.id}")
    finally:
        loop.set_task_factory(default_factory)

    # python-socketio's own manager creates one Task per recipient socket here.
    assert created == []
    assert [await s.next("probe") for s in sockets] == [{"n": 1}] * 10


@pytest.fixture
def direct_writes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each direct write attempt returned (True: written at once), in order."""
    if os.environ.get("CHATCORE_WS_PROTOCOL") == "wsproto" or os.environ.get(
        "CHATCORE_TEST_SERVER"
    ):
        pytest.skip("direct writes apply to uvicorn's sans-I/O websockets protocol only")
    written: list[bool] = []

    def recording(socket: Any, frame: bytes) -> bool:
        written.append(socketio_direct.write_frame(socket, frame))
        return written[-1]

    monkeypatch.setattr(socketio_fanout, "write_frame", recording)
    return written


async def test_emits_to_idle_websockets_are_written_to_their_transports_at_once(
    live: LiveChat, direct_writes: list[bool]
) -> None:
    alice, bob = await live.users("alice", "bob")
    websockets = [await live.connect(alice), await live.connect(bob)]
    polling = await live.connect(alice, transports=["polling"])
    direct_writes.clear()  # the connect answers

    await live.sio.emit("probe", {"n": 1}, to=[f"user:{alice.id}", f"user:{bob.id}"])

    # The two WebSockets directly; the polling socket has no direct line (queued).
    assert direct_writes == [True, True]
    for socket in [*websockets, polling]:
        assert await socket.next("probe") == {"n": 1}


async def test_acks_to_an_idle_websocket_are_written_at_once_in_order(
    live: LiveChat, direct_writes: list[bool]
) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.direct(alice, bob))["id"]
    sender = await live.connect(alice)
    direct_writes.clear()  # the connect answer

    acks = [
        await sender.call("sendMessage", {"conversationId": cid, "body": f"{n}"}) for n in range(3)
    ]

    # Per send: the newMessage echo to alice's socket, then the ack, both direct.
    assert direct_writes == [True, True] * 3
    assert [a["message"]["seq"] for a in acks] == [1, 2, 3]
    assert [(await sender.next("newMessage"))["seq"] for _ in range(3)] == [1, 2, 3]


async def test_every_socket_gets_every_emit_in_order_on_either_transport(
    live: LiveChat,
) -> None:
    alice, bob = await live.users("alice", "bob")
    sockets = [
        await live.connect(alice),
        await live.connect(alice, transports=["polling"]),
        await live.connect(bob),
    ]
    total = 150

    for n in range(total):
        await live.sio.emit("probe", {"n": n}, to=[f"user:{alice.id}", f"user:{bob.id}"])

    for socket in sockets:
        assert [(await socket.next("probe"))["n"] for _ in range(total)] == list(range(total))
        assert socket.pending("probe") == []


async def test_a_socket_in_two_target_rooms_gets_an_emit_once(live: LiveChat) -> None:
    (alice,) = await live.users("alice")
    socket = await live.connect(alice)
    assert socket.sid is not None
    await live.sio.enter_room(socket.sid, "team")

    await live.sio.emit("probe", {"n": 1}, to=[f"user:{alice.id}", "team"])
    await socket.settle()

    assert socket.pending("probe") == [{"n": 1}]


async def test_skip_sid_leaves_that_socket_out(live: LiveChat) -> None:
    (alice,) = await live.users("alice")
    first, second = await live.connect(alice), await live.connect(alice)

    await live.sio.emit("probe", {"n": 1}, to=f"user:{alice.id}", skip_sid=first.sid)
    await first.settle()

    assert await second.next("probe") == {"n": 1}
    assert first.pending("probe") == []


async def test_a_stopped_client_does_not_hold_back_the_others(
    live: LiveChat, client_process: Any
) -> None:
    alice, bob, stopped, listener = await _elsewhere_and_here(live, client_process)
    stopped.send_signal(signal.SIGSTOP)
    # Several MB: more than the kernel buffers of the stopped client's connection hold,
    # so the server's writer for that socket blocks.
    blob = "x" * 200_000
    total = 40

    for n in range(total):
        await live.sio.emit(
            "probe", {"n": n, "blob": blob}, to=[f"user:{alice.id}", f"user:{bob.id}"]
        )

    got = [(await listener.next("probe", within=TIMEOUT))["n"] for _ in range(total)]
    assert got == list(range(total))
    # Resumed, the stopped client gets everything in order: what was written before
    # its connection backed up, then what waited in its queue meanwhile.
    for n in range(total, total + 5):
        await live.sio.emit("probe", {"n": n}, to=f"user:{alice.id}")
    stopped.send_signal(signal.SIGCONT)
    assert stopped.stdout is not None
    lines = [await asyncio.to_thread(stopped.stdout.readline) for _ in range(total + 5)]
    assert [int(line) for line in lines] == list(range(total + 5))


async def test_a_killed_client_does_not_stop_delivery_to_the_others(
    live: LiveChat, client_process: Any
) -> None:
    alice, bob, killed, listener = await _elsewhere_and_here(live, client_process)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()

    for n in range(20):
        await live.sio.emit("probe", {"n": n}, to=[f"user:{alice.id}", f"user:{bob.id}"])

    assert [(await listener.next("probe"))["n"] for _ in range(20)] == list(range(20))
    await live.wait_socket_count(alice, 0)
