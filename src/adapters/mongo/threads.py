"""Thread replies in MongoDB: the root's summary, and a thread's replies by seq.

A reply is an ordinary message with ``threadId`` (the root's id). Storing it also
updates the root's ``thread`` summary, inside the send's transaction (see
:mod:`adapters.mongo.messages`), right after the reply's insert: a replay is
caught by that insert and aborts before the root is touched. Without transactions
(a standalone mongod) the steps run one by one: a failure between the insert and
the summary update leaves the reply stored and the root counting one reply less.

The summary update uses operators, not a pipeline, so concurrent replies from any
number of processes all count: ``$inc`` the count, ``$max`` the newest reply's
time, ``$addToSet`` the sender (which appends, so participants keep the order of
their first reply). A root that never had a reply has no ``thread`` field (v1
documents neither), so the first reply creates it. The service checks that the
root is a live message of the conversation before the send; a root deleted in the
instant between that check and the transaction still counts the reply (deleting
keeps a root's summary and replies anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from adapters.mongo.documents import THREAD_SEQ, Document, document_to_message
from chatcore.models import Message


def reply_summary_update(reply: Message) -> dict[str, Any]:
    """What one more reply changes on its root."""
    return {
        "$inc": {"thread.replyCount": 1},
        "$max": {"thread.lastReplyAt": reply.created_at},
        "$addToSet": {"thread.participantIds": reply.sender_id},
    }


async def record_replies(
    messages: AsyncCollection[Document],
    replies: Sequence[Message],
    session: AsyncClientSession | None,
) -> dict[str, Message]:
    """Count each of ``replies`` (stored, in seq order) on its root; the roots as they
    are afterwards, by id. One ``bulk_write`` and one ``find``, whatever their number,
    one reply included: a ``findAndModify`` would be one command, but SecantusDB (0.7)
    runs it as a scan of the whole collection (see adapters.mongo.messages)."""
    if not replies:
        return {}
    updates = [UpdateOne({"_id": r.thread_id}, reply_summary_update(r)) for r in replies]
    await messages.bulk_write(updates, ordered=True, session=session)
    root_ids = list(dict.fromkeys(r.thread_id for r in replies))
    cursor = messages.find({"_id": {"$in": root_ids}}, session=session)
    return {doc["_id"]: document_to_message(doc) async for doc in cursor}


async def find_replies(
    messages: AsyncCollection[Document],
    conversation_id: str,
    root_id: str,
    *,
    before: int | None,
    after: int | None,
    limit: int,
) -> list[Message]:
    """Up to ``limit`` replies ascending by seq, from the (threadId, threadSeq) index
    (``threadSeq``: a reply's seq, see :func:`adapters.mongo.documents.index_fields`)."""
    if limit <= 0:
        return []
    # threadId and threadSeq only: every field of the filter in the index, so SecantusDB's
    # planner uses it too; the conversation is checked on the (few) results.
    seq: dict[str, int] = {}
    if after is not None:
        seq["$gt"] = after
    elif before is not None:
        seq["$lt"] = before
    query: Document = {"threadId": root_id}
    if seq:
        query[THREAD_SEQ] = seq
    direction = ASCENDING if after is not None else DESCENDING
    cursor = messages.find(query).sort(THREAD_SEQ, direction).limit(limit)
    found = [document_to_message(doc) async for doc in cursor]
    if direction == DESCENDING:
        found.reverse()
    return [m for m in found if m.conversation_id == conversation_id]
