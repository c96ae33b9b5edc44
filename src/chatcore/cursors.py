"""Opaque paging cursors: URL-safe base64 of a small JSON document.

Clients must treat them as opaque; a cursor that does not decode is a
validation error, never a server error.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from chatcore.errors import ValidationFailed
from chatcore.models import ConversationCursor
from chatcore.search import SearchPosition


def _encode(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ValidationFailed("invalid cursor", details={"field": "cursor"}) from exc
    if not isinstance(payload, dict):
        raise ValidationFailed("invalid cursor", details={"field": "cursor"})
    return payload


def encode_user_cursor(username_lower: str) -> str:
    return _encode({"u": username_lower})


def decode_user_cursor(cursor: str) -> str:
    value = _decode(cursor).get("u")
    if not isinstance(value, str):
        raise ValidationFailed("invalid cursor", details={"field": "cursor"})
    return value


def _aware_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValidationFailed("invalid cursor", details={"field": "cursor"})
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValidationFailed("invalid cursor", details={"field": "cursor"}) from exc
    if at.tzinfo is None:
        # Every cursor we hand out is timezone-aware; a naive one can't be compared.
        raise ValidationFailed("invalid cursor", details={"field": "cursor"})
    return at


def encode_search_cursor(position: SearchPosition) -> str:
    return _encode({"t": position.created_at.isoformat(), "m": position.message_id})


def decode_search_cursor(cursor: str) -> SearchPosition:
    payload = _decode(cursor)
    message_id = payload.get("m")
    if not isinstance(message_id, str):
        raise ValidationFailed("invalid cursor", details={"field": "cursor"})
    return SearchPosition(created_at=_aware_time(payload.get("t")), message_id=message_id)


def encode_conversation_cursor(position: ConversationCursor) -> str:
    return _encode({"t": position.activity_at.isoformat(), "c": position.conversation_id})


def decode_conversation_cursor(cursor: str) -> ConversationCursor:
    payload = _decode(cursor)
    conversation_id = payload.get("c")
    if not isinstance(conversation_id, str):
        raise ValidationFailed("invalid cursor", details={"field": "cursor"})
    return ConversationCursor(
        activity_at=_aware_time(payload.get("t")), conversation_id=conversation_id
    )
