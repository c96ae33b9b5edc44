"""Storing a batch of sends with a constant number of commands (see :mod:`adapters.mongo.messages`
for the algorithm and its guarantees)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import attrs
from pymongo import ReplaceOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from adapters.mongo.documents import (
    IDEMPOTENCY_KEY,
    Document,
    document_to_conversation,
    document_to_message,
    idempotency_key,
    is_member,
    message_to_document,
    new_message,
    stored_message_document,
    without_search_keys,
)
from adapters.mongo.errors import DUPLICATE_KEY
from adapters.mongo.mention_counters import mention_updates, recorded_mentions
from adapters.mongo.threads import record_replies
from adapters.mongo.transactions import Transactions
from adapters.mongo.unread_counters import counter_updates, recorded_counters
from chatcore.errors import Conflict, NotFound, Unavailable
from chatcore.models import AppendResult, Message, NewMessage

Outcome = AppendResult | Exception
# From this many conversations in one batch, they are rewritten by one delete + one
# insert instead of a replace each (MessageBatches._rewrite).
REWRITE_FROM = 3
_ReplayKey = tuple[str, str, str]  # (conversationId, senderId, clientMsgId)
# conversationId -> (position in the batch, message with its seq), in seq order
_Taken = dict[str, list[tuple[int, Message]]]


class _Replays(Exception):
    """Inside a transaction: these sends (positions in the round) are replays; the
    transaction is aborted and the round runs again without them."""

    def __init__(self, positions: set[int]) -> None:
        super().__init__(f"{len(positions)} replays")
        self.positions = positions


@attrs.frozen
class _Round:
    """What one round stored, and which sends must go again or be looked up as replays."""

    stored: dict[int, Outcome]
    lost: list[int]  # their conversation moved under them (another process): next round
    replays: set[int]  # their clientMsgId is already stored (without a transaction)


def _is_stored_already(error: Document) -> bool:
    """Whether an insert's write error says its message is stored already: a
    duplicate on the idempotency index (or, while a database from before it is being
    migrated, the old clientMsgId index), i.e. an idempotent replay, or on ``_id``,
    which only this send's own earlier attempt can have written (ids are new per
    send): a commit that was applied but answered as failed (the database died
    right after it), after which the transaction was run again."""
    fields = error.get("keyPattern") or {}
    return error.get("code") == DUPLICATE_KEY and (
        "_id" in fields or IDEMPOTENCY_KEY in fields or "clientMsgId" in fields
    )


def _replay_key(new: NewMessage) -> _ReplayKey | None:
    if new.client_msg_id is None:
        return None
    return (new.conversation_id, new.sender_id, new.client_msg_id)


def _stored_message(new: NewMessage, seq: int, conversation: Document) -> Message:
    """``new`` with ``seq``, mentioning only members of ``conversation`` (as read)."""
    message = new_message(new, seq)
    if not new.mentions:
        return message
    members = set(conversation.get("memberIds", ()))
    return attrs.evolve(message, mentions=tuple(m for m in new.mentions if m in members))


def _recorded_seqs(messages: list[Message]) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Each sender's seqs among ``messages``, and each mentioned user's, in order."""
    own: dict[str, list[int]] = {}
    mentioned: dict[str, list[int]] = {}
    for m in messages:
        own.setdefault(m.sender_id, []).append(m.seq)
        for user_id in m.mentions:
            mentioned.setdefault(user_id, []).append(m.seq)
    return own, mentioned


