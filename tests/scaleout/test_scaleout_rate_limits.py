"""Two ``chatcore serve`` processes on one Redis share every rate limit: a user's sends
over HTTP on one process and over Socket.IO on the other draw from one budget."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cluster import cluster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.mongo,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals and /proc"),
]

# Long enough that no send frees up during the test, however slow the machine.
LIMITS = {"CHATCORE_RATE_SEND": "5/600s", "CHATCORE_RATE_REGISTER": "3/600s"}


async def test_two_processes_share_one_send_limit(
    shared_redis_url: str, tmp_path: Path, secantus_uri: str
) -> None:
    async with cluster(
        tmp_path, mongodb_uri=secantus_uri, redis_url=shared_redis_url, size=2, extra_env=LIMITS
    ) as chat:
        a, b = chat[0], chat[1]
        alice, bob = await chat.register("alice", on=a), await chat.register("bob", on=b)
        opened = await chat.http.post(
            f"{a.url}/api/conversations/direct/{bob.id}", headers=alice.headers
        )
        cid = opened.json()["id"]
        on_b = await chat.connect(alice, on=b)

        for i in range(3):
            sent = await chat.http.post(
                f"{a.url}/api/conversations/{cid}/messages",
                json={"body": f"http {i}"},
                headers=alice.headers,
            )
            assert sent.status_code == 201, sent.text
        for i in range(2):
            ack = await on_b.call("sendMessage", {"conversationId": cid, "body": f"socket {i}"})
            assert ack["ok"], ack

        refused_a = await chat.http.post(
            f"{a.url}/api/conversations/{cid}/messages", json={"body": "no"}, headers=alice.headers
        )
        refused_b = await on_b.call("sendMessage", {"conversationId": cid, "body": "no"})

        assert refused_a.status_code == 429
        assert refused_a.headers["RateLimit-Remaining"] == "0"
        assert refused_b["error"]["code"] == "rate_limited"
        assert refused_b["error"]["details"]["retryAfter"] == 120
        # Registrations from one address are shared too: one on each process so far.
        third = await chat.register("carol", on=a)
        assert third.id
        fourth = await chat.http.post(
            f"{b.url}/api/auth/register", json={"username": "dave", "password": "x" * 10}
        )
        assert fourth.status_code == 429
        metrics = (await chat.http.get(f"{b.url}/metrics")).text
        assert 'chatcore_rate_limited_total{action="sendMessage",limit="send"} 1.0' in metrics
        assert "chatcore_rate_limiter_fallbacks_total 0.0" in metrics
