"""Every failure is an ack ``{ok: false, error: {code, message}}`` and the socket lives on."""

from __future__ import annotations

import logging
from typing import Any

import attrs
import pytest
from livechat import LiveChat, LiveFactory, SocketClient

from chatcore.errors import Unavailable
from chatcore.models import AppendResult, NewMessage
from chatcore.testing import in_memory_storage

CID = "{cid}"  # replaced by the test's conversation id


def _bad_payloads() -> dict[str, list[Any]]:
    ok_send = {"conversationId": CID, "body": "hi"}
    return {
        "sendMessage": [
            None,
            "hi",
            42,
            ["hi"],
            {},
            {"body": "no target"},
            {"conversationId": CID},
            {"conversationId": CID, "body": None},
            {"conversationId": CID, "body": 5},
            {"conversationId": CID, "body": {"$gt": ""}},
            {"conversationId": CID, "body": ""},
            {"conversationId": CID, "body": "   \n "},
            {"conversationId": CID, "body": "x" * 4001},
            {"conversationId": {"$gt": ""}, "body": "hi"},
            {"conversationId": ["a"], "body": "hi"},
            {"conversationId": 7, "body": "hi"},
            {"conversationId": "", "body": "hi"},
            {"conversationId": "c" * 65, "body": "hi"},
            {"receiverId": {"$ne": None}, "body": "hi"},
            {**ok_send, "receiverId": "someone"},
            {**ok_send, "clientMsgId": ""},
            {**ok_send, "clientMsgId": "k" * 65},
            {**ok_send, "clientMsgId": 12},
            {**ok_send, "clientMsgId": {"$ne": None}},
        ],
        "readMessage": [
            None,
            [],
            {},
            {"conversationId": CID},
            {"upToSeq": 1},
            {"conversationId": CID, "upToSeq": "1"},
            {"conversationId": CID, "upToSeq": 1.5},
            {"conversationId": CID, "upToSeq": True},
            {"conversationId": CID, "upToSeq": -1},
            {"conversationId": CID, "upToSeq": 2**53},
            {"conversationId": CID, "upToSeq": {"$gt": 0}},
            {"conversationId": {"$gt": ""}, "upToSeq": 1},
        ],
        "typing": [
            None,
            "yes",
            {},
            {"conversationId": CID},
            {"conversationId": CID, "isTyping": "yes"},
            {"conversationId": CID, "isTyping": 1},
            {"conversationId": CID, "isTyping": None},
            {"conversationId": {"$gt": ""}, "isTyping": True},
        ],
        "sync": [
            None,
            [],
            {},
            {"since": None},
            {"since": []},
            {"since": "x"},
            {"since": {CID: "1"}},
            {"since": {CID: -1}},
            {"since": {CID: 1.0}},
            {"since": {CID: {"$gt": 0}}},
            {"since": {"c" * 65: 0}},
            {"since": {f"c{n}": 0 for n in range(501)}},
        ],
    }


def _fill(value: Any, cid: str) -> Any:
    if value == CID:
        return cid
    if isinstance(value, dict):
        return {_fill(k, cid): _fill(v, cid) for k, v in value.items()}
    return value


def _is_error(ack: Any, code: str) -> bool:
    return (
        isinstance(ack, dict)
        and set(ack) == {"ok", "error"}
        and ack["ok"] is False
        and set(ack["error"]) == {"code", "message"}
        and ack["error"]["code"] == code
        and isinstance(ack["error"]["message"], str)
    )


async def _still_usable(client: SocketClient, cid: str) -> None:
    ack = await client.call("sendMessage", {"conversationId": cid, "body": "still here"})
    assert ack["ok"] is True, ack


async def test_malformed_payloads_ack_validation_error_and_the_socket_stays_usable(
    live: LiveChat,
) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.group(alice, bob))["id"]
    client, receiver = await live.connect(alice), await live.connect(bob, ["polling"])

    for event, payloads in _bad_payloads().items():
        for payload in payloads:
            args = () if payload is None else (_fill(payload, cid),)
            ack = await client.call(event, *args)
            assert _is_error(ack, "validation_error"), (event, payload, ack)

    assert client.sio.connected
    await _still_usable(client, cid)
    # Nothing invalid was stored or delivered: the one message is seq 1.
    assert (await receiver.next("newMessage"))["seq"] == 1


async def test_several_arguments_are_a_validation_error(live: LiveChat) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.group(alice, bob))["id"]
    client = await live.connect(alice)

    ack = await client.sio.call(
        "sendMessage", ({"conversationId": cid, "body": "a"}, {"extra": True}), timeout=5
    )

    assert _is_error(ack, "validation_error"), ack
    await _still_usable(client, cid)


async def test_seed_send_to_oneself_is_a_validation_error(live: LiveChat) -> None:
    alice = await live.register("alice")
    client = await live.connect(alice)

    ack = await client.call("sendMessage", {"receiverId": alice.id, "body": "me"})

    assert _is_error(ack, "validation_error"), ack


@attrs.define
class _FailingMessages:
    """The in-memory message store, failing on request: body "boom" raises an
    unexpected error, body "down" raises Unavailable (storage unreachable)."""

    inner: Any

    async def append(self, new: NewMessage) -> AppendResult:
        if new.body == "boom":
            raise RuntimeError("secret driver detail: mongodb://admin:hunter2@db")
        if new.body == "down":
            raise Unavailable("storage is unreachable")
        result: AppendResult = await self.inner.append(new)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_unexpected_errors_ack_internal_error_without_internals(
    make_live: LiveFactory, caplog: pytest.LogCaptureFixture
) -> None:
    storage = in_memory_storage()
    storage = attrs.evolve(storage, messages=_FailingMessages(storage.messages))
    async with make_live(storage=storage) as live:
        alice, bob = await live.users("alice", "bob")
        cid = (await live.group(alice, bob))["id"]
        client = await live.connect(alice)

        with caplog.at_level(logging.ERROR):
            boom = await client.call("sendMessage", {"conversationId": cid, "body": "boom"})
        down = await client.call("sendMessage", {"conversationId": cid, "body": "down"})

        assert _is_error(boom, "internal_error"), boom
        assert "hunter2" not in boom["error"]["message"]
        assert "RuntimeError" not in boom["error"]["message"]
        # The log has the details and the request id the client was given.
        request_id = boom["error"]["message"].rsplit(" ", 1)[-1].rstrip(")")
        assert any(request_id in r.getMessage() and r.exc_info for r in caplog.records)
        assert _is_error(down, "unavailable"), down
        assert client.sio.connected
        await _still_usable(client, cid)


async def test_an_unknown_event_acks_not_found(live: LiveChat) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.group(alice, bob))["id"]
    client = await live.connect(alice)

    ack = await client.call("editMessage", {"conversationId": cid, "body": "x"})

    assert _is_error(ack, "not_found"), ack
    await _still_usable(client, cid)