def _guarded_update(before: Document, messages: list[Message]) -> tuple[Document, list[Document]]:
    """The filter and pipeline that advance ``before``'s lastSeq/lastMessage/
    lastActivityAt past ``messages`` (its sends of this batch, in seq order),
    guarded by the lastSeq that was read.

    Filtered on ``_id`` alone (an index on every server; SecantusDB scans for
    ``{_id, lastSeq}``) with the guard inside the pipeline: if another process
    moved lastSeq in between, nothing changes and the write counts as not
    modified. Every client value is wrapped in ``$literal``: in a pipeline a body
    such as ``"$lastSeq"`` would otherwise be read as a field path.
    """
    read_seq = before.get("lastSeq", 0)
    guard = {"$eq": [{"$ifNull": ["$lastSeq", 0]}, read_seq]}
    last = messages[-1]
    own, mentioned = _recorded_seqs(messages)
    recorded = counter_updates(read_seq, own)
    if mentioned:  # mentions are filtered against the members already
        recorded |= mention_updates(mentioned)

    def when_guarded(value: object, field: str) -> dict[str, Any]:
        return {"$cond": [guard, value, f"${field}"]}

    return (
        {"_id": before["_id"]},
        [
            {
                "$set": {
                    "lastSeq": when_guarded(last.seq, "lastSeq"),
                    "lastActivityAt": when_guarded({"$literal": last.created_at}, "lastActivityAt"),
                    "lastMessage": when_guarded(
                        {"$literal": without_search_keys(message_to_document(last))}, "lastMessage"
                    ),
                    **{field: when_guarded(value, field) for field, value in recorded.items()},
                }
            }
        ],
    )


def _is_field_name(user_id: str) -> bool:
    """Whether ``user_id`` can name a field in an update operator's path."""
    return bool(user_id) and "." not in user_id and not user_id.startswith("$")


def _rewritten(before: Document, messages: list[Message]) -> Document | None:
    """``before`` with the change of :func:`_guarded_update` made here, for a
    transaction that rewrites the whole document (its write conflicts are the
    guard); None when a sender's or a mentioned user's id cannot name a field of a
    stored document (then the pipeline form is used)."""
    own, mentioned = _recorded_seqs(messages)
    if not all(_is_field_name(u) for u in (*own, *mentioned)):
        return None
    last = messages[-1]
    after = {
        **before,
        "lastSeq": last.seq,
        "lastActivityAt": last.created_at,
        "lastMessage": without_search_keys(message_to_document(last)),
        **recorded_counters(before, before.get("lastSeq", 0), own),
    }
    if mentioned:
        after |= recorded_mentions(before, mentioned)
    return after


