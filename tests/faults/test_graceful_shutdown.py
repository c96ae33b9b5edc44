"""SIGTERM with HTTP, WebSocket and long-polling clients in flight.

Every send the server took on is answered (HTTP status or socket ack); nothing
is stored without its answer; the socket users' ``lastSeenAt`` is recorded; the
server exits 0 without cutting anything off at the end of its grace period.
The same with the database stalled (SIGSTOP) at SIGTERM: the sends waiting on it
are answered (503) and the server still exits within its grace period.
The shutdown time is printed for bench/RESULTS.md (uvicorn alone took ~12.7 s
with a polling client open).
"""

from __future__ import annotations

import asyncio
import datetime
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from attrs import define, field
from faultkit import TIMEOUT, fault_server, history, scene

from support.accounts import Account
from support.waiting import wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses signals"),
]

# Sends each socket client keeps outstanding (emitted, not yet acknowledged).
WINDOW = 4


async def _socket(url: str, account: Account, transport: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        url, auth={"token": account.access_token}, transports=[transport], wait_timeout=10
    )
    return client


@define
class SocketSends:
    """One socket client sending to a conversation, ``WINDOW`` sends outstanding."""

    client: socketio.AsyncClient
    conversation_id: str
    prefix: str
    emitted: set[str] = field(factory=set)
    acks: dict[str, tuple[float, Any]] = field(factory=dict)  # id -> (when, ack)

    async def run(self, stop: asyncio.Event) -> None:
        window = asyncio.Semaphore(WINDOW)
        n = 0
        while not stop.is_set() and self.client.connected:
            try:
                await asyncio.wait_for(window.acquire(), 0.2)
            except TimeoutError:
                continue
            n += 1
            msg_id = f"{self.prefix}-{n}"

            def acked(answer: Any, msg_id: str = msg_id) -> None:
                self.acks[msg_id] = (time.monotonic(), answer)
                window.release()

            payload = {"conversationId": self.conversation_id, "body": msg_id}
            try:
                await self.client.emit(
                    "sendMessage", {**payload, "clientMsgId": msg_id}, callback=acked
                )
            except socketio.exceptions.BadNamespaceError:
                return  # the server closed the socket (the drain's last step)
            self.emitted.add(msg_id)


async def test_sigterm_answers_every_send_and_records_presence(tmp_path: Path) -> None:
    async with scene(tmp_path) as chat:
        server, alice, bob = chat.server, chat.alice, chat.bob
        senders = [
            SocketSends(await _socket(server.url, alice, "websocket"), chat.conversation_id, "ws"),
            SocketSends(await _socket(server.url, bob, "polling"), chat.conversation_id, "poll"),
        ]
        stop = asyncio.Event()
        socket_tasks = [asyncio.create_task(s.run(stop)) for s in senders]
        load = chat.load()
        async with load.running(senders=2):
            await load.wait_acked(10)
            await wait_until(lambda: all(len(s.acks) >= 10 for s in senders), within=60)
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            code = await asyncio.to_thread(server.wait_exit)
            shutdown = time.monotonic() - signalled
            stop.set()
            await asyncio.gather(*socket_tasks)
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
    acks = {m: a for s in senders for m, a in s.acks.items()}
    ok = {m for m, (_, ack) in acks.items() if ack.get("ok")}
    ok_after_sigterm = {m for m, (when, ack) in acks.items() if ack.get("ok") and when > signalled}
    refused = {ack["error"]["code"] for _, ack in acks.values() if not ack.get("ok")}
    unanswered = {m for s in senders for m in s.emitted} - set(acks)
    socket_stored = {m for m in stored if m.startswith(("ws-", "poll-"))}
    assert socket_stored == ok  # stored if and only if acknowledged
    assert ok_after_sigterm, "no send was in flight at SIGTERM"  # ... and those were answered
    assert refused <= {"unavailable"}, refused
    assert set(load.acked) <= stored
    assert set(load.outcomes) <= {201, 503, "transport"}, load.outcomes
    assert all(user["lastSeenAt"] is not None for user in users), users
    print(
        f"\nSIGTERM: exit {code} after {shutdown:.2f} s; socket sends acked ok {len(ok)} "
        f"({len(ok_after_sigterm)} of them after SIGTERM), refused {len(acks) - len(ok)}, "
        f"unanswered (in transit at close, not stored) {len(unanswered)}; HTTP {load.outcomes}"
    )


async def _user(http: httpx.AsyncClient, me: Account, who: Account) -> Any:
    answer = await http.get(f"/api/users/{who.id}", headers=me.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


# CHATCORE_SHUTDOWN_GRACE_SECONDS of the stalled-database test.
GRACE = 4.0
# What `chatcore serve` may take after its grace period: closing its database
# client (pymongo's endSessions waits up to one timeout for the stalled server),
# then stopping the embedded database (SIGTERM, SIGKILL after
# entrypoints.embedded_db._STOP_SECONDS, which it took every other time before
# the SIGTERM went to its main thread).
CLOSE_STORAGE = TIMEOUT + 0.5
DATABASE_STOP = 5.0


async def test_sigterm_while_the_database_is_stalled_answers_and_exits_in_time(
    tmp_path: Path,
) -> None:
    async with scene(tmp_path, CHATCORE_SHUTDOWN_GRACE_SECONDS=str(GRACE)) as chat:
        server = chat.server
        assert server.process is not None
        socket = SocketSends(
            await _socket(server.url, chat.bob, "websocket"), chat.conversation_id, "ws"
        )
        stop = asyncio.Event()
        socket_task = asyncio.create_task(socket.run(stop))
        load = chat.load()
        async with load.running(senders=3):
            await load.wait_acked(10)
            os.kill(server.database_pid(), signal.SIGSTOP)
            await asyncio.sleep(TIMEOUT / 2)  # sends are now waiting on the database
            server.process.send_signal(signal.SIGTERM)
            signalled, signalled_wall = time.monotonic(), time.time()
            code = await asyncio.to_thread(server.wait_exit, GRACE + DATABASE_STOP + 30)
            shutdown = time.monotonic() - signalled
            stop.set()
            await socket_task
        log = server.log

    in_flight = load.in_flight_at(signalled)
    socket_answers = [ack for when, ack in socket.acks.values() if when > signalled]
    assert code == 0, log
    assert "timeout graceful shutdown exceeded" not in log  # nothing cut off
    assert in_flight, "no send was in flight at SIGTERM"
    assert set(in_flight) <= {201, 503}, in_flight  # each answered, none cut off
    assert all(ack.get("ok") or ack["error"]["code"] == "unavailable" for ack in socket_answers)
    assert set(load.outcomes) <= {201, 503, "transport"}, load.outcomes
    server_part = _logged_at(log, "stopping the embedded database") - signalled_wall
    print(
        f"\nSIGTERM during a database stall: exit {code} after {shutdown:.2f} s "
        f"(grace {GRACE} s; the server's own part {server_part:.2f} s); "
        f"in flight at SIGTERM {len(in_flight)} HTTP sends "
        f"{sorted(map(str, in_flight))}, {len(socket_answers)} socket acks after it "
        f"({sum(1 for a in socket_answers if not a.get('ok'))} unavailable); HTTP {load.outcomes}"
    )
    assert server_part < GRACE + CLOSE_STORAGE
    assert shutdown < GRACE + CLOSE_STORAGE + DATABASE_STOP


def _logged_at(log: str, text: str) -> float:
    """When (epoch seconds, local time as logged) the first line with ``text`` was."""
    line = next(line for line in log.splitlines() if text in line)
    stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    return stamp.timestamp()
