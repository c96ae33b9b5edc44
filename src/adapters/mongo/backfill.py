"""Making older messages searchable: a resumable backfill.

Messages written by this version carry ``searchWords`` from their first write
(:mod:`adapters.mongo.search`). Those stored by v1 have no search field, and
those stored by the first search release have ``searchKeys`` (every word prefix,
no longer indexed); search cannot see either until this has run. It walks the
conversations in ``_id`` order and each one's messages by seq ranges (the
``(conversationId, seq)`` index: no collection scan), and gives every message
without ``searchWords``, or still with ``searchKeys``, the words of its body
(and removes ``searchKeys``).

- Idempotent: a message in the current form is never touched, and each update
  applies only if the message still has the body (and deletion) it was read
  with, so an edit or delete that lands between the read and the write (and wrote
  the words of the new body) wins.
- Resumable: after each conversation its id is recorded in the ``meta``
  collection; a restart continues after it, and once everything is done a flag
  makes the next start cost one read.
- Not blocking: the server starts it as a background task after the indexes
  exist; until it ends, older messages are simply not found yet.
"""

from __future__ import annotations

import asyncio
from typing import Final

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo.documents import (
    CONVERSATIONS,
    MESSAGES,
    OLD_SEARCH_KEYS,
    SEARCH_KEYS,
    Document,
    search_keys,
)
from adapters.mongo.errors import storage_call

META: Final = "meta"
# Not the first release's "searchBackfill": a database where that one finished
# still holds messages in its form.
STATE_ID: Final = "searchWordsBackfill"
BATCH: Final = 500


def needs_words(message: Document) -> bool:
    """Whether a stored message lacks the current search form."""
    return SEARCH_KEYS not in message or OLD_SEARCH_KEYS in message


def _rewrite(message: Document) -> UpdateOne:
    """Give ``message`` the words of the body it was read with, if it still has it."""
    deleted_at = message.get("deletedAt")
    words = search_keys(message["body"], deleted=bool(deleted_at))
    return UpdateOne(
        {"_id": message["_id"], "body": message["body"], "deletedAt": deleted_at},
        {"$set": {SEARCH_KEYS: words}, "$unset": {OLD_SEARCH_KEYS: ""}},
    )


class SearchBackfill:
    """Gives every message that lacks them its ``searchWords``; see the module docs."""

    def __init__(self, db: AsyncDatabase[Document], *, batch: int = BATCH) -> None:
        self._messages = db[MESSAGES]
        self._conversations = db[CONVERSATIONS]
        self._meta = db[META]
        self._batch = batch

    @storage_call
    async def run(self) -> int:
        """Backfill what is left; returns how many messages got words (0 when done before)."""
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
                # The old field only to see it is there: a slice of one prefix.
                projection={
                    "body": 1,
                    "deletedAt": 1,
                    SEARCH_KEYS: {"$slice": 1},
                    OLD_SEARCH_KEYS: {"$slice": 1},
                },
            )
            updates = [
                _rewrite(message) for message in await cursor.to_list() if needs_words(message)
            ]
            if updates:
                result = await self._messages.bulk_write(updates, ordered=False)
                updated += result.modified_count
            # Other requests share this event loop and the database: let them in.
            await asyncio.sleep(0)
        return updated

    async def _save(self, state: Document) -> None:
        await self._meta.update_one({"_id": STATE_ID}, {"$set": state}, upsert=True)