class MessageBatches:
    """Writes batches of :class:`NewMessage` (already validated) and answers each send."""

    def __init__(
        self,
        messages: AsyncCollection[Document],
        conversations: AsyncCollection[Document],
        transactions: Transactions,
        *,
        time_limit: float = 10.0,
    ) -> None:
        self._messages = messages
        self._conversations = conversations
        self._transactions = transactions
        self._time_limit = time_limit

    async def write(
        self, batch: Sequence[NewMessage], deadline: float | None = None
    ) -> list[Outcome]:
        """One outcome per send, in order: its AppendResult, or its own NotFound.

        Raises (for the whole batch) when the database fails or cannot be reached, and
        ``Unavailable`` once ``deadline`` (``time.monotonic()``; by default this batch's
        own time limit from now) has passed: its senders are owed an answer by then.
        """
        outcomes: dict[int, Outcome] = {}
        # A clientMsgId twice in one batch: the second follows the first.
        first_of: dict[_ReplayKey, int] = {}
        follows: dict[int, int] = {}
        for i, new in enumerate(batch):
            key = _replay_key(new)
            if key is not None and key in first_of:
                follows[i] = first_of[key]
            elif key is not None:
                first_of[key] = i
        pending = [i for i in range(len(batch)) if i not in follows]
        replays: set[int] = set()
        if not await self._transactions.enabled():
            # Without a transaction a replay must be found before it takes a seq.
            keyed = [i for i in pending if batch[i].client_msg_id is not None]
            found = await asyncio.gather(*(self._stored(batch[i]) for i in keyed))
            outcomes.update((i, r) for i, r in zip(keyed, found, strict=True) if r is not None)
            pending = [i for i in pending if i not in outcomes]
        if deadline is None:
            deadline = time.monotonic() + self._time_limit
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unavailable("storage did not answer in time")
            try:
                done = await self._transactions.run(
                    partial(self._round, batch, pending), time_limit=left
                )
            except _Replays as exc:
                replays |= exc.positions
                pending = [i for i in pending if i not in exc.positions]
                continue
            outcomes.update(done.stored)
            replays |= done.replays
            pending = done.lost
        for i in replays:
            outcomes[i] = await self._stored_replay(batch[i])
        for i, first in follows.items():
            outcomes[i] = _as_replay(outcomes[first])
        return [outcomes[i] for i in range(len(batch))]

    async def _round(
        self, batch: Sequence[NewMessage], sends: list[int], session: AsyncClientSession | None
    ) -> _Round:
        stored: dict[int, Outcome] = {}
        # Every round, a lone send included: find + update, never a findAndModify,
        # which SecantusDB (0.7) runs as a scan of the whole collection (it re-filters
        # its write on {_id, $and: [query]}, and a "$" field defeats its index
        # lookup): 44 ms with 5,000 conversations against 0.7 ms for update_one.
        found, taken = await self._allocate(batch, sends, session)
        lost = await self._advance(found, taken, session) if taken else set()
        placed = {i for sent in taken.values() for i, _ in sent}
        for i in sends:
            if i not in placed:
                stored[i] = NotFound("conversation not found")
        for cid in lost:
            del taken[cid]
        if not taken:
            return _Round(stored, [i for i in sends if batch[i].conversation_id in lost], set())
        replays = await self._insert([m for sends in taken.values() for m in sends], session)
        # Thread replies count on their roots in the same transaction, after the insert
        # (a replay, caught by it, never counts): see adapters.mongo.threads.
        replies = [
            m for sent in taken.values() for i, m in sent if m.thread_id and i not in replays
        ]
        roots = await record_replies(self._messages, replies, session)
        for cid, sent in taken.items():
            conversation = document_to_conversation(found[cid])
            for i, message in sent:
                if i not in replays:
                    stored[i] = AppendResult(
                        message=message,
                        conversation=attrs.evolve(
                            conversation,
                            last_seq=message.seq,
                            last_message=message,
                            last_activity_at=message.created_at,
                        ),
                        created=True,
                        thread_root=roots.get(message.thread_id) if message.thread_id else None,
                    )
        lost_sends = [i for i in sends if batch[i].conversation_id in lost]
        return _Round(stored, lost_sends, replays)

    async def _allocate(
        self, batch: Sequence[NewMessage], sends: list[int], session: AsyncClientSession | None
    ) -> tuple[dict[str, Document], _Taken]:
        """Find the conversations and give each member's send its seq (not stored yet)."""
        conversation_ids = list(dict.fromkeys(batch[i].conversation_id for i in sends))
        found = {doc["_id"]: doc async for doc in self._find(conversation_ids, session)}
        taken: _Taken = {}
        for i in sends:
            new = batch[i]
            before = found.get(new.conversation_id)
            if before is None or not is_member(before, new.sender_id):
                continue
            mine = taken.setdefault(new.conversation_id, [])
            seq = (mine[-1][1].seq if mine else before.get("lastSeq", 0)) + 1
            mine.append((i, _stored_message(new, seq, before)))
        return found, taken

    def _find(self, conversation_ids: list[str], session: AsyncClientSession | None) -> Any:
        only = conversation_ids[0] if len(conversation_ids) == 1 else {"$in": conversation_ids}
        return self._conversations.find({"_id": only}, session=session)

    async def _advance(
        self,
        found: dict[str, Document],
        taken: _Taken,
        session: AsyncClientSession | None,
    ) -> set[str]:
        """Move every conversation's lastSeq; the ids of those another process moved first."""
        if session is not None:
            docs = [_rewritten(found[cid], [m for _, m in sent]) for cid, sent in taken.items()]
            rewritten = [d for d in docs if d is not None]
            if len(rewritten) == len(docs):
                await self._rewrite(rewritten, session)
                return set()
            # A user id that cannot name a field (rare): the pipeline form, whose
            # guards all hold, since a racing write is a write conflict here.
            updates = [
                UpdateOne(*_guarded_update(found[cid], [m for _, m in sent]))
                for cid, sent in taken.items()
            ]
            await self._conversations.bulk_write(updates, session=session)
            return set()
        # Without a transaction the guards decide, and each must answer for its own
        # conversation: a bulk write only counts how many held, and a read after it
        # cannot tell which (another process may have moved lastSeq again right after
        # our write; taking that for a lost race sent the sends again under new seqs
        # and left their first seqs as a gap). So one guarded update per conversation.
        cids = list(taken)
        results = await asyncio.gather(
            *(
                self._conversations.update_one(
                    *_guarded_update(found[cid], [m for _, m in taken[cid]])
                )
                for cid in cids
            )
        )
        return {cid for cid, result in zip(cids, results, strict=True) if not result.modified_count}

    async def _rewrite(self, docs: list[Document], session: AsyncClientSession | None) -> None:
        """Store the batch's conversations whole, in the transaction that read them.

        Why not ``update``: SecantusDB's cost is per command, per statement and per
        index entry; a replacement skips evaluating update operators and diffing, and
        from ``REWRITE_FROM`` conversations one ``delete`` + one ``insert`` of them all
        costs it less than as many replace statements (bench/RESULTS.md, issue 14,
        fourth pass). Safe only in a transaction: the documents were read in it, so
        any write to them since (another process's batch, a member change, an edit's
        lastMessage) is a write conflict and the round is retried from its read;
        nothing written meanwhile is overwritten, and nobody sees a conversation
        missing between the delete and the insert.
        """
        if len(docs) < REWRITE_FROM:
            await self._conversations.bulk_write(
                [ReplaceOne({"_id": doc["_id"]}, doc) for doc in docs], session=session
            )
            return
        await self._conversations.delete_many(
            {"_id": {"$in": [doc["_id"] for doc in docs]}}, session=session
        )
        await self._conversations.insert_many(docs, session=session)

    async def _insert(
        self, sends: list[tuple[int, Message]], session: AsyncClientSession | None
    ) -> set[int]:
        """Insert the messages; the positions whose clientMsgId was already stored
        (without a transaction: their seqs stay unused; with one: raises _Replays)."""
        try:
            await self._messages.insert_many(
                [stored_message_document(m) for _, m in sends], ordered=False, session=session
            )
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            replays = {sends[e["index"]][0] for e in errors if _is_stored_already(e)}
            if len(replays) < len(errors) or not replays:
                raise
            if session is not None:
                raise _Replays(replays) from exc
            return replays
        return set()

    async def _stored_replay(self, new: NewMessage) -> Outcome:
        """The answer to a send whose insert found its message stored already."""
        replay = await self._stored(new)
        if replay is None:  # pragma: no cover - messages are never removed
            return Conflict("message changed concurrently")
        return replay

    async def _stored(self, new: NewMessage) -> Outcome | None:
        """:meth:`_find_stored`, with its NotFound as the outcome of ``new`` alone."""
        try:
            return await self._find_stored(new)
        except NotFound as exc:
            return exc

    async def _find_stored(self, new: NewMessage) -> AppendResult | None:
        """The message stored earlier for ``new`` (under its clientMsgId, or its own id),
        with the conversation (NotFound if the sender is no longer a member); None if
        there is none.

        ``created`` says whether that message is ``new`` itself: stored by an earlier
        attempt of this batch whose commit was applied but answered as failed. Its
        send is then answered as any new message (and delivered live), with its
        thread root's summary if it is a reply; any other is an idempotent replay.
        """
        if new.client_msg_id is None:
            query = {"_id": new.id}
        else:
            query = {
                IDEMPOTENCY_KEY: idempotency_key(
                    new.conversation_id, new.sender_id, new.client_msg_id
                )
            }
        message_doc = await self._messages.find_one(query)
        if message_doc is None:
            return None
        conversation_doc = await self._conversations.find_one({"_id": new.conversation_id})
        if conversation_doc is None or not is_member(conversation_doc, new.sender_id):
            raise NotFound("conversation not found")
        message = document_to_message(message_doc)
        created = message.id == new.id
        root = None
        if created and message.thread_id is not None:
            root_doc = await self._messages.find_one({"_id": message.thread_id})
            root = document_to_message(root_doc) if root_doc is not None else None
        return AppendResult(
            message=message,
            conversation=document_to_conversation(conversation_doc),
            created=created,
            thread_root=root,
        )


def _as_replay(outcome: Outcome) -> Outcome:
    """What the second send of a clientMsgId within one batch gets: the first's message."""
    if isinstance(outcome, AppendResult):
        return attrs.evolve(outcome, created=False)
    return outcome
