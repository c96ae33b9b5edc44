"""Request and response shapes of the HTTP API as pydantic models.

Request models validate at the edge: strict types (a number or an object such
as ``{"$gt": ""}`` where a string belongs is a validation error, never a
query), camelCase names, and unknown fields refused so that a misspelt
``clientMsgID`` fails loudly instead of silently losing idempotency. Domain
rules (lengths, formats) stay in :mod:`chatcore.limits`.

Response models only describe what :mod:`adapters.wire` produces, for the
OpenAPI document (and for tests that check responses against it).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from chatcore import limits

_CURSOR_MAX = 512
# An id named in a body: the rule of chatcore.limits.entity_id, stated for the schema.
EntityId = Annotated[str, Field(min_length=1, max_length=limits.MAX_ID_CHARS)]

# The rules of chatcore.limits, stated for the OpenAPI document so that it allows what
# the server accepts (limits checks them again, after trimming where it trims).
_NO_NUL = "^[^\\x00]*$"
# At least one character that is not white space, and no NUL.
_NOT_BLANK = "^[^\\x00]*[^\\s\\x00][^\\x00]*$"
Username = Annotated[
    str,
    Field(
        min_length=limits.USERNAME_MIN,
        max_length=limits.USERNAME_MAX,
        pattern=r"^[A-Za-z0-9_.@+\-]+$",
        examples=["alice"],
    ),
]
Password = Annotated[
    str,
    Field(
        min_length=limits.PASSWORD_MIN,
        max_length=limits.PASSWORD_MAX,
        examples=["correct horse battery"],
    ),
]
MessageText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=limits.MAX_BODY_CHARS,
        pattern=_NOT_BLANK,
        description="Trimmed; 1..4000 characters, not blank, no NUL.",
        examples=["Hello!"],
    ),
]


def _integral_float(value: Any) -> Any:
    # JSON Schema counts 48.0 as an integer, and some JSON encoders write whole
    # numbers that way: take it as 48. Strings and fractions stay errors.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_integral_float)]


class RequestBody(BaseModel):
    model_config = ConfigDict(
        strict=True, extra="forbid", alias_generator=to_camel, frozen=True, validate_by_name=False
    )


class QueryParams(BaseModel):
    # Query values are always strings: lax parsing turns "20" into 20. Unknown
    # parameters are ignored (cache busters and the like are common).
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, frozen=True)


class Wire(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, frozen=True, validate_by_name=False
    )


# --- requests ---------------------------------------------------------------------------


class RegisterBody(RequestBody):
    username: Username
    password: Password
    display_name: str | None = Field(
        default=None,
        max_length=limits.DISPLAY_NAME_MAX,
        pattern=_NOT_BLANK,
        description="Trimmed; 1..64 characters, not blank, no NUL.",
        examples=["Alice"],
    )


class LoginBody(RequestBody):
    username: str = Field(examples=["alice"])
    password: str = Field(examples=["correct horse battery"])


class RefreshTokenBody(RequestBody):
    refresh_token: str


class CreateGroupBody(RequestBody):
    type: Literal["group"] = Field(
        default="group",
        description="Only groups are created here; use POST /api/conversations/direct/{userId}.",
    )
    name: str = Field(
        min_length=1,
        max_length=limits.GROUP_NAME_MAX,
        pattern=_NOT_BLANK,
        description="Trimmed; 1..100 characters, not blank, no NUL.",
        examples=["Weekend plans"],
    )
    member_ids: list[EntityId] = Field(default_factory=list, max_length=limits.GROUP_MAX_MEMBERS)


class AddMemberBody(RequestBody):
    user_id: EntityId


class SendMessageBody(RequestBody):
    body: MessageText
    client_msg_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=limits.MAX_CLIENT_MSG_ID_CHARS,
        pattern=_NO_NUL,
        description="Makes the send idempotent: the same id again returns the stored message.",
        examples=["c0a8e7b2-1"],
    )
    thread_id: str | None = Field(
        default=None,
        description="Reply in the thread of this message (a message of the same conversation).",
    )


class DirectSendBody(SendMessageBody):
    # Seed clients repeat the receiver in the body; accepted if it names the same user.
    receiver_id: EntityId | None = Field(default=None, description="Must match the path if given")


class EditMessageBody(RequestBody):
    body: MessageText


class ReadBody(RequestBody):
    up_to_seq: JsonInt = Field(
        ge=0, le=limits.MAX_SEQ, description="Mark everything up to this seq as read."
    )


class PageQuery(QueryParams):
    limit: int | None = Field(default=None, ge=1, le=limits.PAGE_LIMIT_MAX)
    cursor: str | None = Field(default=None, max_length=_CURSOR_MAX)


class UserSearchQuery(PageQuery):
    search: str | None = Field(default=None, description="Username or display name prefix.")


class HistoryQuery(QueryParams):
    before: int | None = Field(
        default=None, ge=0, le=limits.MAX_SEQ, description="Messages with seq < before."
    )
    after: int | None = Field(
        default=None, ge=0, le=limits.MAX_SEQ, description="Messages with seq > after."
    )
    limit: int | None = Field(default=None, ge=1, le=limits.PAGE_LIMIT_MAX)


class MessageSearchQuery(QueryParams):
    q: str = Field(
        min_length=1,
        max_length=limits.MESSAGE_SEARCH_MAX_CHARS,
        description=(
            f"1..{limits.MESSAGE_SEARCH_MAX_CHARS} characters holding at least one word (a run "
            "of letters and digits; none is a validation_error). Every word must be a prefix "
            "of a word of the message, case and accents aside."
        ),
        examples=["lunch tom"],
    )
    conversation_id: EntityId | None = Field(
        default=None, description="Only this conversation (404 if you are not a member)."
    )
    limit: int | None = Field(
        default=None,
        ge=1,
        le=limits.MESSAGE_SEARCH_LIMIT_MAX,
        description=f"Default {limits.MESSAGE_SEARCH_DEFAULT_LIMIT}.",
    )
    cursor: str | None = Field(default=None, max_length=_CURSOR_MAX)


class ConversationHistoryQuery(HistoryQuery):
    thread_id: str | None = Field(
        default=None,
        max_length=limits.MAX_ID_CHARS,
        description="List this thread's replies (not the root) instead of the conversation.",
    )


class PresenceQuery(QueryParams):
    user_ids: str = Field(default="", description="Comma-separated user ids.", examples=["a,b,c"])

    def ids(self) -> list[str]:
        return [u.strip() for u in self.user_ids.split(",") if u.strip()]


# --- responses --------------------------------------------------------------------------

Timestamp = Annotated[
    str,
    Field(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$",
        json_schema_extra={"format": "date-time"},
        examples=["2026-01-01T12:00:00.000Z"],
    ),
]


class UserOut(Wire):
    id: str
    username: str
    display_name: str
    created_at: Timestamp
    last_seen_at: Timestamp | None


class ThreadOut(Wire):
    reply_count: int = Field(ge=1)
    last_reply_at: Timestamp
    participant_ids: list[str]


class ReactionOut(Wire):
    emoji: str
    user_ids: list[str]


class MessageOut(Wire):
    id: str
    conversation_id: str
    seq: int = Field(ge=1)
    sender_id: str
    body: str
    client_msg_id: str | None
    created_at: Timestamp
    edited_at: Timestamp | None
    deleted_at: Timestamp | None
    thread_id: str | None = Field(description="The thread root's id on a reply.")
    thread: ThreadOut | None = Field(description="On a thread root, once it has a reply.")
    reactions: list[ReactionOut] = Field(description="In order of each emoji's first use.")
    mentions: list[str] = Field(description="Members named as @username, in order.")


class ConversationOut(Wire):
    id: str
    type: Literal["direct", "group"]
    name: str | None
    member_ids: list[str]
    created_at: Timestamp
    last_message: MessageOut | None
    last_seq: int = Field(ge=0)
    last_read_seq: int = Field(ge=0)
    unread_count: int = Field(ge=0)
    unread_mentions: int = Field(ge=0)


class ReadReceiptOut(Wire):
    conversation_id: str
    user_id: str
    last_read_seq: int = Field(ge=0)
    read_at: Timestamp


class PresenceOut(Wire):
    user_id: str
    online: bool
    last_seen_at: Timestamp | None


class AuthSessionOut(Wire):
    user: UserOut
    access_token: str
    refresh_token: str
    expires_in: int = Field(description="Seconds until the access token expires.")


class UserPageOut(Wire):
    users: list[UserOut]
    next_cursor: str | None


class ConversationPageOut(Wire):
    conversations: list[ConversationOut]
    next_cursor: str | None


class HistoryOut(Wire):
    messages: list[MessageOut] = Field(description="Ascending by seq.")
    has_more: bool


class MessageSearchOut(Wire):
    messages: list[MessageOut] = Field(description="Newest first.")
    next_cursor: str | None


class ReceiptsOut(Wire):
    receipts: list[ReadReceiptOut]


class PresenceListOut(Wire):
    presence: list[PresenceOut]


class ErrorDetail(Wire):
    code: str = Field(examples=["validation_error"])
    message: str
    details: Any = None


class ErrorOut(Wire):
    error: ErrorDetail


class HealthOut(Wire):
    status: Literal["ok"]
