"""Input rules (chatcore.limits), opaque cursors (chatcore.cursors), and the small
building blocks the services rely on: errors, the system clock and id generator."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcore import limits
from chatcore.cursors import (
    decode_conversation_cursor,
    decode_user_cursor,
    encode_conversation_cursor,
    encode_user_cursor,
)
from chatcore.errors import (
    ChatError,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from chatcore.models import ConversationCursor
from chatcore.system import SystemClock, TimeOrderedIdGenerator, truncate_to_millis

# --- limits -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        (limits.message_body, " hi ", "hi"),
        (limits.message_body, "x" * 4000, "x" * 4000),
        (limits.client_msg_id, None, None),
        (limits.client_msg_id, "a", "a"),
        (limits.client_msg_id, "a" * 64, "a" * 64),
        (limits.client_msg_id, " padded ", " padded "),  # kept as given: it's a key
        (limits.username, "abc", "abc"),
        (limits.username, "A" * 32, "A" * 32),
        (limits.password, "p" * 8, "p" * 8),
        (limits.password, " p" * 128, " p" * 128),
        (limits.display_name, " Al ", "Al"),
        (limits.display_name, "é" * 64, "é" * 64),
        (limits.group_name, "  G  ", "G"),
        (limits.group_name, "g" * 100, "g" * 100),
        (limits.search, None, None),
        (limits.search, "  MiXeD ", "mixed"),
        (limits.search, "   ", None),
        (limits.search, "s" * 64, "s" * 64),
    ],
)
def test_rules_accept_and_normalise(rule: Any, value: Any, expected: Any) -> None:
    assert rule(value) == expected


@pytest.mark.parametrize(
    ("rule", "value", "field"),
    [
        (limits.message_body, "", "body"),
        (limits.message_body, " \n\t ", "body"),
        (limits.message_body, "x" * 4001, "body"),
        (limits.client_msg_id, "", "clientMsgId"),
        (limits.client_msg_id, "a" * 65, "clientMsgId"),
        (limits.username, "", "username"),
        (limits.username, "a" * 65, "username"),
        (limits.username, "a b", "username"),
        (limits.username, "abc\n", "username"),
        (limits.username, "ab/c", "username"),
        (limits.password, "p" * 5, "password"),
        (limits.password, "p" * 257, "password"),
        (limits.display_name, "  ", "displayName"),
        (limits.display_name, "d" * 65, "displayName"),
        (limits.group_name, "", "name"),
        (limits.group_name, "g" * 101, "name"),
        (limits.search, "s" * 65, "search"),
    ],
)
def test_rules_refuse_with_the_field_named(rule: Any, value: Any, field: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        rule(value)
    assert err.value.details == {"field": field}


@pytest.mark.parametrize(("value", "expected"), [(None, 50), (1, 1), (100, 100)])
def test_page_limit(value: int | None, expected: int) -> None:
    assert limits.page_limit(value) == expected


def test_page_limit_default_can_be_chosen() -> None:
    assert limits.page_limit(None, default=20) == 20


@pytest.mark.parametrize("value", [0, -1, 101, 10**9])
def test_page_limit_out_of_range(value: int) -> None:
    with pytest.raises(ValidationFailed) as err:
        limits.page_limit(value)
    assert err.value.details == {"field": "limit"}


def test_seq_is_0_to_the_largest_exact_javascript_integer() -> None:
    assert limits.seq(0, "after") == 0
    assert limits.seq(limits.MAX_SEQ, "after") == 2**53 - 1
    for bad in (-1, limits.MAX_SEQ + 1):
        with pytest.raises(ValidationFailed) as err:
            limits.seq(bad, "before")
        assert err.value.details == {"field": "before"}


@pytest.mark.parametrize("value", ["a", "x" * 64, "65f0c0ffee"])
def test_entity_ids_of_1_to_64_characters_pass(value: str) -> None:
    assert limits.entity_id(value, "conversationId") == value


@pytest.mark.parametrize("value", ["", "x" * 65])
def test_entity_ids_out_of_range_name_their_field(value: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        limits.entity_id(value, "messageId")
    assert err.value.details == {"field": "messageId"}


@pytest.mark.parametrize(
    "since",
    [
        {f"c{i}": 0 for i in range(limits.SYNC_MAX_CONVERSATIONS + 1)},
        {"": 0},
        {"x" * 65: 0},
        {"c": -1},
        {"c": limits.MAX_SEQ + 1},
    ],
)
def test_sync_since_refuses_too_many_bad_ids_and_bad_seqs(since: dict[str, int]) -> None:
    with pytest.raises(ValidationFailed) as err:
        limits.sync_since(since)
    assert err.value.details == {"field": "since"}


def test_sync_since_at_its_limits_passes() -> None:
    since = {f"{i:064d}": limits.MAX_SEQ for i in range(limits.SYNC_MAX_CONVERSATIONS)}
    assert limits.sync_since(since) is since


def test_group_size_counts_up_to_256_members() -> None:
    assert limits.group_size(limits.GROUP_MAX_MEMBERS, "memberIds") == 256
    with pytest.raises(ValidationFailed) as err:
        limits.group_size(limits.GROUP_MAX_MEMBERS + 1, "userId")
    assert err.value.details == {"field": "userId"}


# --- cursors ----------------------------------------------------------------------------


@given(st.text())
def test_user_cursor_round_trips_any_text(username: str) -> None:
    cursor = encode_user_cursor(username)

    assert re.fullmatch(r"[A-Za-z0-9_\-]*", cursor)  # URL-safe, no padding
    assert decode_user_cursor(cursor) == username


@given(
    at=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))]),
    ),
    conversation_id=st.text(min_size=1, max_size=40),
)
def test_conversation_cursor_round_trips(at: datetime, conversation_id: str) -> None:
    position = ConversationCursor(activity_at=at, conversation_id=conversation_id)

    cursor = encode_conversation_cursor(position)

    assert re.fullmatch(r"[A-Za-z0-9_\-]*", cursor)
    assert decode_conversation_cursor(cursor) == position


def b64(payload: object) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_ANY = [
    "",
    "%%%",
    "ü",
    "a",  # one base64 character can't be a byte
    b64(b"\x80\x81"),
    b64(b"nope"),
    b64([1, 2]),
    b64(None),
    b64(b"[" * 100_000),  # nesting deep enough to exhaust the JSON decoder's recursion
    b64(b'{"a":' * 100_000),
]


@pytest.mark.parametrize(
    "cursor", [*BAD_ANY, b64({"u": 1}), b64({"u": None}), b64({"t": "x", "c": "y"})]
)
def test_bad_user_cursors_are_validation_errors(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        decode_user_cursor(cursor)
    assert err.value.details == {"field": "cursor"}


@pytest.mark.parametrize(
    "cursor",
    [
        *BAD_ANY,
        b64({"u": "alice"}),
        b64({"t": "2026-01-01T00:00:00+00:00"}),
        b64({"c": "id-1"}),
        b64({"t": 1767225600, "c": "id-1"}),
        b64({"t": "2026-01-01T00:00:00+00:00", "c": 5}),
        b64({"t": "not a time", "c": "id-1"}),
        b64({"t": "2026-01-01T00:00:00", "c": "id-1"}),  # naive: no offset
        b64({"t": "2026-01-01", "c": "id-1"}),  # a date, also naive
    ],
)
def test_bad_conversation_cursors_are_validation_errors(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        decode_conversation_cursor(cursor)
    assert err.value.details == {"field": "cursor"}


def test_cursor_padding_is_optional() -> None:
    padded = base64.urlsafe_b64encode(b'{"u":"al"}').decode()
    assert padded.endswith("=")

    assert decode_user_cursor(padded) == decode_user_cursor(padded.rstrip("=")) == "al"


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ChatError, "internal_error"),
        (ValidationFailed, "validation_error"),
        (Unauthorized, "unauthorized"),
        (Forbidden, "forbidden"),
        (NotFound, "not_found"),
        (Conflict, "conflict"),
        (PayloadTooLarge, "payload_too_large"),
        (Unavailable, "unavailable"),
    ],
)
def test_error_codes_are_the_contracts(error: type[ChatError], code: str) -> None:
    raised = error("boom", details={"k": 1})

    assert raised.code == code
    assert isinstance(raised, ChatError)
    assert (raised.message, raised.details, str(raised)) == ("boom", {"k": 1}, "boom")
    assert repr(raised) == f"{error.__name__}('boom')"


def test_rate_limited_carries_retry_after() -> None:
    raised = RateLimited("slow down", retry_after=2.5)

    assert (raised.code, raised.retry_after, raised.details) == ("rate_limited", 2.5, None)


# --- system clock and ids ---------------------------------------------------------------


def test_truncate_to_millis() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 678_999, tzinfo=UTC)

    assert truncate_to_millis(at) == datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)


def test_system_clock_is_utc_at_millisecond_precision() -> None:
    now = SystemClock().now()

    assert now.tzinfo is UTC
    assert now.microsecond % 1000 == 0


def test_time_ordered_ids_look_like_object_ids_and_are_unique() -> None:
    ids = TimeOrderedIdGenerator()
    made = [ids.new_id() for _ in range(1000)]

    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in made)
    assert len(set(made)) == 1000
