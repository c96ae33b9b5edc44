"""sendMessage, newMessage, readMessage/messageRead, typing and sync over real sockets."""

from __future__ import annotations

import asyncio
import re

from livechat import LiveChat

from support.app import on_every_backend
from support.wire_keys import MESSAGE_KEYS, RECEIPT_KEYS

ISO_MILLIS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@on_every_backend
async def test_send_message_acks_the_stored_message_and_reaches_every_members_socket(
    live: LiveChat,
) -> None:
    alice, bob, carol = await live.users("alice", "bob", "carol")
    conversation = await live.group(alice, bob)
    sender = await live.connect(alice)
    other_tab = await live.connect(alice, transports=["polling"])
    receiver = await live.connect(bob)
    outsider = await live.connect(carol)

    ack = await sender.call(
        "sendMessage",
        {"conversationId": conversation["id"], "body": " hi Bob ", "clientMsgId": "c1"},
    )

    assert set(ack) == {"ok", "message"}
    assert ack["ok"] is True
    message = ack["message"]
    assert set(message) == MESSAGE_KEYS
    assert message["conversationId"] == conversation["id"]
    assert message["seq"] == 1
    assert message["senderId"] == alice.id
    assert message["body"] == "hi Bob"
    assert message["clientMsgId"] == "c1"
    assert ISO_MILLIS_Z.fullmatch(message["createdAt"])
    assert message["editedAt"] is None
    assert message["deletedAt"] is None
    assert await receiver.next("newMessage") == message
    assert await other_tab.next("newMessage") == message
    # "every member's sockets": the sending socket hears it too.
    assert await sender.next("newMessage") == message
    await outsider.settle()
    assert outsider.pending("newMessage") == []


@on_every_backend
async def test_replaying_a_client_msg_id_acks_the_same_message_and_delivers_nothing_new(
    live: LiveChat,
) -> None:
    alice, bob = await live.register("alice"), await live.register("bob")
    conversation = await live.group(alice, bob)
    sender, receiver = await live.connect(alice), await live.connect(bob)
    payload = {"conversationId": conversation["id"], "body": "once", "clientMsgId": "k-1"}

    first = await sender.call("sendMessage", payload)
    again = await sender.call("sendMessage", payload)

    assert again == first
    assert await receiver.next("newMessage") == first["message"]
    await receiver.settle()
    assert receiver.pending("newMessage") == []
    ack = await sender.call("sendMessage", {"conversationId": conversation["id"], "body": "two"})
    assert ack["message"]["seq"] == 2


@on_every_backend
async def test_seed_form_sends_to_the_one_direct_conversation(live: LiveChat) -> None:
    alice, bob = await live.register("alice"), await live.register("bob")
    sender, receiver = await live.connect(alice), await live.connect(bob)

    first = await sender.call("sendMessage", {"receiverId": bob.id, "body": "hello"})
    second = await sender.call("sendMessage", {"receiverId": bob.id, "body": "again"})

    assert first["ok"] is True
    assert second["ok"] is True
    conversation_id = first["message"]["conversationId"]
    assert second["message"]["conversationId"] == conversation_id
    assert [first["message"]["seq"], second["message"]["seq"]] == [1, 2]
    created = await receiver.next("conversationUpdated")
    assert created["id"] == conversation_id
    assert created["type"] == "direct"
    assert sorted(created["memberIds"]) == sorted([alice.id, bob.id])
    assert await receiver.next("newMessage") == first["message"]
    assert await receiver.next("newMessage") == second["message"]
    # Every path that reaches "alice messages bob" uses the same conversation.
    assert (await live.direct(bob, alice))["id"] == conversation_id


async def test_sending_where_one_is_no_member_acks_not_found(live: LiveChat) -> None:
    alice, bob, mallory = await live.users("alice", "bob", "mallory")
    conversation = await live.group(alice, bob)
    intruder, receiver = await live.connect(mallory), await live.connect(bob)

    for conversation_id in (conversation["id"], "no-such-conversation"):
        ack = await intruder.call(
            "sendMessage", {"conversationId": conversation_id, "body": "let me in"}
        )
        assert ack == {
            "ok": False,
            "error": {"code": "not_found", "message": ack["error"]["message"]},
        }
        assert isinstance(ack["error"]["message"], str)
    unknown = await intruder.call("sendMessage", {"receiverId": "no-such-user", "body": "hi"})
    assert unknown["error"]["code"] == "not_found"
    await receiver.settle()
    assert receiver.pending("newMessage") == []


