"""Conversations in MongoDB: members, the seq counter and the newest message."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from adapters.mongo import values
from adapters.mongo.documents import (
    CONVERSATIONS,
    Document,
    as_utc,
    conversation_to_document,
    direct_key,
    document_to_conversation,
    is_member,
)
from adapters.mongo.errors import TimeBound, duplicate_key_fields, storage_call
from chatcore.errors import Conflict, ValidationFailed
from chatcore.models import Conversation, ConversationCursor, ConversationType
from chatcore.ports import ConversationRepository

# Most recent activity first, ties by id descending: the order of the index.
LIST_ORDER = [("lastActivityAt", DESCENDING), ("_id", DESCENDING)]
# Extra documents fetched with a page, for the ties skipped after a cursor.
_TIE_SLACK = 4


def _checked(conversation: Conversation) -> Conversation:
    values.text(conversation.id, "id")
    values.texts(conversation.member_ids, "memberIds")
    return conversation


class MongoConversationRepository(ConversationRepository, TimeBound):
    """Conversations in the ``conversations`` collection.

    ``lastActivityAt`` is always stored (the creation time until the first
    message), so one compound index serves every member's list.
    """

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.bound_by(db)
        self._conversations = db[CONVERSATIONS]

    @storage_call
    async def create(self, conversation: Conversation) -> None:
        try:
            await self._conversations.insert_one(conversation_to_document(_checked(conversation)))
        except DuplicateKeyError as exc:
            raise Conflict("conversation exists") from exc

    @storage_call
    async def get_or_create_direct(self, conversation: Conversation) -> tuple[Conversation, bool]:
        _checked(conversation)
        if (
            conversation.type is not ConversationType.DIRECT
            or len(set(conversation.member_ids)) != 2
        ):
            raise ValidationFailed("a direct conversation has exactly two members")
        key = direct_key(*conversation.member_ids)
        # A plain insert guarded by the unique directKey index, not an upsert:
        # concurrent callers race on the index and the losers read the winner's
        # document. (SecantusDB may answer a racing upsert's loser with None.)
        try:
            await self._conversations.insert_one(conversation_to_document(conversation))
        except DuplicateKeyError as exc:
            if "directKey" not in duplicate_key_fields(exc):
                raise Conflict("conversation exists") from exc
            existing = await self._conversations.find_one({"directKey": key})
            if existing is None:  # pragma: no cover - direct conversations are never deleted
                raise Conflict("direct conversation changed concurrently") from exc
            return document_to_conversation(existing), False
        return conversation, True

    @storage_call
    async def find_direct(self, user_a: str, user_b: str) -> Conversation | None:
        key = direct_key(values.text(user_a, "userId"), values.text(user_b, "userId"))
        doc = await self._conversations.find_one({"directKey": key})
        return None if doc is None else document_to_conversation(doc)

    @storage_call
    async def get(self, conversation_id: str) -> Conversation | None:
        doc = await self._conversations.find_one(
            {"_id": values.text(conversation_id, "conversationId")}
        )
        return None if doc is None else document_to_conversation(doc)

    @storage_call
    async def get_for_member(self, conversation_id: str, user_id: str) -> Conversation | None:
        user_id = values.text(user_id, "userId")
        doc = await self._conversations.find_one(
            {"_id": values.text(conversation_id, "conversationId")}
        )
        if doc is None or not is_member(doc, user_id):
            return None
        return document_to_conversation(doc)

    @storage_call
    async def list_for_member(
        self, user_id: str, *, limit: int, after: ConversationCursor | None
    ) -> list[Conversation]:
        limit = values.integer(limit, "limit")
        if limit <= 0:
            return []
        query: dict[str, Any] = {"memberIds": values.text(user_id, "userId")}
        at: datetime | None = None
        last_id = ""
        if after is not None:
            at = values.moment(after.activity_at, "cursor")
            last_id = values.text(after.conversation_id, "cursor")
            # (lastActivityAt, _id) strictly below the cursor. The index range is
            # "lastActivityAt <= t"; the few ties at t with an _id not below the
            # cursor's are skipped here. (An $or of the two cases would be exact
            # but SecantusDB answers an $or with a collection scan.)
            query["lastActivityAt"] = {"$lte": at}
        # A limit, not just a batch size: the server then closes its cursor with
        # the one reply (no killCursors round trip). If the ties ate the slack,
        # which takes more than _TIE_SLACK conversations active in the same
        # millisecond, ask again for more.
        fetch = limit + (_TIE_SLACK if at is not None else 0)
        while True:
            docs = await self._conversations.find(query).sort(LIST_ORDER).limit(fetch).to_list(None)
            found = [
                document_to_conversation(doc)
                for doc in docs
                if at is None or as_utc(doc["lastActivityAt"]) != at or doc["_id"] < last_id
            ]
            if len(found) >= limit or len(docs) < fetch:
                return found[:limit]
            fetch *= 2

    @storage_call
    async def list_by_ids_for_member(
        self, user_id: str, conversation_ids: Iterable[str]
    ) -> list[Conversation]:
        ids = values.texts(conversation_ids, "conversationIds")
        if not ids:
            return []
        user_id = values.text(user_id, "userId")
        # By _id alone, membership checked here: an $in plus a second field is a
        # collection scan on SecantusDB; the _id index serves it on every server.
        cursor = self._conversations.find({"_id": {"$in": ids}})
        return [
            document_to_conversation(doc)
            async for doc in cursor
            if user_id in doc.get("memberIds", ())
        ]

    @storage_call
    async def add_member(self, conversation_id: str, user_id: str) -> Conversation | None:
        doc = await self._conversations.find_one_and_update(
            {"_id": values.text(conversation_id, "conversationId")},
            {"$addToSet": {"memberIds": values.text(user_id, "userId")}},
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else document_to_conversation(doc)

    @storage_call
    async def remove_member(self, conversation_id: str, user_id: str) -> Conversation | None:
        doc = await self._conversations.find_one_and_update(
            {"_id": values.text(conversation_id, "conversationId")},
            {"$pull": {"memberIds": values.text(user_id, "userId")}},
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else document_to_conversation(doc)

    @storage_call
    async def contact_ids(self, user_id: str) -> set[str]:
        user_id = values.text(user_id, "userId")
        members = await self._conversations.distinct("memberIds", {"memberIds": user_id})
        return {m for m in members if m != user_id}
