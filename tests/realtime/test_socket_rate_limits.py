"""Rate limits over Socket.IO with the contract's defaults, real python-socketio clients.

The server's domain clock is a FixedClock: nothing frees up unless a test moves it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from livechat import LiveChat, live_server

from chatcore.testing import FixedClock
from entrypoints.settings import RATE_LIMIT_SETTINGS, Settings

DEFAULTS: dict[str, Any] = {
    name: Settings.model_fields[name].default for name in RATE_LIMIT_SETTINGS
}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC))


@pytest.fixture
async def live(tmp_path: Path, clock: FixedClock) -> AsyncIterator[LiveChat]:
    async with live_server(tmp_path, clock=clock, **DEFAULTS) as chat:
        yield chat


def _refused(ack: dict[str, Any], retry_after: int) -> None:
    assert ack == {
        "ok": False,
        "error": {
            "code": "rate_limited",
            "message": ack["error"]["message"],
            "details": {"retryAfter": retry_after},
        },
    }


async def test_http_and_socket_sends_share_one_budget(live: LiveChat, clock: FixedClock) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.direct(alice, bob))["id"]
    socket = await live.connect(alice)
    for i in range(15):
        response = await live.http.post(
            f"/api/conversations/{cid}/messages", json={"body": f"h{i}"}, headers=live.auth(alice)
        )
        assert response.status_code == 201
    for i in range(15):
        assert (await socket.call("sendMessage", {"conversationId": cid, "body": f"s{i}"}))["ok"]

    ack = await socket.call("sendMessage", {"conversationId": cid, "body": "too many"})

    _refused(ack, 1)
    history = await live.http.get(
        f"/api/conversations/{cid}/messages", params={"limit": 100}, headers=live.auth(alice)
    )
    assert len(history.json()["messages"]) == 30
    clock.advance(seconds=1)
    assert (await socket.call("sendMessage", {"conversationId": cid, "body": "later"}))["ok"]


async def test_socket_replays_are_free(live: LiveChat) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.direct(alice, bob))["id"]
    socket = await live.connect(alice)
    payload = {"conversationId": cid, "body": "once", "clientMsgId": "c-1"}
    for _ in range(40):
        assert (await socket.call("sendMessage", payload))["ok"]
    for i in range(29):
        assert (await socket.call("sendMessage", {"conversationId": cid, "body": f"m{i}"}))["ok"]


async def test_typing_over_the_limit_is_dropped_and_acked(live: LiveChat) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.direct(alice, bob))["id"]
    typist, watcher = await live.connect(alice), await live.connect(bob)
    for _ in range(20):
        assert await typist.call("typing", {"conversationId": cid, "isTyping": True}) == {
            "ok": True
        }

    ack = await typist.call("typing", {"conversationId": cid, "isTyping": False})

    _refused(ack, 1)
    await watcher.settle()
    relayed = watcher.pending("typing")
    assert len(relayed) == 20
    assert all(t["isTyping"] for t in relayed)


async def test_other_events_spend_the_api_budget(tmp_path: Path, clock: FixedClock) -> None:
    async with live_server(tmp_path, clock=clock, **{**DEFAULTS, "rate_api": "3/60s"}) as live:
        alice, bob = await live.users("alice", "bob")
        cid = (await live.direct(alice, bob))["id"]  # 1 of alice's 3
        socket = await live.connect(alice)
        assert (await socket.call("sync", {"since": {}}))["ok"]
        assert (await socket.call("readMessage", {"conversationId": cid, "upToSeq": 0}))["ok"]

        _refused(await socket.call("sync", {"since": {}}), 20)
        _refused(await socket.call("noSuchEvent", {}), 20)
        # Sends and typing have budgets of their own.
        assert (await socket.call("sendMessage", {"conversationId": cid, "body": "hi"}))["ok"]
        assert (await socket.call("typing", {"conversationId": cid, "isTyping": True}))["ok"]
        metrics = (await live.http.get("/metrics")).text
        assert 'chatcore_rate_limited_total{action="sync",limit="api"} 1.0' in metrics
        assert 'chatcore_rate_limited_total{action="<unknown>",limit="api"} 1.0' in metrics