@on_every_backend
async def test_a_message_sent_over_http_is_delivered_live(live: LiveChat) -> None:
    alice, bob = await live.register("alice"), await live.register("bob")
    conversation = await live.group(alice, bob)
    alice_socket, bob_socket = await live.connect(alice), await live.connect(bob)

    response = await live.http.post(
        f"/api/conversations/{conversation['id']}/messages",
        json={"body": "from the REST API"},
        headers=live.auth(alice),
    )

    assert response.status_code == 201, response.text
    assert await bob_socket.next("newMessage") == response.json()
    assert await alice_socket.next("newMessage") == response.json()


@on_every_backend
async def test_concurrent_sends_from_several_sockets_get_seqs_exactly_one_to_n(
    live: LiveChat,
) -> None:
    users = [await live.register("member") for _ in range(4)]
    conversation = await live.group(users[0], *users[1:])
    senders = [await live.connect(u) for u in users for _ in range(2)]
    listener = await live.connect(users[0], transports=["polling"])
    per_socket = 12
    total = per_socket * len(senders)

    async def burst(index: int) -> list[int]:
        acks = await asyncio.gather(
            *(
                senders[index].call(
                    "sendMessage", {"conversationId": conversation["id"], "body": f"{index}/{n}"}
                )
                for n in range(per_socket)
            )
        )
        assert all(a["ok"] for a in acks), acks
        return [a["message"]["seq"] for a in acks]

    seqs = [
        s
        for burst_seqs in await asyncio.gather(*map(burst, range(len(senders))))
        for s in burst_seqs
    ]

    assert sorted(seqs) == list(range(1, total + 1))
    delivered = [(await listener.next("newMessage"))["seq"] for _ in range(total)]
    assert sorted(delivered) == list(range(1, total + 1))


@on_every_backend
async def test_read_message_acks_the_receipt_and_tells_the_members(live: LiveChat) -> None:
    alice, bob = await live.register("alice"), await live.register("bob")
    conversation = await live.group(alice, bob)
    cid = conversation["id"]
    alice_socket, alice_tab = await live.connect(alice), await live.connect(alice)
    bob_socket = await live.connect(bob)
    for n in range(3):
        await alice_socket.call("sendMessage", {"conversationId": cid, "body": f"m{n}"})

    ack = await bob_socket.call("readMessage", {"conversationId": cid, "upToSeq": 2})

    assert set(ack) == {"ok", "receipt"}
    assert ack["ok"] is True
    receipt = ack["receipt"]
    assert set(receipt) == RECEIPT_KEYS
    assert (receipt["conversationId"], receipt["userId"], receipt["lastReadSeq"]) == (
        cid,
        bob.id,
        2,
    )
    assert ISO_MILLIS_Z.fullmatch(receipt["readAt"])
    assert await alice_socket.next("messageRead") == receipt
    assert await alice_tab.next("messageRead") == receipt
    assert await bob_socket.next("messageRead") == receipt

    # Backwards is accepted and changes nothing (and nobody is told again).
    back = await bob_socket.call("readMessage", {"conversationId": cid, "upToSeq": 1})
    assert back == {"ok": True, "receipt": receipt}
    await alice_socket.settle()
    assert alice_socket.pending("messageRead") == []

    # Beyond the newest message is clamped to it.
    ahead = await bob_socket.call("readMessage", {"conversationId": cid, "upToSeq": 99})
    assert ahead["receipt"]["lastReadSeq"] == 3
    assert (await alice_socket.next("messageRead"))["lastReadSeq"] == 3


async def test_read_message_outside_the_conversation_acks_not_found(live: LiveChat) -> None:
    alice, bob, mallory = await live.users("alice", "bob", "mallory")
    conversation = await live.group(alice, bob)
    intruder = await live.connect(mallory)

    ack = await intruder.call("readMessage", {"conversationId": conversation["id"], "upToSeq": 1})

    assert ack["ok"] is False
    assert ack["error"]["code"] == "not_found"


