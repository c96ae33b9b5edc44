"""Mapping between domain models and MongoDB documents (camelCase fields).

Kept out of the models on purpose: the domain knows nothing of storage. Our
string ids are the documents' ``_id``. Datetimes are stored as BSON dates
(millisecond precision, which is what the domain's clock hands out) and come
back as aware UTC datetimes whatever the client's codec options.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from chatcore.models import (
    Conversation,
    ConversationType,
    Credentials,
    Message,
    NewMessage,
    Reaction,
    ReadReceipt,
    RefreshToken,
    ThreadSummary,
    User,
)
from chatcore.search import index_words

Document = dict[str, Any]

USERS: Final = "users"
CONVERSATIONS: Final = "conversations"
# One document per direct conversation, {_id: direct_key(a, b), conversationId}:
# one direct conversation per pair (adapters.mongo.conversations).
DIRECT_KEYS: Final = "directKeys"
MESSAGES: Final = "messages"
RECEIPTS: Final = "receipts"
REFRESH_TOKENS: Final = "refreshTokens"

# The message field the search index holds: the body's distinct words
# (chatcore.search.index_words), kept in step with the body on every write.
SEARCH_KEYS: Final = "searchWords"
# Where the first search release kept every 1..8-character word prefix (about 65
# per message, in two indexes); the backfill rewrites such messages.
OLD_SEARCH_KEYS: Final = "searchKeys"

# Fields a stored message carries only for an index (never read back, never in the
# conversation's lastMessage copy): see :func:`index_fields`.
IDEMPOTENCY_KEY: Final = "idem"
THREAD_SEQ: Final = "threadSeq"
MENTIONED_AT: Final = "mentionedAt"

# Reads of users never fetch the password hash unless asked for credentials.
USER_PROJECTION: Final = {"passwordHash": 0}


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (naive values from a client without
    ``tz_aware`` are UTC, as BSON dates are)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _optional_utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def direct_key(user_a: str, user_b: str) -> str:
    """The key that makes a direct conversation unique per pair, in either order.

    Length-prefixed so that no two different pairs can produce the same key,
    whatever characters the ids contain.
    """
    first, second = sorted((user_a, user_b))
    return f"{len(first)}:{first}|{second}"


# -- users -------------------------------------------------------------------


def user_to_document(user: User, password_hash: str) -> Document:
    return {
        "_id": user.id,
        "username": user.username,
        "usernameLower": user.username.lower(),
        "displayName": user.display_name,
        "displayNameLower": user.display_name.lower(),
        "passwordHash": password_hash,
        "createdAt": user.created_at,
        "lastSeenAt": user.last_seen_at,
    }


def document_to_user(doc: Document) -> User:
    return User(
        id=doc["_id"],
        username=doc["username"],
        display_name=doc["displayName"],
        created_at=as_utc(doc["createdAt"]),
        last_seen_at=_optional_utc(doc.get("lastSeenAt")),
    )


def document_to_credentials(doc: Document) -> Credentials:
    return Credentials(user=document_to_user(doc), password_hash=doc["passwordHash"])


# -- messages ----------------------------------------------------------------


def message_to_document(message: Message) -> Document:
    doc: Document = {
        "_id": message.id,
        "conversationId": message.conversation_id,
        "seq": message.seq,
        "senderId": message.sender_id,
        "body": message.body,
        # Stored as null when absent (read back as such). Idempotency is enforced on
        # the ``idem`` key of index_fields, which only messages with one carry.
        "clientMsgId": message.client_msg_id,
        "createdAt": message.created_at,
        "editedAt": message.edited_at,
        "deletedAt": message.deleted_at,
        SEARCH_KEYS: search_keys(message.body, deleted=message.is_deleted),
    }
    if (
        message.thread_id is not None
        or message.thread is not None
        or message.reactions
        or message.mentions
    ):
        doc.update(_v11_message_fields(message))
    return doc


def _v11_message_fields(message: Message) -> Document:
    """The v1.1 fields, only where they hold something: a message without them is
    stored exactly as in v1 (same size), and the sparse indexes on ``threadId`` and
    ``mentions`` leave it out."""
    doc: Document = {}
    if message.thread_id is not None:
        doc["threadId"] = message.thread_id
    if message.thread is not None:
        doc["thread"] = {
            "replyCount": message.thread.reply_count,
            "lastReplyAt": message.thread.last_reply_at,
            "participantIds": list(message.thread.participant_ids),
        }
    if message.reactions:
        doc["reactions"] = [
            {"emoji": r.emoji, "userIds": list(r.user_ids)} for r in message.reactions
        ]
    if message.mentions:
        doc["mentions"] = list(message.mentions)
    return doc


def document_to_thread(doc: Document | None) -> ThreadSummary | None:
    if not doc:
        return None
    return ThreadSummary(
        reply_count=doc["replyCount"],
        last_reply_at=as_utc(doc["lastReplyAt"]),
        participant_ids=tuple(doc.get("participantIds") or ()),
    )


def document_to_reactions(docs: list[Document] | None) -> tuple[Reaction, ...]:
    return tuple(Reaction(emoji=r["emoji"], user_ids=tuple(r["userIds"])) for r in docs or ())


def search_keys(body: str, *, deleted: bool) -> list[str]:
    """What the search indexes hold for a message: nothing once it is deleted."""
    return [] if deleted else index_words(body)


def idempotency_key(conversation_id: str, sender_id: str, client_msg_id: str) -> str:
    """One string for (conversation, sender, clientMsgId): a single-field key, so one
    sparse unique index both enforces idempotency and serves the replay lookup.

    Length-prefixed so that no two different triples give the same key, whatever
    characters the ids contain.
    """
    return f"{len(conversation_id)}:{conversation_id}{len(sender_id)}:{sender_id}{client_msg_id}"


def mentioned_at(conversation_id: str, seq: int) -> Document:
    """Where a mentioning message sits, for the (mentions, mentionedAt.c, mentionedAt.s)
    index; a sub-document so that messages mentioning nobody have none of its fields."""
    return {"c": conversation_id, "s": seq}


def index_fields(doc: Document) -> Document:
    """The fields a message document (as :func:`message_to_document` makes it) carries
    besides its own so that each of its indexes holds only the messages it serves
    (bench/RESULTS.md, issue 14). Never read back; not in the lastMessage copy.

    On SecantusDB every index entry costs CPU on each insert and update, and a
    sparse compound index holds every document that has ANY of its fields (mongod's
    rule), so an index on (threadId, seq) or (mentions, conversationId, seq) held
    every message. Keyed instead on fields only its messages have:

    - ``idem``: only messages with a clientMsgId (:func:`idempotency_key`);
    - ``threadSeq``: only thread replies (a copy of ``seq``);
    - ``mentionedAt``: only messages that mention someone (:func:`mentioned_at`).
    """
    fields: Document = {}
    if isinstance(doc.get("clientMsgId"), str):
        fields[IDEMPOTENCY_KEY] = idempotency_key(
            doc["conversationId"], doc["senderId"], doc["clientMsgId"]
        )
    if doc.get("threadId") is not None:
        fields[THREAD_SEQ] = doc["seq"]
    if doc.get("mentions"):
        fields[MENTIONED_AT] = mentioned_at(doc["conversationId"], doc["seq"])
    return fields


def stored_message_document(message: Message) -> Document:
    """The document a new message is inserted as: its fields and its index fields."""
    doc = message_to_document(message)
    return doc | index_fields(doc)


def is_member(conversation: Document, user_id: str) -> bool:
    """Whether ``conversation`` (a document read by ``_id``) has ``user_id``.

    Membership is checked on the document rather than in the filter: there is no
    (_id, memberIds) index (adapters.mongo.indexes says why), SecantusDB's planner
    scans the collection for a filter field outside every index, and its ``hint``
    walks the whole _id index (measured: ~3 ms against ~0.25 ms by _id alone)."""
    return user_id in conversation.get("memberIds", ())


def without_search_keys(doc: Document) -> Document:
    """A message document for a copy that is never searched (a conversation's lastMessage)."""
    return {field: value for field, value in doc.items() if field != SEARCH_KEYS}


def new_message(new: NewMessage, seq: int) -> Message:
    """The message that ``new`` becomes once the store gave it ``seq``."""
    return Message(
        id=new.id,
        conversation_id=new.conversation_id,
        seq=seq,
        sender_id=new.sender_id,
        body=new.body,
        client_msg_id=new.client_msg_id,
        created_at=new.created_at,
        thread_id=new.thread_id,
        mentions=new.mentions,
    )


def document_to_message(doc: Document) -> Message:
    return Message(
        id=doc["_id"],
        conversation_id=doc["conversationId"],
        seq=doc["seq"],
        sender_id=doc["senderId"],
        body=doc["body"],
        client_msg_id=doc.get("clientMsgId"),
        created_at=as_utc(doc["createdAt"]),
        edited_at=_optional_utc(doc.get("editedAt")),
        deleted_at=_optional_utc(doc.get("deletedAt")),
        # v1 documents have none of these: they read as a message without them.
        thread_id=doc.get("threadId"),
        thread=document_to_thread(doc.get("thread")),
        reactions=document_to_reactions(doc.get("reactions")),
        mentions=tuple(doc.get("mentions") or ()),
    )


# -- conversations -----------------------------------------------------------


def conversation_to_document(conversation: Conversation) -> Document:
    doc: Document = {
        "_id": conversation.id,
        "type": conversation.type.value,
        "name": conversation.name,
        "memberIds": list(conversation.member_ids),
        "createdBy": conversation.created_by,
        "createdAt": conversation.created_at,
        "lastSeq": conversation.last_seq,
        "lastMessage": (
            None
            if conversation.last_message is None
            else without_search_keys(message_to_document(conversation.last_message))
        ),
        # Always set, so that one index sorts every conversation list.
        "lastActivityAt": conversation.activity_at,
    }
    return doc


def document_to_conversation(doc: Document) -> Conversation:
    last_message = doc.get("lastMessage")
    return Conversation(
        id=doc["_id"],
        type=ConversationType(doc["type"]),
        name=doc.get("name"),
        member_ids=tuple(doc["memberIds"]),
        created_by=doc.get("createdBy"),
        created_at=as_utc(doc["createdAt"]),
        last_seq=doc.get("lastSeq", 0),
        last_message=None if last_message is None else document_to_message(last_message),
        last_activity_at=_optional_utc(doc.get("lastActivityAt")),
    )


# -- receipts and refresh tokens ---------------------------------------------


def document_to_receipt(doc: Document) -> ReadReceipt:
    return ReadReceipt(
        conversation_id=doc["conversationId"],
        user_id=doc["userId"],
        last_read_seq=doc["lastReadSeq"],
        read_at=as_utc(doc["readAt"]),
    )


def refresh_token_to_document(token: RefreshToken) -> Document:
    return {
        "_id": token.token_hash,
        "userId": token.user_id,
        "createdAt": token.created_at,
        "expiresAt": token.expires_at,
        "familyId": token.family_id,
    }


def document_to_refresh_token(doc: Document) -> RefreshToken:
    return RefreshToken(
        token_hash=doc["_id"],
        user_id=doc["userId"],
        created_at=as_utc(doc["createdAt"]),
        expires_at=as_utc(doc["expiresAt"]),
        family_id=doc.get("familyId", ""),
    )
