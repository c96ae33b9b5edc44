"""Hostile Socket.IO clients: payloads with unknown keys, too many sockets, sessions that
never authenticate, oversized and malformed packets, sockets that outlive their token.

Raw Engine.IO long-polling (httpx) stands in for clients that don't follow the protocol.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import socketio
from livechat import JWT_SECRET, TIMEOUT, LiveChat, SocketClient, live_server

from adapters.jwt_tokens import JwtAccessTokens
from support.waiting import wait_until

SEP = "\x1e"  # between Engine.IO packets of one polling payload


class RawPolling:
    """An Engine.IO v4 long-polling session driven by hand."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.sid = ""

    async def open(self) -> httpx.Response:
        response = await self.http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
        if response.status_code == 200:
            self.sid = orjson.loads(response.text[1:])["sid"]
        return response

    def _params(self) -> dict[str, str]:
        return {"EIO": "4", "transport": "polling", "sid": self.sid}

    async def post(self, *packets: str) -> httpx.Response:
        return await self.http.post(
            "/socket.io/", params=self._params(), content=SEP.join(packets).encode()
        )

    async def poll(self) -> list[str]:
        response = await self.http.get("/socket.io/", params=self._params(), timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        return response.text.split(SEP)


async def _connected(live: LiveChat, token: str) -> RawPolling:
    raw = RawPolling(live.http)
    assert (await raw.open()).status_code == 200
    assert (await raw.post("40" + orjson.dumps({"token": token}).decode())).status_code == 200
    [connected] = await raw.poll()
    assert connected.startswith("40{"), connected
    return raw


# -- payloads ---------------------------------------------------------------------------


async def test_unknown_keys_are_refused_naming_the_key(live: LiveChat) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.direct(alice, bob))["id"]
    socket = await live.connect(alice)

    ack = await socket.call(
        "sendMessage", {"conversationId": cid, "body": "hi", "clientMsgID": "c1"}
    )

    assert ack == {
        "ok": False,
        "error": {"code": "validation_error", "message": "unknown field: clientMsgID"},
    }
    history = await live.http.get(f"/api/conversations/{cid}/messages", headers=live.auth(alice))
    assert history.json()["messages"] == []
    for event, payload in [
        ("readMessage", {"conversationId": cid, "upToSeq": 0, "x": 1}),
        ("typing", {"conversationId": cid, "isTyping": True, "typing": True}),
        ("sync", {"since": {}, "limit": 5}),
    ]:
        refused = await socket.call(event, payload)
        assert refused["error"]["code"] == "validation_error", (event, refused)


async def test_a_packet_over_the_limit_is_answered_and_the_socket_lives_on(live: LiveChat) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.direct(alice, bob))["id"]
    socket = await live.connect(alice)

    ack = await socket.call("sendMessage", {"conversationId": cid, "body": "x" * 100_000})

    assert ack["ok"] is False
    assert ack["error"]["code"] == "payload_too_large"
    assert (await socket.call("sendMessage", {"conversationId": cid, "body": "small"}))["ok"]


async def test_malformed_events_asking_for_an_ack_get_one_and_a_log_line(
    live: LiveChat, caplog: pytest.LogCaptureFixture
) -> None:
    alice = await live.register("alice")
    raw = await _connected(live, alice.token)

    answers = []
    with caplog.at_level(logging.WARNING):
        for n, packet in enumerate(['["sendMessage",{"body":', "{}", "[]", "[42]"], start=1):
            await raw.post(f"42{n}{packet}")
            answers.append(await raw.poll())

    refusal = '{"ok":false,"error":{"code":"validation_error","message":"malformed packet"}}'
    assert answers[:3] == [[f"43{n}[{refusal}]"] for n in (1, 2, 3)]
    # A number where the event name belongs: an unknown event, answered as such.
    assert answers[3] == [
        '434[{"ok":false,"error":{"code":"not_found","message":"unknown event: 42"}}]'
    ]
    malformed = [r for r in caplog.records if "malformed Socket.IO packet" in r.getMessage()]
    assert len(malformed) == 3
    assert all(r.exc_info is None for r in caplog.records)


# -- connections -------------------------------------------------------------------------


async def test_sockets_per_user_are_capped(tmp_path: Path) -> None:
    async with live_server(tmp_path, max_sockets_per_user=2) as live:
        alice, bob = await live.users("alice", "bob")
        first, _ = await live.connect(alice), await live.connect(alice)
        third = SocketClient()
        live.clients.append(third)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await third.connect(live.url, alice.token)
        assert third.connect_error["data"]["code"] == "rate_limited"
        metrics = (await live.http.get("/metrics")).text
        assert 'chatcore_rate_limited_total{action="connect",limit="sockets"} 1.0' in metrics
        await live.connect(bob)  # others are not affected
        await first.close()
        await live.wait_socket_count(alice, 1)
        await live.connect(alice)


async def test_sessions_that_never_authenticate_are_closed(tmp_path: Path) -> None:
    async with live_server(tmp_path, socket_handshake_timeout_seconds=0.2) as live:
        idle = RawPolling(live.http)
        await idle.open()
        alice = await live.register("alice")
        authenticated = await _connected(live, alice.token)

        await wait_until(lambda: idle.sid not in live.sio.eio.sockets, within=TIMEOUT)

        assert authenticated.sid in live.sio.eio.sockets
        assert live.sio.handshaking == 0
        gone = await live.http.get("/socket.io/", params=idle._params())
        assert gone.status_code == 400


async def test_sessions_waiting_to_authenticate_are_bounded(tmp_path: Path) -> None:
    async with live_server(tmp_path, max_unauthenticated_sockets=2) as live:
        waiting = [RawPolling(live.http) for _ in range(3)]
        statuses = [(await w.open()).status_code for w in waiting]
        assert statuses == [200, 200, 401]
        # Authenticating frees a place.
        alice = await live.register("alice")
        await waiting[0].post("40" + orjson.dumps({"token": alice.token}).decode())
        await waiting[0].poll()
        assert (await RawPolling(live.http).open()).status_code == 200


async def test_an_oversized_polling_post_is_answered_at_once_and_closes_the_session(
    live: LiveChat,
) -> None:
    alice = await live.register("alice")
    raw = await _connected(live, alice.token)

    response = await raw.post("42" + "x" * 1_500_000)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.headers["connection"] == "close"
    assert raw.sid not in live.sio.eio.sockets
    await live.wait_socket_count(alice, 0)


# -- sessions that end -----------------------------------------------------------------------


async def test_a_socket_ends_when_its_access_token_expires(live: LiveChat) -> None:
    alice = await live.register("alice")
    short = JwtAccessTokens(JWT_SECRET, ttl=timedelta(seconds=1)).issue(alice.id).token
    socket = SocketClient()
    live.clients.append(socket)
    disconnected = asyncio.Event()
    socket.sio.on("disconnect", lambda *_: disconnected.set())
    await socket.connect(live.url, short)

    expired: Any = await socket.next("sessionExpired", within=TIMEOUT)

    assert expired == {"code": "unauthorized", "message": "access token expired"}
    await asyncio.wait_for(disconnected.wait(), TIMEOUT)
    await live.wait_socket_count(alice, 0)
    # With a fresh token the client is welcome again.
    await live.connect(alice)
