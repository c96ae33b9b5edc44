"""Contract v1.1 over real sockets: sendMessage.threadId (newMessage, then
messageUpdated for the root), react, mentions; bad payloads get error acks."""

from __future__ import annotations

from typing import Any

import pytest
from livechat import LiveChat

from support.app import on_every_backend
from support.wire_keys import MESSAGE_KEYS


@on_every_backend
async def test_a_reply_arrives_as_new_message_then_the_root_as_message_updated(
    live: LiveChat,
) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.group(alice, bob))["id"]
    sender = await live.connect(alice)
    receiver = await live.connect(bob)
    root = (await sender.call("sendMessage", {"conversationId": cid, "body": "lunch?"}))["message"]
    await receiver.next("newMessage")
    await sender.next("newMessage")

    ack = await receiver.call(
        "sendMessage", {"conversationId": cid, "body": "yes", "threadId": root["id"]}
    )

    assert ack["ok"] is True
    assert ack["message"]["threadId"] == root["id"]
    assert await sender.next("newMessage") == ack["message"]
    updated = await sender.next("messageUpdated")
    assert set(updated) == MESSAGE_KEYS
    assert updated["id"] == root["id"]
    assert updated["thread"]["replyCount"] == 1
    assert updated["thread"]["participantIds"] == [bob.id]
    assert (await receiver.next("messageUpdated"))["id"] == root["id"]


@on_every_backend
async def test_react_acks_the_message_and_members_hear_message_updated(live: LiveChat) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.group(alice, bob))["id"]
    a, b = await live.connect(alice), await live.connect(bob)
    message = (await a.call("sendMessage", {"conversationId": cid, "body": "party"}))["message"]

    add = {"conversationId": cid, "messageId": message["id"], "emoji": "🎉", "add": True}
    ack = await b.call("react", add)
    again = await b.call("react", add)

    assert ack["ok"] is True
    assert ack["message"]["reactions"] == [{"emoji": "🎉", "userIds": [bob.id]}]
    assert again == ack
    assert (await a.next("messageUpdated")) == ack["message"]
    removed = await b.call("react", {**add, "add": False})
    assert removed["message"]["reactions"] == []
    assert (await a.next("messageUpdated"))["reactions"] == []
    await a.settle()
    assert a.pending("messageUpdated") == []  # the repeated add changed nothing


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"emoji": ""}, "emoji"),
        ({"emoji": "  "}, "emoji"),
        ({"emoji": "x" * 33}, "emoji"),
        ({"emoji": {"$gt": ""}}, "emoji"),
        ({"emoji": None}, "emoji"),
        ({"add": "yes"}, "add"),
        ({"messageId": {"$ne": None}}, "messageId"),
        ({"conversationId": 5}, "conversationId"),
    ],
)
async def test_bad_react_payloads_are_validation_errors(
    live: LiveChat, change: dict[str, Any], field: str
) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.group(alice, bob))["id"]
    a = await live.connect(alice)
    message = (await a.call("sendMessage", {"conversationId": cid, "body": "hi"}))["message"]
    payload = {"conversationId": cid, "messageId": message["id"], "emoji": "👍", "add": True}

    ack = await a.call("react", {**payload, **change})

    assert ack["ok"] is False
    assert ack["error"]["code"] == "validation_error"
    synced = await a.call("sync", {"since": {cid: 0}})
    assert synced["messages"][0]["reactions"] == []


@pytest.mark.parametrize("thread_id", [5, {"$gt": ""}, "", "nope"])
async def test_bad_thread_ids_are_validation_errors_and_store_nothing(
    live: LiveChat, thread_id: Any
) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.group(alice, bob))["id"]
    a = await live.connect(alice)

    ack = await a.call("sendMessage", {"conversationId": cid, "body": "x", "threadId": thread_id})

    assert ack["ok"] is False
    assert ack["error"]["code"] == "validation_error"
    assert (await a.call("sync", {"since": {cid: 0}}))["messages"] == []


async def test_reacting_to_a_deleted_message_is_a_conflict(live: LiveChat) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.group(alice, bob))["id"]
    a = await live.connect(alice)
    message = (await a.call("sendMessage", {"conversationId": cid, "body": "hi"}))["message"]
    deleted = await live.http.delete(
        f"/api/conversations/{cid}/messages/{message['id']}", headers=live.auth(alice)
    )
    assert deleted.status_code == 200

    ack = await a.call(
        "react", {"conversationId": cid, "messageId": message["id"], "emoji": "👍", "add": True}
    )

    assert ack["ok"] is False
    assert ack["error"]["code"] == "conflict"


async def test_mentions_arrive_with_the_new_message(live: LiveChat) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.group(alice, bob))["id"]
    a, b = await live.connect(alice), await live.connect(bob)

    ack = await a.call("sendMessage", {"conversationId": cid, "body": f"@{bob.username} look"})

    assert ack["message"]["mentions"] == [bob.id]
    assert (await b.next("newMessage"))["mentions"] == [bob.id]
