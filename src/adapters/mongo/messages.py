"""Messages in MongoDB: gapless per-conversation seqs, idempotent sends, group commit.

How sends are stored (:meth:`MongoMessageRepository.append`): group commit. Sends
that arrive while batches are being written (from HTTP and Socket.IO alike, to
any conversation) wait and go together in the next batch, up to ``MAX_BATCH``
sends (:mod:`adapters.mongo.group_commit`). There is no timer: a lone send is
written at once; batches form only under concurrency. Up to ``MAX_IN_FLIGHT``
batches are written at once, never two with the same conversation, so a
conversation's sends get their seqs in the order they reached this process.
The database's cost is mostly per command, not per document, so a batch costs
about what one send used to. A send that waited in the queue longer than the
client's timeout (``CHATCORE_MONGODB_TIMEOUT_MS``: the batches before it are
stalling) is answered Unavailable without being written, and one whose caller
gave up while it was queued is dropped; once in a batch, a send is written or
fails with its batch.

One batch, in one transaction (:mod:`adapters.mongo.message_batches`):

1. ``find`` the batch's conversations by ``_id``. Each send is checked on its
   own: a missing conversation, or a sender who is not a member, is NotFound
   for that send only; the others go on. Each conversation's sends get the
   seqs after its ``lastSeq``, in arrival order.
2. ``update`` (one ``bulk_write``) of every conversation: ``lastSeq``,
   ``lastMessage`` and ``lastActivityAt`` move to the batch's last message,
   guarded by the ``lastSeq`` read in step 1 (inside the pipeline: no change if
   it moved). The conversation document is the seq counter: another process
   writing it in between makes this a write conflict, and the whole batch is
   retried from step 1. The same update records each sender's last seqs, from
   which a conversation list counts unread messages
   (:mod:`adapters.mongo.unread_counters`).
3. ``insert`` (one ``insert_many``) of the messages.
4. ``commitTransaction``.

Four commands per batch, whatever its size, with or without clientMsgIds. A
batch whose sends all come from one sender to one conversation (a lone send
above all) takes steps 1 and 2 in one ``findAndModify`` filtered on
``{_id, memberIds: sender}``, which increments ``lastSeq`` by the number of
sends: three commands, what a send always cost.
Replays: two sends with the same clientMsgId in one batch are stored once, the
second answered with the first's message (``created`` False). A clientMsgId
already stored is caught by the unique (conversationId, senderId, clientMsgId)
index in step 3: the transaction is aborted (so no seq is taken), the batch runs
again without those sends, and each of them is answered with the stored message
(``created`` False). Checking before step 1 would cost every batch one more
command to save a little on rare replays, and only the index is safe against
two identical sends racing from two processes. A failure anywhere (outage,
crash, timeout) aborts the transaction and fails every send of the batch with
Unavailable: there is never a seq without its message or the reverse.

Without transactions (a standalone mongod), the same steps run one by one:

- replays are looked up first (one ``find`` per send with a clientMsgId, plus
  one per replay found), which catches every replay except one racing the first
  send from another process; that one is still caught by the index in step 3,
  but the seq it took stays unused (a gap) and, if it was its conversation's
  last in the batch, ``lastMessage`` names a message that was not stored;
- the guard of step 2 is what keeps seqs unique across processes: a
  conversation whose ``lastSeq`` moved in between is not written (its sends
  go again, in the next round of the same batch);
- a failure or outage between steps 2 and 3 leaves gaps: ``lastSeq`` counts
  messages that do not exist and ``lastMessage`` names one. Seqs are still
  unique and increasing, but readers must tolerate missing seqs, and unread
  counts (which come from ``lastSeq``) count the missing ones.

Use a replica set (a single node one is enough) for the full guarantee.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo import values
from adapters.mongo.documents import (
    CONVERSATIONS,
    MESSAGES,
    SEARCH_KEYS,
    Document,
    document_to_message,
    search_keys,
    without_search_keys,
)
from adapters.mongo.errors import storage_call
from adapters.mongo.group_commit import GroupCommit
from adapters.mongo.locks import KeyedLocks
from adapters.mongo.message_batches import MessageBatches
from adapters.mongo.server import ServerInfo
from adapters.mongo.transactions import Transactions
from adapters.mongo.unread_counters import COUNTER_FIELDS, unread_from_counters
from chatcore.errors import NotFound, Unavailable
from chatcore.models import AppendResult, Message, NewMessage
from chatcore.ports import MessageRepository

# Concurrent per-conversation counts on servers that need them (a list page has
# at most 100 conversations; this keeps the connection pool for everyone else).
_COUNT_CONCURRENCY = 16
# Sends per batch at most: bounds one transaction's size and time (a batch of 100
# 4 KiB bodies is well under a command's 16 MiB) and one request's wait.
MAX_BATCH = 100
# Batches written at once (never two with the same conversation): a second one
# keeps the database busy while the first waits on round trips and its commit.
MAX_IN_FLIGHT = 2


def _checked(new: NewMessage) -> NewMessage:
    values.text(new.id, "id")
    values.text(new.conversation_id, "conversationId")
    values.text(new.sender_id, "senderId")
    values.text(new.body, "body")
    values.optional_text(new.client_msg_id, "clientMsgId")
    values.moment(new.created_at, "createdAt")
    return new


def _conversation(new: NewMessage) -> str:
    return new.conversation_id


class MongoMessageRepository(MessageRepository):
    """Messages in the ``messages`` collection; seqs are counted on the conversation."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        server: ServerInfo,
        *,
        max_batch: int = MAX_BATCH,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._messages = db[MESSAGES]
        self._conversations = db[CONVERSATIONS]
        self._server = server
        self._transactions = Transactions(server)
        self._conversation_locks = KeyedLocks()
        batches = MessageBatches(self._messages, self._conversations, self._transactions)
        self._sends: GroupCommit[NewMessage, AppendResult] = GroupCommit(
            batches.write,
            key=_conversation,
            max_batch=max_batch,
            max_in_flight=max_in_flight,
            # A send queued behind batches that took longer than the client's own
            # timeout (CHATCORE_MONGODB_TIMEOUT_MS) is answered without being written.
            max_wait=db.client.options.server_selection_timeout,
            expired=lambda: Unavailable("storage did not answer in time"),
        )

    @storage_call
    async def append(self, new: NewMessage) -> AppendResult:
        # Invalid input fails here, alone, before it could join a batch.
        return await self._sends.submit(_checked(new))

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

        # Edits of one conversation queue here rather than conflict on its document
        # (a send batch that writes it at the same time is a retried write conflict).
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
        counted, uncounted = await self._count_from_counters(user_id, windows)
        if not uncounted:
            return counted
        if (await self._server.profile()).indexed_or:
            return counted | await self._count_unread_at_once(user_id, uncounted)
        return counted | await self._count_unread_each(user_id, uncounted)

    async def _count_from_counters(
        self, user_id: str, windows: dict[str, int]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Counts read off the conversations (one find by ``_id``, see
        :mod:`adapters.mongo.unread_counters`), and the windows left to count."""
        cursor = self._conversations.find({"_id": {"$in": list(windows)}}, COUNTER_FIELDS)
        found = {doc["_id"]: doc async for doc in cursor}
        counted: dict[str, int] = {}
        uncounted: dict[str, int] = {}
        for cid, after in windows.items():
            if cid not in found:
                continue  # no conversation, no messages
            unread = unread_from_counters(found[cid], user_id, after)
            if unread is None:
                uncounted[cid] = after
            elif unread:
                counted[cid] = unread
        return counted, uncounted

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
