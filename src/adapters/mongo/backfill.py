"""Making messages stored before search existed searchable: a resumable backfill.

Messages written by this version carry ``searchKeys`` from their first write
(:mod:`adapters.mongo.search`); those stored by v1 do not, and search cannot
see them until this has run. It walks the conversations in ``_id`` order and
each one's messages by seq ranges (the ``(conversationId, seq)`` index: no
collection scan), and gives every message without keys the keys of its body.

- Idempotent: a message that has keys is never touched, and each update sets
  the keys only if the message still has none, so an edit or delete that lands
  between the read and the write (and wrote keys for the new body) wins.
- Resumable: after each conversation its id is recorded in the ``meta``
  collection; a restart continues after it, and once everything is done a flag
  makes the next start cost one read.
- Not blocking: the server starts it as a background task after the indexes
  exist; until it ends, older messages are simply not found yet.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo.documents import CONVERSATIONS, MESSAGES, SEARCH_KEYS, Document, search_keys
from adapters.mongo.errors import storage_call

META: Final = "meta"
STATE_ID: Final = "searchBackfill"
BATCH: Final = 500


def _keys_if_missing(keys: list[str]) -> dict[str, Any]:
    """An update pipeline that sets ``keys`` only where the field is still absent."""
    missing = {"$eq": [{"$type": f"${SEARCH_KEYS}"}, "missing"]}
    return {"$set": {SEARCH_KEYS: {"$cond": [missing, {"$literal": keys}, f"${SEARCH_KEYS}"]}}}


class SearchBackfill:
    """Gives every message that lacks them its ``searchKeys``; see the module docs."""

    def __init__(self, db: AsyncDatabase[Document], *, batch: int = BATCH) -> None:
        self._messages = db[MESSAGES]
        self._conversations = db[CONVERSATIONS]
        self._meta = db[META]
        self._batch = batch

    @storage_call
    async def run(self) -> int:
        """Backfill what is left; returns how many messages got keys (0 when done before)."""
        state = await self._meta.find_one({"_id": STATE_ID}) or {}
        if state.get("done"):
            return 0
        resume_after = state.get("after")
        conversations = await self._conversations.find({}, projection={"lastSeq": 1}).to_list()
        conversations.sort(key=lambda doc: doc["_id"])
        updated = 0
        for doc in conversations:
            if resume_after is not None and doc["_id"] <= resume_after:
                continue
            updated += await self._conversation(doc["_id"], doc.get("lastSeq", 0))
            await self._save({"after": doc["_id"]})
        await self._save({"done": True})
        return updated

    async def _conversation(self, conversation_id: str, last_seq: int) -> int:
        updated = 0
        for first in range(1, last_seq + 1, self._batch):
            window = {"$gte": first, "$lte": first + self._batch - 1}
            cursor = self._messages.find(
                {"conversationId": conversation_id, "seq": window},
                projection={"body": 1, "deletedAt": 1, SEARCH_KEYS: 1},
            )
            updates = [
                UpdateOne(
                    {"_id": message["_id"]},
                    [
                        _keys_if_missing(
                            search_keys(message["body"], deleted=bool(message.get("deletedAt")))
                        )
                    ],
                )
                for message in await cursor.to_list()
                if SEARCH_KEYS not in message
            ]
            if updates:
                result = await self._messages.bulk_write(updates, ordered=False)
                updated += result.modified_count
            # Other requests share this event loop and the database: let them in.
            await asyncio.sleep(0)
        return updated

    async def _save(self, state: Document) -> None:
        await self._meta.update_one({"_id": STATE_ID}, {"$set": state}, upsert=True)
