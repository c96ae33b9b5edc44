"""Moving a database to the index shapes of issue 14's third pass, once, at start-up.

Messages stored before it lack the fields its indexes are keyed on
(:func:`adapters.mongo.documents.index_fields`: ``idem``, ``threadSeq``,
``mentionedAt``), and the database holds indexes nothing queries any more.
:func:`migrate_index_fields` runs after the new indexes exist (they are sparse,
so documents without the fields are simply not in them yet):

1. every message gets the index fields it lacks (one pass over the collection,
   ``bulk_write`` of ``$set`` in batches; a field is only ever added, so a
   message written meanwhile by this version is left as it is);
2. the obsolete indexes are dropped (those that exist);
3. a flag in the ``meta`` collection makes every later start skip step 1 (one
   read), and step 2 costs one ``listIndexes`` per collection.

:func:`migrate_direct_keys` (issue 14, fourth pass) moves the uniqueness of a
direct conversation per pair from the ``directKey_unique`` index of the
conversations collection to the ``directKeys`` collection: while that index
exists, every direct conversation's key is copied (an insert of each, a key
already there is left as it is), and then the index is dropped. Run again after
a crash in between, it copies the same keys again, so it is idempotent; once
the index is gone it costs one ``listIndexes``.

The old unique ``clientMsgId`` index stays until step 2, so idempotency holds
throughout; the new unique ``idem`` index cannot refuse a backfilled key, since
the old one kept the same triples unique. Processes of an earlier version should
be stopped before the first start of this one: a message they write after step
1 has no index fields (its clientMsgId would not be found by a replay, and a
reply would not be listed in its thread).
"""

from __future__ import annotations

from typing import Final

from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from adapters.mongo.documents import (
    CONVERSATIONS,
    DIRECT_KEYS,
    IDEMPOTENCY_KEY,
    MENTIONED_AT,
    MESSAGES,
    THREAD_SEQ,
    Document,
    index_fields,
)
from adapters.mongo.errors import DUPLICATE_KEY, translate_errors

META: Final = "meta"
STATE_ID: Final = "indexFields"
BATCH: Final = 500
OLD_DIRECT_INDEX: Final = "directKey_unique"

OBSOLETE_INDEXES: Final = {
    CONVERSATIONS: ("id_memberIds",),
    MESSAGES: (
        "clientMsgId_unique",
        "clientMsgId_lookup",
        "threadId_seq",
        "mentions_conversationId_seq",
        # The first search release's two indexes: ~65 word prefixes per message each.
        "search",
        "search_conversation",
    ),
}

_READ: Final = dict.fromkeys(
    (
        "conversationId",
        "senderId",
        "clientMsgId",
        "threadId",
        "seq",
        "mentions",
        IDEMPOTENCY_KEY,
        THREAD_SEQ,
        MENTIONED_AT,
    ),
    1,
)


async def migrate_index_fields(db: AsyncDatabase[Document], *, batch: int = BATCH) -> int:
    """Run the migration if it has not run on ``db``; returns how many messages got
    index fields (0 when it ran before)."""
    with translate_errors():
        meta = db[META]
        if ((await meta.find_one({"_id": STATE_ID})) or {}).get("done"):
            await drop_obsolete_indexes(db)
            return 0
        updated = 0
        updates: list[UpdateOne] = []
        async for doc in db[MESSAGES].find({}, projection=_READ):
            missing = {k: v for k, v in index_fields(doc).items() if k not in doc}
            if missing:
                updates.append(UpdateOne({"_id": doc["_id"]}, {"$set": missing}))
            if len(updates) >= batch:
                updated += (await db[MESSAGES].bulk_write(updates, ordered=False)).modified_count
                updates = []
        if updates:
            updated += (await db[MESSAGES].bulk_write(updates, ordered=False)).modified_count
        await drop_obsolete_indexes(db)
        await meta.update_one({"_id": STATE_ID}, {"$set": {"done": True}}, upsert=True)
        return updated


async def drop_obsolete_indexes(db: AsyncDatabase[Document]) -> None:
    """Drop those of :data:`OBSOLETE_INDEXES` that exist (checked on every start, one
    ``listIndexes`` per collection: a database can carry an index of a release this
    migration's flag never saw, e.g. the first search release's)."""
    with translate_errors():
        for collection, names in OBSOLETE_INDEXES.items():
            existing = await db[collection].index_information()
            for name in names:
                if name in existing:
                    await db[collection].drop_index(name)


async def migrate_direct_keys(db: AsyncDatabase[Document], *, batch: int = BATCH) -> int:
    """Copy the keys of the direct conversations into ``directKeys`` and drop the old
    unique index, if it is still there; returns how many keys were copied."""
    with translate_errors():
        conversations = db[CONVERSATIONS]
        if OLD_DIRECT_INDEX not in await conversations.index_information():
            return 0
        copied = 0
        inserts: list[InsertOne[Document]] = []
        # The documents that index held: each carries the key it was unique on.
        cursor = conversations.find({"type": "direct"}, projection={"directKey": 1})
        async for doc in cursor:
            key = doc.get("directKey")
            if key is None:  # pragma: no cover - every direct conversation had one
                continue
            inserts.append(InsertOne({"_id": key, "conversationId": doc["_id"]}))
            if len(inserts) >= batch:
                copied += await _insert_new(db, inserts)
                inserts = []
        if inserts:
            copied += await _insert_new(db, inserts)
        await conversations.drop_index(OLD_DIRECT_INDEX)
        return copied


async def _insert_new(db: AsyncDatabase[Document], inserts: list[InsertOne[Document]]) -> int:
    """Insert the keys; those already there (copied by an earlier, cut-off run) stay."""
    try:
        return (await db[DIRECT_KEYS].bulk_write(inserts, ordered=False)).inserted_count
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return int(exc.details.get("nInserted", 0))
