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
fails with its batch, and a batch gives up (Unavailable) at its oldest send's
arrival + that timeout, so queueing and writing together stay within about one
timeout.

One batch, in one transaction (:mod:`adapters.mongo.message_batches`):

1. ``find`` the batch's conversations by ``_id``. Each send is checked on its
   own against the document read: a missing conversation, or a sender who is
   not a member, is NotFound for that send only; the others go on. Each conversation's sends get the
   seqs after its ``lastSeq``, in arrival order.
2. write every conversation: ``lastSeq``, ``lastMessage`` and
   ``lastActivityAt`` move to the batch's last message. The conversation
   document is the seq counter: another process writing it after step 1's read
   makes this a write conflict, and the whole batch is retried from step 1; so
   in a transaction the documents read in step 1 are changed in Python and
   stored whole: a ``replace`` (one ``bulk_write``) of one or two, one
   ``delete`` + one ``insert`` of three or more (``REWRITE_FROM``; cheaper for
   SecantusDB, whose cost is per statement and per index entry, than update
   operators: bench/RESULTS.md, issue 14 fourth pass). Without a transaction it
   is one ``update`` per conversation, with a pipeline that changes nothing if
   ``lastSeq`` moved since the read (one each: a bulk write says only how many
   guards held, not which). The same write records each sender's last seqs, from which a
   conversation list counts unread messages (:mod:`adapters.mongo.unread_counters`).
3. ``insert`` (one ``insert_many``) of the messages.
4. ``commitTransaction``.

Thread replies and mentions (v1.1) add nothing to a batch without them. A
mention is kept only if it names a member of the conversation document read in
step 1. Replies add two commands before the commit: their roots' ``thread``
summaries (:mod:`adapters.mongo.threads`: a ``bulk_write`` and a ``find``), after
the insert, so a replay (caught by the insert) never counts. A reaction is one
conditional pipeline update of the message (:mod:`adapters.mongo.reactions`).

