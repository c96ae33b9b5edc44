"""Long-polling with stock python-socketio clients: bursts and prompt disconnects."""

from __future__ import annotations

import asyncio

import engineio
import pytest
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket
from engineio.payload import Payload
from livechat import LiveChat

from entrypoints.socketio import transport


async def test_a_polling_client_with_the_default_decode_limit_survives_a_burst(
    live: LiveChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.group(alice, bob))["id"]
    senders = [await live.connect(alice) for _ in range(8)]
    listener = await live.connect(bob, transports=["polling"])
    # The server raised this process-wide limit; a python-socketio client in another
    # process still has the default, and refuses a poll response carrying more.
    monkeypatch.setattr(Payload, "max_decode_packets", 16)
    total = 96

    acks = await asyncio.gather(
        *(
            senders[n % len(senders)].call("sendMessage", {"conversationId": cid, "body": f"{n}"})
            for n in range(total)
        )
    )

    assert all(a["ok"] for a in acks)
    seqs = [(await listener.next("newMessage"))["seq"] for _ in range(total)]
    assert sorted(seqs) == list(range(1, total + 1))
    assert listener.sio.connected


async def test_a_polling_client_can_emit_more_than_sixteen_events_in_one_batch(
    live: LiveChat,
) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.group(alice, bob))["id"]
    # The client's write loop sends everything queued in one POST: 40 emits started
    # together travel in one or a few payloads of more than 16 packets.
    sender = await live.connect(alice, transports=["polling"])
    receiver = await live.connect(bob)

    acks = await asyncio.gather(
        *(sender.call("sendMessage", {"conversationId": cid, "body": f"{n}"}) for n in range(40))
    )

    assert sorted(a["message"]["seq"] for a in acks) == list(range(1, 41))
    seqs = [(await receiver.next("newMessage"))["seq"] for _ in range(40)]
    assert sorted(seqs) == list(range(1, 41))


async def test_a_polling_client_disconnect_reaches_the_server(live: LiveChat) -> None:
    alice = await live.register("alice")
    client = await live.connect(alice, transports=["polling"])
    await live.wait_socket_count(alice, 1)

    # python-socketio's disconnect() waits for its pending long-poll GET, which the
    # server now answers at once (it used to hang until the ping timeout, 25 s+).
    await asyncio.wait_for(client.close(), timeout=5)

    await live.wait_socket_count(alice, 0)


async def test_a_poll_response_carries_at_most_sixteen_packets() -> None:
    server = engineio.AsyncServer(async_mode="asgi")
    transport.install()
    socket = AsyncSocket(server, "sid")
    for n in range(40):
        socket.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, f"m{n}"))

    batches = [await socket.poll() for _ in range(3)]

    assert [len(b) for b in batches] == [16, 16, 8]
    assert [p.data for b in batches for p in b] == [f"m{n}" for n in range(40)]
