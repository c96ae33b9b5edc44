"""SIGTERM with HTTP, WebSocket and long-polling clients in flight.

Every send the server took on is answered (HTTP status or socket ack); nothing
is stored without its answer; the socket users' ``lastSeenAt`` is recorded; the
server exits 0 without cutting anything off at the end of its grace period.
The shutdown time is printed for bench/RESULTS.md (uvicorn alone took ~12.7 s
with a polling client open).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from faultkit import fault_server, history, scene

from support.accounts import Account
from support.waiting import wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses signals"),
]

SOCKET_SENDS = 20


async def _socket(url: str, account: Account, transport: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        url, auth={"token": account.access_token}, transports=[transport], wait_timeout=10
    )
    return client


async def test_sigterm_answers_every_send_and_records_presence(tmp_path: Path) -> None:
    async with scene(tmp_path) as chat:
        server, alice, bob = chat.server, chat.alice, chat.bob
        on_websocket = await _socket(server.url, alice, "websocket")
        on_polling = await _socket(server.url, bob, "polling")
        acks: dict[str, Any] = {}

        def ack_of(client_msg_id: str) -> Any:
            return lambda answer: acks.__setitem__(client_msg_id, answer)

        load = chat.load()
        async with load.running(senders=2):
            await load.wait_acked(10)
            for n in range(SOCKET_SENDS):
                client = on_websocket if n % 2 else on_polling
                msg_id = f"socket-{n}"
                await client.emit(
                    "sendMessage",
                    {"conversationId": chat.conversation_id, "body": msg_id, "clientMsgId": msg_id},
                    callback=ack_of(msg_id),
                )
            # Once each client has its first ack, the server has read all its sends
            # (one WebSocket in order; the polling client's in one POST): the rest
            # are in flight on the server when SIGTERM comes.
            await wait_until(lambda: {int(m.split("-")[1]) % 2 for m in acks} == {0, 1}, within=30)
            assert len(acks) < SOCKET_SENDS, "all answered before SIGTERM: nothing in flight"
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            code = await asyncio.to_thread(server.wait_exit)
            shutdown = time.monotonic() - signalled
        log = server.log

    restarted = fault_server(tmp_path, "restarted")  # the same data directory
    try:
        restarted.wait_healthy()
        async with httpx.AsyncClient(base_url=restarted.url, timeout=30.0) as http:
            stored = {m["clientMsgId"] for m in await history(http, alice, chat.conversation_id)}
            users = [await _user(http, alice, who) for who in (alice, bob)]
    finally:
        restarted.kill()

    assert code == 0, log
    assert "timeout graceful shutdown exceeded" not in log  # nothing cut off
    ok = {msg_id for msg_id, ack in acks.items() if ack.get("ok")}
    refused = {a["error"]["code"] for a in acks.values() if not a.get("ok")}
    socket_stored = {m for m in stored if m.startswith("socket-")}
    assert socket_stored == ok  # stored if and only if acknowledged
    assert refused <= {"unavailable"}, acks
    assert len(acks) == SOCKET_SENDS, f"unanswered: {SOCKET_SENDS - len(acks)}"
    assert set(load.acked) <= stored
    assert set(load.outcomes) <= {201, 503, "transport"}, load.outcomes
    assert all(user["lastSeenAt"] is not None for user in users), users
    print(
        f"\nSIGTERM: exit {code} after {shutdown:.2f} s; socket acks ok {len(ok)}, "
        f"refused {len(acks) - len(ok)}; HTTP {load.outcomes}"
    )


async def _user(http: httpx.AsyncClient, me: Account, who: Account) -> Any:
    answer = await http.get(f"/api/users/{who.id}", headers=me.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()
