"""Three ``chatcore serve`` processes on one storage (the session's SecantusDB) and one Redis.

Clients are spread over the processes: messages and presence must behave as
with one process. One test kills a process with SIGKILL: its users go offline
within the presence bound (TTL + TTL / 3), waited for with a deadline of a few
times the bound; the times measured are printed (``pytest -s``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from cluster import PRESENCE_BOUND, Client, Cluster, cluster, names, wait_for

from support.accounts import Account

pytestmark = [
    pytest.mark.slow,
    pytest.mark.mongo,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals and /proc"),
]

# A few times the bound, plus room for a loaded machine.
OFFLINE_DEADLINE = 3 * PRESENCE_BOUND + 5.0


async def _barrier(typist: Client, conversation_id: str, watchers: list[Client]) -> None:
    """A ``typing`` event from ``typist``'s process that every watcher receives. Redis
    pub/sub delivers one channel in publish order, so whatever any process published
    before it (a stray userOnline, say) has reached the watchers once they have it."""
    ack = await typist.call("typing", {"conversationId": conversation_id, "isTyping": True})
    assert ack == {"ok": True}
    for watcher in watchers:
        seen = await watcher.next("typing")
        assert seen["userId"] == typist.user.id, seen


async def _presence_everywhere(
    chat: Cluster, asker: Account, *users: Account
) -> list[dict[str, bool]]:
    return [await chat.presence(p, asker, *users) for p in chat.processes]


async def test_messages_reach_every_socket_whatever_process_it_is_on(
    shared_redis_url: str, tmp_path: Path, secantus_uri: str
) -> None:
    async with cluster(tmp_path, mongodb_uri=secantus_uri, redis_url=shared_redis_url) as chat:
        a, b, c = chat.processes
        alice = await chat.register("alice", on=a)
        bob = await chat.register("bob", on=c)
        carol = await chat.register("carol", on=b)
        alice_a, alice_b = await chat.connect(alice, a), await chat.connect(alice, b)
        bob_c = await chat.connect(bob, c)
        carol_a = await chat.connect(carol, a)

        ack = await alice_a.call(
            "sendMessage", {"receiverId": bob.id, "body": "from A", "clientMsgId": "m-1"}
        )

        assert ack["ok"], ack
        message = ack["message"]
        assert await bob_c.next("newMessage") == message
        assert await alice_b.next("newMessage") == message
        assert await alice_a.next("newMessage") == message

        sent = await chat.http.post(
            f"{b.url}/api/conversations/{message['conversationId']}/messages",
            json={"body": "from B over HTTP"},
            headers=bob.headers,
        )

        assert sent.status_code == 201, sent.text
        for client in (alice_a, alice_b, bob_c):
            assert await client.next("newMessage") == sent.json(), names([client])
        # Nobody else: carol (on A, like alice) shares no conversation with them.
        group = await chat.group(carol, alice, on=c)
        await _barrier(alice_b, group, [carol_a])
        assert carol_a.pending("newMessage") == []


async def test_presence_is_exact_across_processes_with_several_tabs(
    shared_redis_url: str, tmp_path: Path, secantus_uri: str
) -> None:
    async with cluster(tmp_path, mongodb_uri=secantus_uri, redis_url=shared_redis_url) as chat:
        a, b, c = chat.processes
        alice, bob, carol = [
            await chat.register(n, on=p)
            for n, p in zip(("alice", "bob", "carol"), (a, b, c), strict=True)
        ]
        group = await chat.group(bob, alice, carol, on=b)
        watchers = [await chat.connect(bob, a), await chat.connect(carol, c)]
        assert await watchers[0].next("userOnline") == {"userId": carol.id}

        tabs = [await chat.connect(alice, b)]

        for watcher in watchers:
            assert await watcher.next("userOnline") == {"userId": alice.id}
        assert await _presence_everywhere(chat, bob, alice) == [{alice.id: True}] * 3

        tabs += [await chat.connect(alice, c), await chat.connect(alice, a)]
        for tab in tabs:  # a typing from every process that holds one of alice's tabs
            await _barrier(tab, group, watchers)
        assert [w.pending("userOnline") for w in watchers] == [[], []]

        for tab in tabs[:2]:
            await tab.close()
        await wait_for(
            lambda: _count_is(chat, alice, 1), what="the closed tabs to leave shared presence"
        )
        assert await _presence_everywhere(chat, carol, alice) == [{alice.id: True}] * 3

        await tabs[2].close()

        for watcher in watchers:
            offline = await watcher.next("userOffline")
            assert offline["userId"] == alice.id
            assert offline["lastSeenAt"]
        assert (
            await _presence_everywhere(chat, bob, alice, carol)
            == [{alice.id: False, carol.id: True}] * 3
        )
        # Once only: neither a second userOffline nor any userOnline came meanwhile.
        await _barrier(watchers[0], group, watchers[1:])
        await _barrier(watchers[1], group, watchers[:1])
        assert [w.pending("userOffline") for w in watchers] == [[], []]
        assert [w.pending("userOnline") for w in watchers] == [[], []]


async def _count_is(chat: Cluster, user: Account, count: int) -> bool:
    return await chat.sockets_in_redis(user) == count


async def test_a_killed_process_takes_only_its_own_users_offline(
    shared_redis_url: str, tmp_path: Path, secantus_uri: str
) -> None:
    async with cluster(tmp_path, mongodb_uri=secantus_uri, redis_url=shared_redis_url) as chat:
        a, b, c = chat.processes
        alice, dave = await chat.register("alice", on=c), await chat.register("dave", on=a)
        bob, carol = await chat.register("bob", on=b), await chat.register("carol", on=c)
        group = await chat.group(bob, alice, dave, carol, on=a)
        await chat.connect(alice, c)  # only on C
        await chat.connect(dave, c)
        dave_a = await chat.connect(dave, a)  # also on A
        watchers = [await chat.connect(bob, a), await chat.connect(carol, b)]
        assert await watchers[0].next("userOnline") == {"userId": carol.id}
        assert (
            await _presence_everywhere(chat, bob, alice, dave)
            == [{alice.id: True, dave.id: True}] * 3
        )

        killed_at = time.monotonic()
        c.kill()

        for watcher in watchers:
            arrived, offline = await watcher.next_timed("userOffline", within=OFFLINE_DEADLINE)
            assert offline["userId"] == alice.id
            print(
                f"\nSIGKILL -> userOffline at {watcher.user.username}@{watcher.process.name}: "
                f"{arrived - killed_at:.2f} s (bound {PRESENCE_BOUND:.2f} s)"
            )
        for process in (a, b):
            assert await chat.presence(process, bob, alice, dave) == {
                alice.id: False,
                dave.id: True,
            }

        # The others keep working: messages across A and B, a new socket, HTTP.
        ack = await dave_a.call("sendMessage", {"conversationId": group, "body": "still here"})
        assert ack["ok"], ack
        for watcher in watchers:
            assert await watcher.next("newMessage") == ack["message"]
        late = await chat.connect(alice, b)
        for watcher in watchers:
            assert await watcher.next("userOnline") == {"userId": alice.id}
        await _barrier(late, group, watchers)
        assert [w.pending("userOffline") for w in watchers] == [[], []]  # never dave
        for process in (a, b):
            assert await chat.presence(process, carol, alice, dave) == {
                alice.id: True,
                dave.id: True,
            }