async def test_typing_reaches_the_other_members_only(live: LiveChat) -> None:
    alice, bob, carol = await live.users("alice", "bob", "carol")
    conversation = await live.group(alice, bob, carol)
    typist, typist_tab = await live.connect(alice), await live.connect(alice)
    bob_socket, carol_socket = await live.connect(bob), await live.connect(carol)

    ack = await typist.call("typing", {"conversationId": conversation["id"], "isTyping": True})

    assert ack == {"ok": True}
    expected = {"conversationId": conversation["id"], "userId": alice.id, "isTyping": True}
    assert await bob_socket.next("typing") == expected
    assert await carol_socket.next("typing") == expected
    await typist.settle()
    await typist_tab.settle()
    assert typist.pending("typing") == []
    assert typist_tab.pending("typing") == []

    stop = await typist.call("typing", {"conversationId": conversation["id"], "isTyping": False})
    assert stop == {"ok": True}
    assert await bob_socket.next("typing") == {**expected, "isTyping": False}


async def test_typing_outside_the_conversation_acks_not_found(live: LiveChat) -> None:
    alice, bob, mallory = await live.users("alice", "bob", "mallory")
    conversation = await live.group(alice, bob)
    intruder, bob_socket = await live.connect(mallory), await live.connect(bob)

    ack = await intruder.call("typing", {"conversationId": conversation["id"], "isTyping": True})

    assert ack["ok"] is False
    assert ack["error"]["code"] == "not_found"
    await bob_socket.settle()
    assert bob_socket.pending("typing") == []


@on_every_backend
async def test_sync_after_a_disconnect_returns_exactly_what_was_missed(live: LiveChat) -> None:
    alice, bob, carol = await live.users("alice", "bob", "carol")
    with_alice = (await live.group(alice, bob, name="a"))["id"]
    with_carol = (await live.group(carol, bob, name="c"))["id"]
    not_bobs = (await live.group(alice, carol, name="x"))["id"]
    alice_socket, carol_socket = await live.connect(alice), await live.connect(carol)
    bob_socket = await live.connect(bob)
    await alice_socket.call("sendMessage", {"conversationId": with_alice, "body": "seen"})
    seen = await bob_socket.next("newMessage")
    await bob_socket.close()
    await live.wait_socket_count(bob, 0)

    missed = [
        (await alice_socket.call("sendMessage", {"conversationId": with_alice, "body": f"a{n}"}))[
            "message"
        ]
        for n in range(3)
    ]
    missed += [
        (await carol_socket.call("sendMessage", {"conversationId": with_carol, "body": f"c{n}"}))[
            "message"
        ]
        for n in range(2)
    ]
    await alice_socket.call("sendMessage", {"conversationId": not_bobs, "body": "private"})

    back = await live.connect(bob)
    ack = await back.call("sync", {"since": {with_alice: seen["seq"], with_carol: 0, not_bobs: 0}})

    assert ack == {"ok": True, "messages": missed}
    nothing_new = await back.call("sync", {"since": {with_alice: 4, with_carol: 2}})
    assert nothing_new == {"ok": True, "messages": []}


async def test_sync_caps_each_conversation_and_says_has_more(live: LiveChat) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.group(alice, bob))["id"]
    sender = await live.connect(alice)
    cap = 500  # per conversation and call (docs/decisions.md)
    for start in range(0, cap + 1, 50):
        acks = await asyncio.gather(
            *(
                sender.call("sendMessage", {"conversationId": cid, "body": f"m{n}"})
                for n in range(start, min(start + 50, cap + 1))
            )
        )
        assert all(a["ok"] for a in acks)
    reader = await live.connect(bob)

    first = await reader.call("sync", {"since": {cid: 0}})
    rest = await reader.call("sync", {"since": {cid: first["messages"][-1]["seq"]}})

    assert set(first) == {"ok", "messages", "hasMore"}
    assert first["hasMore"] is True
    assert [m["seq"] for m in first["messages"]] == list(range(1, cap + 1))
    assert set(rest) == {"ok", "messages"}
    assert [m["seq"] for m in rest["messages"]] == [cap + 1]
