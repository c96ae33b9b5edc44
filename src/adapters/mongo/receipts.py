"""Read receipts in MongoDB: one pointer per (conversation, user) that only moves forward."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from adapters.mongo import values
from adapters.mongo.documents import RECEIPTS, Document, document_to_receipt
from adapters.mongo.errors import TimeBound, storage_call
from chatcore.errors import Conflict
from chatcore.models import ReadReceipt
from chatcore.ports import ReceiptRepository

_ATTEMPTS = 5
_NO_ID = {"_id": 0}


class MongoReceiptRepository(ReceiptRepository, TimeBound):
    """Receipts in the ``receipts`` collection, unique on (conversationId, userId)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.bound_by(db)
        self._receipts = db[RECEIPTS]

    @storage_call
    async def advance(
        self, conversation_id: str, user_id: str, up_to_seq: int, at: datetime
    ) -> tuple[ReadReceipt, bool]:
        key = {
            "conversationId": values.text(conversation_id, "conversationId"),
            "userId": values.text(user_id, "userId"),
        }
        up_to_seq = values.integer(up_to_seq, "upToSeq")
        at = values.moment(at, "readAt")
        for _ in range(_ATTEMPTS):
            # A filtered upsert: it matches only a pointer that is behind, so
            # readAt changes exactly when the pointer moves. With no pointer yet
            # it inserts one; if the pointer exists and is not behind, the insert
            # clashes with the unique index and the stored pointer stands.
            # update_one, not find_one_and_update: SecantusDB runs every
            # findAndModify as a scan of the whole collection (bench/RESULTS.md,
            # issue 14 third pass), and a moved pointer is exactly what was set.
            try:
                result = await self._receipts.update_one(
                    {**key, "lastReadSeq": {"$lt": up_to_seq}},
                    {"$set": {"lastReadSeq": up_to_seq, "readAt": at}},
                    upsert=True,
                )
                moved = result.modified_count > 0 or result.upserted_id is not None
            except DuplicateKeyError:
                moved = False
            if moved:
                stored_at = at.replace(microsecond=at.microsecond - at.microsecond % 1000)
                return ReadReceipt(
                    conversation_id=key["conversationId"],
                    user_id=key["userId"],
                    last_read_seq=up_to_seq,
                    read_at=stored_at,  # BSON dates hold milliseconds
                ), True
            # DuplicateKeyError, or nothing matched nor inserted (SecantusDB's answer
            # to the loser of two racing upserts): someone else's pointer is there;
            # read it.
            current = await self._receipts.find_one(key, _NO_ID)
            if current is not None and current["lastReadSeq"] >= up_to_seq:
                return document_to_receipt(current), False
            # It was behind after all (a racing advance to a lower seq won the
            # insert): try the update again.
        raise Conflict("read pointer is changing too fast")

    @storage_call
    async def list_for_conversation(self, conversation_id: str) -> list[ReadReceipt]:
        cursor = self._receipts.find(
            {"conversationId": values.text(conversation_id, "conversationId")}, _NO_ID
        ).sort("userId", ASCENDING)
        return [document_to_receipt(doc) async for doc in cursor]

    @storage_call
    async def for_user(self, user_id: str, conversation_ids: Iterable[str]) -> dict[str, int]:
        ids = values.texts(conversation_ids, "conversationIds")
        if not ids:
            return {}
        cursor = self._receipts.find(
            {"userId": values.text(user_id, "userId"), "conversationId": {"$in": ids}},
            {"_id": 0, "conversationId": 1, "lastReadSeq": 1},
        )
        return {doc["conversationId"]: doc["lastReadSeq"] async for doc in cursor}
