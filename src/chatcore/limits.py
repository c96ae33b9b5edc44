"""Every input rule of chatcore, checked before anything is stored.

The edges validate types and shapes; this module holds the rules (lengths,
ranges, counts) that any caller (HTTP, Socket.IO, an embedding service) must
meet, each defined once. The services apply the rules on their arguments;
ids a client names (path segments, payload fields) are checked by the edges
with :func:`entity_id`, since to the domain they are opaque keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from chatcore.errors import ValidationFailed

MAX_BODY_CHARS: Final = 4000
MAX_CLIENT_MSG_ID_CHARS: Final = 64
USERNAME_MIN: Final = 1
USERNAME_MAX: Final = 64
# The Node seed accepted 6; kept for its clients (NIST would say 8).
PASSWORD_MIN: Final = 6
PASSWORD_MAX: Final = 256
DISPLAY_NAME_MAX: Final = 64
GROUP_NAME_MAX: Final = 100
GROUP_MAX_MEMBERS: Final = 256
PAGE_LIMIT_MAX: Final = 100
DEFAULT_PAGE_LIMIT: Final = 50
SEARCH_MAX_CHARS: Final = 64
SYNC_MAX_CONVERSATIONS: Final = 500
SYNC_MAX_MESSAGES_PER_CONVERSATION: Final = 500
MAX_ID_CHARS: Final = 64
MAX_EMOJI_CHARS: Final = 32
# Not in an emoji: whitespace (Python's and JavaScript's), control characters, and "/"
# (an emoji is a URL path segment). One class for the domain and the OpenAPI document.
EMOJI_EXCLUDED: Final = (
    r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff/"
)
EMOJI_PATTERN: Final = f"^[^{EMOJI_EXCLUDED}]+$"
# Distinct emoji one message holds; the next one is a Conflict (API.md v1.1).
MAX_REACTION_EMOJI: Final = 20
# JavaScript's Number.MAX_SAFE_INTEGER: a JS client cannot send a larger integer
# exactly, and stores keep seqs as 64-bit integers, so anything above is refused.
MAX_SEQ: Final = 2**53 - 1
PRESENCE_QUERY_MAX: Final = 100

# Letters, digits and a few marks that show up in handles and e-mail-like names; no
# spaces or controls, so a username is one unambiguous token in URLs and mentions.
_USERNAME_RE: Final = re.compile(r"[A-Za-z0-9_.@+\-]+")


_EMOJI_RE: Final = re.compile(EMOJI_PATTERN)


def _fail(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, details={"field": field})


def _no_nul(value: str, field: str) -> str:
    # A NUL ends a C string: stores, logs and other clients may cut the text there.
    if "\x00" in value:
        raise _fail(field, f"{field} must not contain NUL characters")
    return value


def entity_id(value: str, field: str) -> str:
    """An id named by a client (conversation, message, user): 1..64 characters."""
    if not 1 <= len(value) <= MAX_ID_CHARS:
        raise _fail(field, f"{field} must be 1..{MAX_ID_CHARS} characters")
    return value


def message_body(body: str) -> str:
    """Trim and check a message body: 1..4000 characters after trimming."""
    trimmed = _no_nul(body, "body").strip()
    if not trimmed:
        raise _fail("body", "body must not be empty")
    if len(trimmed) > MAX_BODY_CHARS:
        raise _fail("body", f"body must be at most {MAX_BODY_CHARS} characters")
    return trimmed


def client_msg_id(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_CLIENT_MSG_ID_CHARS:
        raise _fail("clientMsgId", f"clientMsgId must be 1..{MAX_CLIENT_MSG_ID_CHARS} characters")
    return _no_nul(value, "clientMsgId")


def username(value: str) -> str:
    if not USERNAME_MIN <= len(value) <= USERNAME_MAX or not _USERNAME_RE.fullmatch(value):
        raise _fail(
            "username",
            f"username must be {USERNAME_MIN}..{USERNAME_MAX} characters of letters, digits, "
            "'_', '.', '@', '+' or '-'",
        )
    return value


def password(value: str) -> str:
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise _fail("password", f"password must be {PASSWORD_MIN}..{PASSWORD_MAX} characters")
    return value


def display_name(value: str) -> str:
    trimmed = _no_nul(value, "displayName").strip()
    if not 1 <= len(trimmed) <= DISPLAY_NAME_MAX:
        raise _fail("displayName", f"displayName must be 1..{DISPLAY_NAME_MAX} characters")
    return trimmed


def group_name(value: str) -> str:
    trimmed = _no_nul(value, "name").strip()
    if not 1 <= len(trimmed) <= GROUP_NAME_MAX:
        raise _fail("name", f"name must be 1..{GROUP_NAME_MAX} characters")
    return trimmed


def page_limit(value: int | None, *, default: int = DEFAULT_PAGE_LIMIT) -> int:
    if value is None:
        return default
    if not 1 <= value <= PAGE_LIMIT_MAX:
        raise _fail("limit", f"limit must be 1..{PAGE_LIMIT_MAX}")
    return value


def seq(value: int, field: str) -> int:
    """A seq given by a client: 0..MAX_SEQ (0 means "before the first message")."""
    if not 0 <= value <= MAX_SEQ:
        raise _fail(field, f"{field} must be an integer in 0..{MAX_SEQ}")
    return value


def sync_since(since: Mapping[str, int]) -> Mapping[str, int]:
    """``sync``'s ``{conversationId: seq}``: at most 500 conversations, valid ids and seqs."""
    if len(since) > SYNC_MAX_CONVERSATIONS:
        raise _fail("since", f"since names at most {SYNC_MAX_CONVERSATIONS} conversations")
    for conversation_id, value in since.items():
        if not 1 <= len(conversation_id) <= MAX_ID_CHARS:
            raise _fail("since", f"conversation ids must be 1..{MAX_ID_CHARS} characters")
        seq(value, "since")
    return since


