"""Conversations in MongoDB: members, the seq counter and the newest message.

One direct conversation per pair: the pair's key (:func:`documents.direct_key`) is
the ``_id`` of a document of the small ``directKeys`` collection, ``{_id: key,
conversationId}``, written with the conversation (in one transaction where the
server has them). Not a unique index on the conversations collection: every index
of the conversation document is rewritten on every send batch, and SecantusDB's
cost per index entry made that index about half of the conversation write
(bench/RESULTS.md, issue 14, fourth pass). The key document is the one place
that decides which conversation is the pair's:

1. read the key; if there is none, insert it naming this conversation (two
   creators racing: one insert wins, the other gets a duplicate key, or a
   write conflict in a transaction, and starts again from the read);
2. insert the conversation the key names, if it does not exist yet. Without
   transactions a creator can stop between 1 and 2: the next caller for the
   pair stores the conversation under the id the key names, so the pair is
   never left without one.

``find_direct`` is two reads by ``_id`` (the key, the conversation). A database
from before ``directKeys`` is moved at start-up
(:func:`adapters.mongo.index_migration.migrate_direct_keys`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs
from pymongo import DESCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from adapters.mongo import values
from adapters.mongo.documents import (
    CONVERSATIONS,
    DIRECT_KEYS,
    Document,
    as_utc,
    conversation_to_document,
    direct_key,
    document_to_conversation,
    is_member,
)
from adapters.mongo.errors import TimeBound, storage_call
from adapters.mongo.transactions import Transactions
from chatcore.errors import Conflict, ValidationFailed
from chatcore.models import Conversation, ConversationCursor, ConversationType
from chatcore.ports import ConversationRepository

# Most recent activity first, ties by id descending: the order of the index.
LIST_ORDER = [("lastActivityAt", DESCENDING), ("_id", DESCENDING)]
# Extra documents fetched with a page, for the ties skipped after a cursor.
_TIE_SLACK = 4
# Tries of a direct conversation's creation that lost a race on the pair's key.
_DIRECT_TRIES = 5


def _checked(conversation: Conversation) -> Conversation:
    values.text(conversation.id, "id")
    values.texts(conversation.member_ids, "memberIds")
    return conversation


class MongoConversationRepository(ConversationRepository, TimeBound):
    """Conversations in the ``conversations`` collection.

    ``lastActivityAt`` is always stored (the creation time until the first
    message), so one compound index serves every member's list.
    """

    def __init__(self, db: AsyncDatabase[Document], transactions: Transactions) -> None:
        self.bound_by(db)
        self._conversations = db[CONVERSATIONS]
        self._direct_keys = db[DIRECT_KEYS]
        self._transactions = transactions

    @storage_call
    async def create(self, conversation: Conversation) -> None:
        _checked(conversation)
        if conversation.type is ConversationType.DIRECT:
            # Stored with its pair's key, like get_or_create_direct's (a second one
            # for the pair is a Conflict).
            stored, created = await self._direct(conversation, take_over=False)
            if not created or stored.id != conversation.id:
                raise Conflict("conversation exists")
            return
        try:
            await self._conversations.insert_one(conversation_to_document(conversation))
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
        return await self._direct(conversation, take_over=True)

    async def _direct(
        self, conversation: Conversation, *, take_over: bool
    ) -> tuple[Conversation, bool]:
        """The pair's conversation and whether this call stored it (see the module's
        docstring). ``take_over``: store ``conversation`` under the id of a key whose
        conversation is missing (else that is a Conflict)."""
        key = direct_key(*conversation.member_ids)

        async def body(session: AsyncClientSession | None) -> tuple[Conversation, bool]:
            found = await self._direct_keys.find_one({"_id": key}, session=session)
            if found is None:
                # Plain inserts, not upserts: racing creators clash on the key's _id
                # (SecantusDB may answer a racing upsert's loser with None).
                await self._direct_keys.insert_one(
                    {"_id": key, "conversationId": conversation.id}, session=session
                )
                await self._conversations.insert_one(
                    conversation_to_document(conversation), session=session
                )
                return conversation, True
            existing = await self._conversations.find_one(
                {"_id": found["conversationId"]}, session=session
            )
            if existing is not None:
                # Ours if it has our id: an earlier attempt of this call whose commit
                # was applied but answered as failed (the transaction ran again).
                return document_to_conversation(existing), existing["_id"] == conversation.id
            if not take_over:
                raise Conflict("direct conversation changed concurrently")
            # Its creator stopped (or is) between its two inserts (no transactions):
            # whoever inserts the conversation under the key's id first has it.
            mine = attrs.evolve(conversation, id=found["conversationId"])
            await self._conversations.insert_one(conversation_to_document(mine), session=session)
            return mine, True

        for _ in range(_DIRECT_TRIES - 1):
            try:
                return await self._transactions.run(body)
            except DuplicateKeyError:
                continue  # lost the race for the key (or its conversation): read again
        try:
            return await self._transactions.run(body)
        except DuplicateKeyError as exc:  # pragma: no cover - a conversation id clash
            raise Conflict("conversation exists") from exc

    @storage_call
    async def find_direct(self, user_a: str, user_b: str) -> Conversation | None:
        key = direct_key(values.text(user_a, "userId"), values.text(user_b, "userId"))
        found = await self._direct_keys.find_one({"_id": key})
        if found is None:
            return None
        doc = await self._conversations.find_one({"_id": found["conversationId"]})
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
        return await self._change_members(
            conversation_id, {"$addToSet": {"memberIds": values.text(user_id, "userId")}}
        )

    @storage_call
    async def remove_member(self, conversation_id: str, user_id: str) -> Conversation | None:
        return await self._change_members(
            conversation_id, {"$pull": {"memberIds": values.text(user_id, "userId")}}
        )

    async def _change_members(self, conversation_id: str, change: Document) -> Conversation | None:
        """Apply ``change`` to the member list; the conversation as it is afterwards
        (None: no such conversation)."""
        key = {"_id": values.text(conversation_id, "conversationId")}
        # update_one and then a read, not find_one_and_update: SecantusDB runs every
        # findAndModify as a scan of the whole collection (bench/RESULTS.md, issue 14
        # third pass). $addToSet/$pull are atomic on the document, so racing changes
        # of the member list all hold; the read shows this change and any that came
        # after it (never a state without it, as conversations are never deleted).
        result = await self._conversations.update_one(key, change)
        if result.matched_count == 0:
            return None
        doc = await self._conversations.find_one(key)
        return None if doc is None else document_to_conversation(doc)

    @storage_call
    async def contact_ids(self, user_id: str) -> set[str]:
        user_id = values.text(user_id, "userId")
        members = await self._conversations.distinct("memberIds", {"memberIds": user_id})
        return {m for m in members if m != user_id}
