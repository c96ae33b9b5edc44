"""Messages in MongoDB: gapless per-conversation seqs and idempotent sends.

How a send is stored (:meth:`MongoMessageRepository.append`), in one transaction:

1. ``findAndModify`` on the conversation, filtered on ``{_id, memberIds: sender}``
   (so a non-member or a missing conversation matches nothing: NotFound), with an
   update pipeline that increments ``lastSeq`` and sets ``lastMessage`` and
   ``lastActivityAt`` in the same write. The conversation document is the seq
   counter: concurrent sends serialise on it (a write conflict is retried).
2. ``insert`` the message with that seq.
3. ``commitTransaction``.

Three round trips, with or without a clientMsgId. Sends to one conversation
from one process queue on a local lock first: on the server they could not
overlap anyway (the conversation document is held until commit), and letting
them race only turns into write conflicts and retries. Sends from other
processes still conflict now and then; those are retried. An idempotent replay is caught
by the unique (conversationId, senderId, clientMsgId) index on step 2: the
transaction is aborted, so the seq taken in step 1 is given back, and the first
message is read and returned (``created`` False). Checking for a replay before
step 1 would cost every send with a clientMsgId one more round trip to save a
little on the rare replay; the index check is also the only one that is safe
against two identical sends racing. A failure anywhere (outage, crash) aborts
the transaction: there is never a seq without its message or the reverse.

Without transactions (a standalone mongod), the same steps run one by one:

- a replay is looked up first (by clientMsgId, under the same per-conversation
  lock), which catches every replay except one racing the first send from
  another process;
- that racing replay is still caught by the index on insert; the seq it took is
  given back when no other send took the next one in between, otherwise it
  remains a gap;
- a failure or outage between steps 1 and 2 leaves a gap: ``lastSeq`` counts a
  message that does not exist and ``lastMessage`` names it. Seqs are still
  unique and increasing, but readers must tolerate missing seqs.

Use a replica set (a single node one is enough) for the full guarantee.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from adapters.mongo import values
from adapters.mongo.documents import (
    CONVERSATIONS,
    MESSAGES,
    SEARCH_KEYS,
    Document,
    document_to_conversation,
    document_to_message,
    message_to_document,
    new_message,
    search_keys,
    without_search_keys,
)
from adapters.mongo.errors import duplicate_key_fields, storage_call
from adapters.mongo.locks import KeyedLocks
from adapters.mongo.server import ServerInfo
from adapters.mongo.transactions import Transactions
from chatcore.errors import Conflict, NotFound
from chatcore.models import AppendResult, Conversation, Message, NewMessage
from chatcore.ports import MessageRepository

# Concurrent per-conversation counts on servers that need them (a list page has
# at most 100 conversations; this keeps the connection pool for everyone else).
_COUNT_CONCURRENCY = 16


class _Replay(Exception):
    """Raised inside the send when the clientMsgId index reports a replay."""


def _checked(new: NewMessage) -> NewMessage:
    values.text(new.id, "id")
    values.text(new.conversation_id, "conversationId")
    values.text(new.sender_id, "senderId")
    values.text(new.body, "body")
    values.optional_text(new.client_msg_id, "clientMsgId")
    values.moment(new.created_at, "createdAt")
    return new


def _allocate_pipeline(new: NewMessage) -> list[dict[str, Any]]:
    """Increment lastSeq and make the new message the conversation's lastMessage.

    Every client value is wrapped in ``$literal``: in a pipeline, a string such as
    a body ``"$lastSeq"`` would otherwise be read as a field path.
    """
    next_seq = {"$add": ["$lastSeq", 1]}
    preview = without_search_keys(message_to_document(new_message(new, 0)))
    del preview["seq"]
    return [
        {
            "$set": {
                "lastSeq": next_seq,
                "lastActivityAt": {"$literal": new.created_at},
                "lastMessage": {"$mergeObjects": [{"$literal": preview}, {"seq": next_seq}]},
            }
        }
    ]


class MongoMessageRepository(MessageRepository):
    """Messages in the ``messages`` collection; seqs are counted on the conversation."""

    def __init__(self, db: AsyncDatabase[Document], server: ServerInfo) -> None:
        self._messages = db[MESSAGES]
        self._conversations = db[CONVERSATIONS]
        self._server = server
        self._transactions = Transactions(server)
        self._conversation_locks = KeyedLocks()

    @storage_call
    async def append(self, new: NewMessage) -> AppendResult:
        _checked(new)
        transactional = await self._transactions.enabled()
        try:
            async with self._conversation_locks.hold(new.conversation_id):
                if new.client_msg_id is not None and not transactional:
                    # Without a transaction a replay must be caught before it takes
                    # a seq (under the lock, so this process's duplicates can't race).
                    replay = await self._find_replay(new)
                    if replay is not None:
                        return replay
                message, conversation = await self._transactions.run(
                    lambda session: self._allocate_and_insert(new, session)
                )
        except _Replay:
            replay = await self._find_replay(new)
            if replay is None:  # pragma: no cover - messages are never removed
                raise Conflict("message changed concurrently") from None
            return replay
        return AppendResult(message=message, conversation=conversation, created=True)

    async def _allocate_and_insert(
        self, new: NewMessage, session: AsyncClientSession | None
    ) -> tuple[Message, Conversation]:
        before = await self._conversations.find_one_and_update(
            {"_id": new.conversation_id, "memberIds": new.sender_id},
            _allocate_pipeline(new),
            return_document=ReturnDocument.BEFORE,
            session=session,
        )
        if before is None:
            raise NotFound("conversation not found")
        message = new_message(new, before.get("lastSeq", 0) + 1)
        try:
            await self._messages.insert_one(message_to_document(message), session=session)
        except DuplicateKeyError as exc:
            if "clientMsgId" not in duplicate_key_fields(exc):
                raise
            if session is None:
                await self._give_back_seq(before, message.seq)
            raise _Replay from exc
        conversation = attrs.evolve(
            document_to_conversation(before),
            last_seq=message.seq,
            last_message=message,
            last_activity_at=message.created_at,
        )
        return message, conversation

    async def _give_back_seq(self, before: Document, seq: int) -> None:
        """Without a transaction: undo a seq allocation if nobody allocated after it."""
        still_ours = {"$eq": ["$lastSeq", seq]}

        def restore(field: str, value: object) -> dict[str, Any]:
            return {"$cond": [still_ours, {"$literal": value}, f"${field}"]}

        # Filtered on _id only and conditional inside the pipeline: one indexed
        # write on any server (SecantusDB scans for {_id, lastSeq}).
        await self._conversations.update_one(
            {"_id": before["_id"]},
            [
                {
                    "$set": {
                        "lastSeq": restore("lastSeq", seq - 1),
                        "lastMessage": restore("lastMessage", before.get("lastMessage")),
                        "lastActivityAt": restore(
                            "lastActivityAt", before.get("lastActivityAt", before["createdAt"])
                        ),
                    }
                }
            ],
        )

    async def _find_replay(self, new: NewMessage) -> AppendResult | None:
        """The message stored earlier under ``new``'s clientMsgId, with the conversation
        (NotFound if the sender is no longer a member); None if there is none."""
        message_doc = await self._messages.find_one(
            {
                "conversationId": new.conversation_id,
                "senderId": new.sender_id,
                "clientMsgId": new.client_msg_id,
            }
        )
        if message_doc is None:
            return None
        conversation_doc = await self._conversations.find_one(
            {"_id": new.conversation_id, "memberIds": new.sender_id}
        )
        if conversation_doc is None:
            raise NotFound("conversation not found")
        return AppendResult(
            message=document_to_message(message_doc),
            conversation=document_to_conversation(conversation_doc),
            created=False,
        )

    @storage_call
    async def get(self, conversation_id: str, message_id: str) -> Message | None:
        conversation_id = values.text(conversation_id, "conversationId")
        # By _id alone (an index on every server), the conversation checked here.
        doc = await self._messages.find_one({"_id": values.text(message_id, "messageId")})
        if doc is None or doc.get("conversationId") != conversation_id:
            return None
        return document_to_message(doc)

    @storage_call
    async def range(self, conversation_id: str, first_seq: int, last_seq: int) -> list[Message]:
        conversation_id = values.text(conversation_id, "conversationId")
        first = max(values.integer(first_seq, "firstSeq"), 1)
        last = values.integer(last_seq, "lastSeq")
        if last < first:
            return []
        # A range on the (conversationId, seq) index: gapless seqs make every
        # history window one, never a sort + limit over the whole conversation.
        cursor = self._messages.find(
            {"conversationId": conversation_id, "seq": {"$gte": first, "$lte": last}}
        ).sort("seq", ASCENDING)
        return [document_to_message(doc) async for doc in cursor]

    @storage_call
    async def edit(self, message: Message, body: str, at: datetime) -> Message:
        changes = {
            "body": values.text(body, "body"),
            "editedAt": values.moment(at, "editedAt"),
            SEARCH_KEYS: search_keys(body, deleted=False),
        }
        return await self._change(message, changes)

    @storage_call
    async def delete(self, message: Message, at: datetime) -> Message:
        changes = {"body": "", "deletedAt": values.moment(at, "at"), SEARCH_KEYS: []}
        return await self._change(message, changes)

    async def _change(self, message: Message, changes: dict[str, Any]) -> Message:
        """Update a message and, if it is the newest, the conversation's copy with it."""
        message_id = values.text(message.id, "messageId")
        conversation_id = values.text(message.conversation_id, "conversationId")

        async def body(session: AsyncClientSession | None) -> Message:
            # Filtered on _id alone (a scan on SecantusDB with a second field), so
            # the conversation is checked inside the update: no match, no change.
            same_conversation = {"$eq": ["$conversationId", conversation_id]}
            doc = await self._messages.find_one_and_update(
                {"_id": message_id},
                [
                    {
                        "$set": {
                            field: {"$cond": [same_conversation, {"$literal": value}, f"${field}"]}
                            for field, value in changes.items()
                        }
                    }
                ],
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if doc is None or doc["conversationId"] != conversation_id:
                raise NotFound("message not found")
            # Only while it is still the newest: a send that came in between
            # already replaced lastMessage and must not be overwritten.
            newest = {"$eq": ["$lastSeq", doc["seq"]]}
            copy = {"$literal": without_search_keys(doc)}
            await self._conversations.update_one(
                {"_id": conversation_id},
                [{"$set": {"lastMessage": {"$cond": [newest, copy, "$lastMessage"]}}}],
                session=session,
            )
            return document_to_message(doc)

        # The same lock as sends: both write the conversation document.
        async with self._conversation_locks.hold(conversation_id):
            return await self._transactions.run(body)

    @storage_call
    async def count_unread(self, user_id: str, after_seq: Mapping[str, int]) -> dict[str, int]:
        user_id = values.text(user_id, "userId")
        windows = {
            values.text(conversation_id, "conversationId"): values.integer(seq, "seq")
            for conversation_id, seq in after_seq.items()
        }
        if not windows:
            return {}
        if (await self._server.profile()).indexed_or:
            return await self._count_unread_at_once(user_id, windows)
        return await self._count_unread_each(user_id, windows)

    async def _count_unread_at_once(self, user_id: str, windows: dict[str, int]) -> dict[str, int]:
        # One aggregate for every conversation of a list page: mongod answers the
        # $or with one index range per conversation.
        cursor = await self._messages.aggregate(
            [
                {
                    "$match": {
                        "$or": [
                            {"conversationId": cid, "seq": {"$gt": seq}}
                            for cid, seq in windows.items()
                        ],
                        "senderId": {"$ne": user_id},
                    }
                },
                {"$group": {"_id": "$conversationId", "n": {"$sum": 1}}},
            ]
        )
        return {doc["_id"]: doc["n"] async for doc in cursor}

    async def _count_unread_each(self, user_id: str, windows: dict[str, int]) -> dict[str, int]:
        # SecantusDB scans the whole collection for an $or (or an $in, or a $ne),
        # so there one index range per conversation, run concurrently, is far
        # faster than the single aggregate (measured: bench/mongo_store.py).
        limit = asyncio.Semaphore(_COUNT_CONCURRENCY)

        async def count(conversation_id: str, after: int) -> tuple[str, int]:
            async with limit:
                cursor = await self._messages.aggregate(
                    [
                        {"$match": {"conversationId": conversation_id, "seq": {"$gt": after}}},
                        {
                            "$group": {
                                "_id": None,
                                "n": {"$sum": {"$cond": [{"$ne": ["$senderId", user_id]}, 1, 0]}},
                            }
                        },
                    ]
                )
                found = [doc async for doc in cursor]
            return conversation_id, found[0]["n"] if found else 0

        counts = await asyncio.gather(*(count(cid, seq) for cid, seq in windows.items()))
        return {cid: n for cid, n in counts if n}