def group_size(count: int, field: str) -> int:
    """A group's member count, the creator included: at most 256."""
    if count > GROUP_MAX_MEMBERS:
        raise _fail(field, f"a group has at most {GROUP_MAX_MEMBERS} members")
    return count


def presence_query(user_ids: Sequence[str]) -> list[str]:
    """The distinct ids of a presence query, in the order asked: at most 100."""
    wanted = list(dict.fromkeys(user_ids))
    if len(wanted) > PRESENCE_QUERY_MAX:
        raise _fail("userIds", f"ask for at most {PRESENCE_QUERY_MAX} users")
    return wanted


def search(value: str | None) -> str | None:
    if value is None:
        return None
    trimmed = value.strip().lower()
    if len(trimmed) > SEARCH_MAX_CHARS:
        raise _fail("search", f"search must be at most {SEARCH_MAX_CHARS} characters")
    return trimmed or None


MESSAGE_SEARCH_MAX_CHARS: Final = 200
MESSAGE_SEARCH_LIMIT_MAX: Final = 50
MESSAGE_SEARCH_DEFAULT_LIMIT: Final = 20


def message_search_query(value: str) -> str:
    """A message search query: 1..200 characters (what words it holds is
    :func:`chatcore.search.query_words`'s business)."""
    if not 1 <= len(value) <= MESSAGE_SEARCH_MAX_CHARS:
        raise _fail("q", f"q must be 1..{MESSAGE_SEARCH_MAX_CHARS} characters")
    return value


def message_search_limit(value: int | None) -> int:
    if value is None:
        return MESSAGE_SEARCH_DEFAULT_LIMIT
    if not 1 <= value <= MESSAGE_SEARCH_LIMIT_MAX:
        raise _fail("limit", f"limit must be 1..{MESSAGE_SEARCH_LIMIT_MAX}")
    return value


def emoji(value: str) -> str:
    """A reaction: 1..32 characters, none of them whitespace or control characters
    (a Unicode emoji or a short name such as ``:party:``)."""
    if not 1 <= len(value) <= MAX_EMOJI_CHARS:
        raise _fail("emoji", f"emoji must be 1..{MAX_EMOJI_CHARS} characters")
    # Joiners and variation selectors (Cf, Mn) are allowed: they build real emoji.
    if not _EMOJI_RE.fullmatch(value):
        raise _fail("emoji", "emoji must not contain whitespace, control characters or '/'")
    return value


def thread_id(value: str | None) -> str | None:
    """An optional thread root's id (the id rule)."""
    return None if value is None else entity_id(value, "threadId")