Four commands per batch in a transaction (five from three conversations: the
delete and the insert of step 2), whatever its size, with or without
clientMsgIds, a lone send included (it used to be three: one ``findAndModify`` instead of steps
1 and 2, but SecantusDB runs every ``findAndModify`` as a scan of the whole
collection, 44 ms with 5,000 conversations; see bench/RESULTS.md). No read
filters on ``{_id, memberIds}``: SecantusDB would need an index on both, and
every index of the conversation document is rewritten on every send.
Replays: two sends with the same clientMsgId in one batch are stored once, the
second answered with the first's message (``created`` False). A clientMsgId
already stored is caught by the unique index on its ``idem`` key (conversation,
sender and clientMsgId in one string: :func:`adapters.mongo.documents.index_fields`,
which also says why replies and mentions carry fields of their own) in step 3:
the transaction is aborted (so no seq is taken), the batch runs again without
those sends, and each of them is answered with the stored message
(``created`` False). Checking before step 1 would cost every batch one more
command to save a little on rare replays, and only the index is safe against
two identical sends racing from two processes. A failure anywhere (outage,
crash, timeout) aborts the transaction and fails every send of the batch with
Unavailable: there is never a seq without its message or the reverse.
A commit can also be applied and still answered as failed: the database dies
right after a durable commit, and pymongo's retry of the commit, on the restarted
server, is told the transaction is gone and may be run again. The batch's next
round then finds its own messages stored (a duplicate of a message's ``_id``, new
per send, or of its ``idem`` key with that same ``_id``): those sends are answered
with their stored message as new (``created`` True, delivered live; a reply with
its root's summary), never as a replay of themselves and never as an error.

Without transactions (a standalone mongod), the same steps run one by one:

- replays are looked up first (one ``find`` per send with a clientMsgId, plus
  one per replay found), which catches every replay except one racing the first
  send from another process; that one is still caught by the index in step 3,
  but the seq it took stays unused (a gap) and, if it was its conversation's
  last in the batch, ``lastMessage`` names a message that was not stored;
- the guard of step 2 is what keeps seqs unique across processes: a
  conversation whose ``lastSeq`` moved in between is not written (its sends
  go again, in the next round of the same batch); step 2 is one command per
  conversation, so a batch is three commands plus one per conversation;
- a failure or outage between steps 2 and 3 leaves gaps: ``lastSeq`` counts
  messages that do not exist and ``lastMessage`` names one. Seqs are still
  unique and increasing, but readers must tolerate missing seqs, and unread
  counts (which come from ``lastSeq``) count the missing ones;
- a failure between a batch's insert and its replies' summary update leaves the
  replies stored and their roots' ``replyCount`` short by them.

Use a replica set (a single node one is enough) for the full guarantee.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo import values
from adapters.mongo.documents import (
    CONVERSATIONS,
    MENTIONED_AT,
    MESSAGES,
    SEARCH_KEYS,
    Document,
    document_to_message,
    mentioned_at,
    search_keys,
    without_search_keys,
)
from adapters.mongo.errors import TimeBound, storage_call
from adapters.mongo.group_commit import GroupCommit
from adapters.mongo.locks import KeyedLocks
from adapters.mongo.mention_counters import (
    MENTION_FIELDS,
    forget_mentions,
    mentions_from_counters,
)
from adapters.mongo.message_batches import MessageBatches
from adapters.mongo.reactions import react_pipeline
from adapters.mongo.server import ServerInfo
from adapters.mongo.threads import find_replies
from adapters.mongo.transactions import Transactions, after_uncertain_commit
from adapters.mongo.unread_counters import COUNTER_FIELDS, unread_from_counters
from chatcore.errors import Conflict, NotFound, Unavailable
from chatcore.models import AppendResult, Message, NewMessage
from chatcore.ports import MessageRepository
from chatcore.reactions import toggled_reaction

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
    values.optional_text(new.thread_id, "threadId")
    if new.mentions:
        values.texts(new.mentions, "mentions")
    return new


def _windows(after_seq: Mapping[str, int]) -> dict[str, int]:
    """``{conversationId: seq}`` with both checked (they go into filters)."""
    return {
        values.text(conversation_id, "conversationId"): values.integer(seq, "seq")
        for conversation_id, seq in after_seq.items()
    }


def _conversation(new: NewMessage) -> str:
    return new.conversation_id


def _from_records(
    found: dict[str, Document],
    windows: dict[str, int],
    from_record: Callable[[Document, int], int | None],
) -> tuple[dict[str, int], dict[str, int]]:
    """Counts read off the conversation records (non-zero only), and the windows
    the records cannot tell about (left to count on an index)."""
    counted: dict[str, int] = {}
    uncounted: dict[str, int] = {}
    for cid, after in windows.items():
        if cid not in found:
            continue  # no conversation, no messages
        n = from_record(found[cid], after)
        if n is None:
            uncounted[cid] = after
        elif n:
            counted[cid] = n
    return counted, uncounted


class MongoMessageRepository(MessageRepository, TimeBound):
    """Messages in the ``messages`` collection; seqs are counted on the conversation."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        server: ServerInfo,
        *,
        transactions: Transactions | None = None,
        max_batch: int = MAX_BATCH,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.bound_by(db)
        self._messages = db[MESSAGES]
        self._conversations = db[CONVERSATIONS]
        self._server = server
        # mongo_storage shares one with the conversations (one session reaper).
        self._transactions = transactions or Transactions(server)
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
        # Sorted here, not by the server: the window is bounded (no limit needs the
        # order) and seqs are unique in a conversation, so the result is the same,
        # and SecantusDB spends 9-24 % less CPU on a page without its sort
        # (bench/RESULTS.md, issue 14, fourth pass).
        cursor = self._messages.find(
            {"conversationId": conversation_id, "seq": {"$gte": first, "$lte": last}}
        )
        found = [document_to_message(doc) async for doc in cursor]
        found.sort(key=lambda m: m.seq)
        return found

    @storage_call
    async def edit(
        self, message: Message, body: str, at: datetime, mentions: Sequence[str] = ()
    ) -> Message:
        mentioned = values.texts(mentions, "mentions")
        changes = {
            "body": values.text(body, "body"),
            "editedAt": values.moment(at, "editedAt"),
            "mentions": mentioned,
            # Where the (mentions, mentionedAt) index finds it (documents.index_fields).
            MENTIONED_AT: mentioned_at(message.conversation_id, message.seq),
            SEARCH_KEYS: search_keys(body, deleted=False),
        }
        return await self._change(
            message, changes, set(message.mentions) ^ set(mentioned), live_only=True
        )

    @storage_call
    async def delete(self, message: Message, at: datetime) -> Message:
        # Reactions and mentions go with the body (a deleted message notifies nobody).
        changes = {
            "body": "",
            "deletedAt": values.moment(at, "at"),
            "reactions": [],
            "mentions": [],
            SEARCH_KEYS: [],
        }
        return await self._change(message, changes, set(message.mentions))

    @storage_call
    async def react(
        self, conversation_id: str, message_id: str, user_id: str, emoji: str, *, add: bool
    ) -> tuple[Message, bool]:
        conversation_id = values.text(conversation_id, "conversationId")
        message_id = values.text(message_id, "messageId")
        pipeline = react_pipeline(
            conversation_id, values.text(user_id, "userId"), values.text(emoji, "emoji"), add=add
        )

        async def body(session: AsyncClientSession | None) -> tuple[Message, bool]:
            # update_one and then a read, not find_one_and_update: SecantusDB runs
            # every findAndModify as a scan of the whole collection (bench/RESULTS.md,
            # issue 14 third pass). The pipeline alone decides, atomically on the
            # document, whether anything changes (adapters.mongo.reactions), and
            # modified_count says whether it did.
            key = {"_id": message_id}
            result = await self._messages.update_one(key, pipeline, session=session)
            if result.matched_count == 0:
                raise NotFound("message not found")
            # In a transaction this reads the state the update left; without one, that
            # state or a later one.
            doc = await self._messages.find_one(key, session=session)
            if doc is None or doc["conversationId"] != conversation_id:
                raise NotFound("message not found")
            message = document_to_message(doc)
            if result.modified_count > 0:
                await self._keep_last_message(conversation_id, doc, session)
                return message, True
            if message.is_deleted:
                raise Conflict("a deleted message takes no reactions")
            # Unchanged: already so, or the emoji cap refused it (the rule's
            # Conflict, raised by toggled_reaction on the state read). Already so
            # after an attempt whose commit was answered as failed is most likely that
            # attempt's change, so this call's: its members hear of it (its write,
            # lastMessage included, is committed; a repeat of another's is harmless).
            toggled_reaction(message.reactions, user_id, emoji, add=add)
            return message, after_uncertain_commit()

        async with self._conversation_locks.hold(conversation_id):
            return await self._transactions.run(body)

    @storage_call
    async def thread_replies(
        self,
        conversation_id: str,
        root_id: str,
        *,
        before: int | None,
        after: int | None,
        limit: int,
    ) -> list[Message]:
        return await find_replies(
            self._messages,
            values.text(conversation_id, "conversationId"),
            values.text(root_id, "threadId"),
            before=None if before is None else values.integer(before, "before"),
            after=None if after is None else values.integer(after, "after"),
            limit=values.integer(limit, "limit"),
        )

    async def _change(
        self,
        message: Message,
        changes: dict[str, Any],
        rementioned: set[str],
        *,
        live_only: bool = False,
    ) -> Message:
        """Update a message and, if it is the newest, the conversation's copy with it;
        ``rementioned``: users whose mention by this message changes (their records on
        the conversation are marked unknown, see :mod:`adapters.mongo.mention_counters`).
        ``live_only`` (an edit): a deleted message is left as it is, Conflict."""
        message_id = values.text(message.id, "messageId")
        conversation_id = values.text(message.conversation_id, "conversationId")

        async def body(session: AsyncClientSession | None) -> Message:
            # Filtered on _id alone (a scan on SecantusDB with a second field), so
            # the conversation is checked inside the update: no match, no change.
            # update_one and then a read, not find_one_and_update: SecantusDB runs
            # every findAndModify as a scan of the whole collection (bench/RESULTS.md,
            # issue 14 third pass). In a transaction the read sees exactly this
            # change; without one, this change or a later one (the newest state is
            # also the right lastMessage copy).
            same_conversation: Document = {"$eq": ["$conversationId", conversation_id]}
            if live_only:
                # The service checked the message it read, but a delete (from any
                # process) may have landed since: an edit must not write a body
                # back into a deleted message. Decided here, atomically on the document.
                live = {"$eq": [{"$ifNull": ["$deletedAt", None]}, None]}
                same_conversation = {"$and": [same_conversation, live]}
            key = {"_id": message_id}
            result = await self._messages.update_one(
                key,
                [
                    {
                        "$set": {
                            field: {"$cond": [same_conversation, {"$literal": value}, f"${field}"]}
                            for field, value in changes.items()
                        }
                    }
                ],
                session=session,
            )
            if result.matched_count == 0:
                raise NotFound("message not found")
            doc = await self._messages.find_one(key, session=session)
            if doc is None or doc["conversationId"] != conversation_id:
                raise NotFound("message not found")
            if live_only and doc.get("deletedAt") is not None:
                raise Conflict("a deleted message cannot be edited")
            also = forget_mentions(sorted(rementioned)) if rementioned else {}
            await self._keep_last_message(conversation_id, doc, session, also)
            return document_to_message(doc)

        # Edits of one conversation queue here rather than conflict on its document
        # (a send batch that writes it at the same time is a retried write conflict).
        async with self._conversation_locks.hold(conversation_id):
            return await self._transactions.run(body)

    async def _keep_last_message(
        self,
        conversation_id: str,
        doc: Document,
        session: AsyncClientSession | None,
        also: Document | None = None,
    ) -> None:
        """Put the changed message ``doc`` in the conversation's lastMessage copy (and
        set the ``also`` expressions in the same write)."""
        # Only while it is still the newest: a send that came in between
        # already replaced lastMessage and must not be overwritten.
        newest = {"$eq": ["$lastSeq", doc["seq"]]}
        copy = {"$literal": without_search_keys(doc)}  # the copy is never searched
        last = {"lastMessage": {"$cond": [newest, copy, "$lastMessage"]}}
        await self._conversations.update_one(
            {"_id": conversation_id}, [{"$set": last | (also or {})}], session=session
        )

    @storage_call
    async def count_unread(self, user_id: str, after_seq: Mapping[str, int]) -> dict[str, int]:
        user_id, windows = values.text(user_id, "userId"), _windows(after_seq)
        if not windows:
            return {}
        return await self._unread(user_id, windows, await self._read_counters(windows))

    @storage_call
    async def count_unread_and_mentions(
        self, user_id: str, after_seq: Mapping[str, int]
    ) -> tuple[dict[str, int], dict[str, int]]:
        user_id, windows = values.text(user_id, "userId"), _windows(after_seq)
        if not windows:
            return {}, {}
        # One find reads both records; what they cannot tell is counted on indexes.
        found = await self._read_counters(windows)
        unread = await self._unread(user_id, windows, found)
        # Only where something is unread (a mention is a message from another).
        behind = {cid: windows[cid] for cid in unread}
        counted, uncounted = _from_records(
            found, behind, lambda doc, after: mentions_from_counters(doc, user_id, after)
        )
        if not uncounted:
            return unread, counted
        # Ranges of the (mentions, mentionedAt.c, mentionedAt.s) index: only the messages
        # that mention the viewer are read, never the conversation's other messages.
        return unread, counted | await self._count_windows(
            uncounted,
            lambda cid, seq: {
                "mentions": user_id,
                f"{MENTIONED_AT}.c": cid,
                f"{MENTIONED_AT}.s": {"$gt": seq},
            },
            common={},
            counted=1,
        )

    async def _read_counters(self, windows: dict[str, int]) -> dict[str, Document]:
        """The conversations' unread and mention records (one find by ``_id``)."""
        cursor = self._conversations.find(
            {"_id": {"$in": list(windows)}}, COUNTER_FIELDS | MENTION_FIELDS
        )
        return {doc["_id"]: doc async for doc in cursor}

    async def _unread(
        self, user_id: str, windows: dict[str, int], found: dict[str, Document]
    ) -> dict[str, int]:
        counted, uncounted = _from_records(
            found, windows, lambda doc, after: unread_from_counters(doc, user_id, after)
        )
        if not uncounted:
            return counted
        # Messages from others: in the $match where the planner copes with it
        # (mongod), else counted conditionally so the filter stays in the index.
        return counted | await self._count_windows(
            uncounted,
            lambda cid, seq: {"conversationId": cid, "seq": {"$gt": seq}},
            common={"senderId": {"$ne": user_id}},
            # $literal: an id such as "$x" is not a field path.
            counted={"$cond": [{"$ne": ["$senderId", {"$literal": user_id}]}, 1, 0]},
        )

    async def _count_windows(
        self,
        windows: dict[str, int],
        window: Callable[[str, int], Document],
        *,
        common: Document,
        counted: Any,
    ) -> dict[str, int]:
        """Per conversation, how many messages match ``window(cid, seq)`` and ``common``
        (``counted`` is the same condition as ``common`` as a 0/1 expression)."""
        if not windows:
            return {}
        if (await self._server.profile()).indexed_or:
            # One aggregate for every conversation of a list page: mongod answers
            # the $or with one index range per conversation.
            cursor = await self._messages.aggregate(
                [
                    {"$match": {"$or": [window(c, s) for c, s in windows.items()], **common}},
                    {"$group": {"_id": "$conversationId", "n": {"$sum": 1}}},
                ]
            )
            return {doc["_id"]: doc["n"] async for doc in cursor}
        # SecantusDB scans the whole collection for an $or (or an $in, or a $ne),
        # so there one index range per conversation, run concurrently, is far
        # faster than the single aggregate (measured: bench/mongo_store.py).
        limit = asyncio.Semaphore(_COUNT_CONCURRENCY)

        async def count(conversation_id: str, after: int) -> tuple[str, int]:
            async with limit:
                cursor = await self._messages.aggregate(
                    [
                        {"$match": window(conversation_id, after)},
                        {"$group": {"_id": None, "n": {"$sum": counted}}},
                    ]
                )
                found = [doc async for doc in cursor]
            return conversation_id, found[0]["n"] if found else 0

        counts = await asyncio.gather(*(count(cid, seq) for cid, seq in windows.items()))
        return {cid: n for cid, n in counts if n}
