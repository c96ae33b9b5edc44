"""Server-to-client events caused over HTTP: edits, deletions, conversation changes."""

from __future__ import annotations

from livechat import LiveChat

from support.app import on_every_backend
from support.wire_keys import CONVERSATION_KEYS


@on_every_backend
async def test_edits_and_deletions_reach_every_members_sockets(live: LiveChat) -> None:
    alice, bob, carol = await live.users("alice", "bob", "carol")
    cid = (await live.group(alice, bob))["id"]
    author, author_tab = await live.connect(alice), await live.connect(alice)
    reader, outsider = await live.connect(bob), await live.connect(carol)
    sent = (await author.call("sendMessage", {"conversationId": cid, "body": "draft"}))["message"]

    edited = await live.http.patch(
        f"/api/conversations/{cid}/messages/{sent['id']}",
        json={"body": "final"},
        headers=live.auth(alice),
    )
    deleted = await live.http.delete(
        f"/api/conversations/{cid}/messages/{sent['id']}", headers=live.auth(alice)
    )

    assert edited.status_code == 200, edited.text
    assert deleted.status_code == 200, deleted.text
    for client in (author, author_tab, reader):
        update = await client.next("messageUpdated")
        assert update == edited.json()
        assert (update["id"], update["seq"], update["body"]) == (sent["id"], 1, "final")
        assert update["editedAt"] is not None
        removal = await client.next("messageDeleted")
        assert removal == deleted.json()
        assert (removal["id"], removal["seq"], removal["body"]) == (sent["id"], 1, "")
        assert removal["deletedAt"] is not None
    await outsider.settle()
    assert outsider.pending("messageUpdated") == []
    assert outsider.pending("messageDeleted") == []


async def test_conversation_updates_reach_each_member_as_they_see_it(live: LiveChat) -> None:
    alice, bob, carol = await live.users("alice", "bob", "carol")
    alice_socket, bob_socket = await live.connect(alice), await live.connect(bob)
    carol_socket = await live.connect(carol)

    created = await live.group(alice, bob, name="plans")

    for client in (alice_socket, bob_socket):
        seen = await client.next("conversationUpdated")
        assert set(seen) == CONVERSATION_KEYS
        assert seen["id"] == created["id"]
        assert seen["name"] == "plans"
        assert sorted(seen["memberIds"]) == sorted([alice.id, bob.id])
    await carol_socket.settle()
    assert carol_socket.pending("conversationUpdated") == []

    await alice_socket.call("sendMessage", {"conversationId": created["id"], "body": "hi"})
    added = await live.http.post(
        f"/api/conversations/{created['id']}/members",
        json={"userId": carol.id},
        headers=live.auth(bob),
    )

    assert added.status_code == 200, added.text
    views = {
        user.id: await client.next("conversationUpdated")
        for user, client in ((alice, alice_socket), (bob, bob_socket), (carol, carol_socket))
    }
    assert all(
        sorted(v["memberIds"]) == sorted([alice.id, bob.id, carol.id]) for v in views.values()
    )
    # Each member's own read pointer and unread count: alice wrote the message.
    assert views[alice.id]["unreadCount"] == 0
    assert views[bob.id]["unreadCount"] == 1
    assert views[carol.id]["unreadCount"] == 1
