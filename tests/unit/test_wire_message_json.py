"""adapters.wire.message_json: the contract's Message, made once for a message asked twice."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs

from adapters.wire import message_json
from chatcore.models import Message

AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def _message(body: str) -> Message:
    return Message(
        id="m1",
        conversation_id="c1",
        seq=1,
        sender_id="u1",
        body=body,
        client_msg_id=None,
        created_at=AT,
    )


def test_a_message_has_every_v1_1_key_empty_when_unset() -> None:
    assert message_json(_message("hi")) == {
        "id": "m1",
        "conversationId": "c1",
        "seq": 1,
        "senderId": "u1",
        "body": "hi",
        "clientMsgId": None,
        "createdAt": "2026-01-02T03:04:05.678Z",
        "editedAt": None,
        "deletedAt": None,
        "threadId": None,
        "thread": None,
        "reactions": [],
        "mentions": [],
    }


def test_the_same_message_twice_is_made_once_and_an_equal_copy_afresh() -> None:
    message = _message("hi")
    first = message_json(message)

    assert message_json(message) is first
    edited = attrs.evolve(message, body="edited", mentions=("u2",))
    assert message_json(edited)["body"] == "edited"
    assert message_json(edited)["mentions"] == ["u2"]
    # The message asked before is not confused with the one asked since.
    assert message_json(message)["body"] == "hi"
