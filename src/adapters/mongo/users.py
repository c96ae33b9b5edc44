"""Users in MongoDB: unique lower-cased usernames, prefix search on two indexes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from adapters.mongo import values
from adapters.mongo.documents import (
    USER_PROJECTION,
    USERS,
    Document,
    document_to_credentials,
    document_to_user,
    user_to_document,
)
from adapters.mongo.errors import TimeBound, duplicate_key_fields, storage_call
from chatcore.errors import Conflict
from chatcore.models import Credentials, User
from chatcore.ports import UserRepository

_MAX_CODE_POINT = 0x10FFFF


def prefix_range(prefix: str) -> dict[str, str]:
    """A ``{$gte, $lt}`` range matching exactly the strings that start with ``prefix``.

    A range instead of ``$regex``: it uses the index as a plain range scan and
    needs no escaping. MongoDB compares strings by their UTF-8 bytes, whose order
    is code point order, so the upper bound is the prefix with its last code
    point incremented (dropping trailing maximal code points).
    """
    bounds = {"$gte": prefix}
    stem = prefix
    while stem and ord(stem[-1]) == _MAX_CODE_POINT:
        stem = stem[:-1]
    if stem:
        bounds["$lt"] = stem[:-1] + chr(ord(stem[-1]) + 1)
    return bounds


class MongoUserRepository(UserRepository, TimeBound):
    """Users in the ``users`` collection; the password hash is read only for login."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.bound_by(db)
        self._users = db[USERS]

    @storage_call
    async def add(self, user: User, password_hash: str) -> None:
        values.text(user.id, "id")
        values.text(user.username, "username")
        values.text(user.display_name, "displayName")
        doc = user_to_document(user, values.text(password_hash, "passwordHash"))
        try:
            await self._users.insert_one(doc)
        except DuplicateKeyError as exc:
            if "usernameLower" in duplicate_key_fields(exc):
                raise Conflict("username is taken", details={"field": "username"}) from exc
            raise Conflict("user exists", details={"field": "id"}) from exc

    @storage_call
    async def get(self, user_id: str) -> User | None:
        doc = await self._users.find_one({"_id": values.text(user_id, "userId")}, USER_PROJECTION)
        return None if doc is None else document_to_user(doc)

    @storage_call
    async def get_many(self, user_ids: Iterable[str]) -> list[User]:
        ids = values.texts(user_ids, "userIds")
        if not ids:
            return []
        cursor = self._users.find({"_id": {"$in": ids}}, USER_PROJECTION)
        return [document_to_user(doc) async for doc in cursor]

    @storage_call
    async def find_credentials(self, username: str) -> Credentials | None:
        key = values.text(username, "username").lower()
        doc = await self._users.find_one({"usernameLower": key})
        return None if doc is None else document_to_credentials(doc)

    @storage_call
    async def search(
        self, query: str | None, *, limit: int, after_username: str | None, exclude_id: str | None
    ) -> list[User]:
        limit = values.integer(limit, "limit")
        if limit <= 0:
            return []
        conditions: list[dict[str, Any]] = []
        prefix = (values.optional_text(query, "search") or "").lower()
        if prefix:
            bounds = prefix_range(prefix)
            conditions.append(
                {"$or": [{"usernameLower": bounds}, {"displayNameLower": dict(bounds)}]}
            )
        after = values.optional_text(after_username, "cursor")
        if after is not None:
            conditions.append({"usernameLower": {"$gt": after}})
        excluded = values.optional_text(exclude_id, "excludeId")
        if excluded is not None:
            conditions.append({"_id": {"$ne": excluded}})
        query_filter: dict[str, Any] = {"$and": conditions} if conditions else {}
        cursor = (
            self._users.find(query_filter, USER_PROJECTION)
            .sort("usernameLower", ASCENDING)
            .limit(limit)
        )
        return [document_to_user(doc) async for doc in cursor]

    @storage_call
    async def set_last_seen(self, user_id: str, at: datetime) -> None:
        await self._users.update_one(
            {"_id": values.text(user_id, "userId")},
            {"$set": {"lastSeenAt": values.moment(at, "lastSeenAt")}},
        )

    @storage_call
    async def find_by_usernames(self, usernames: Iterable[str]) -> list[User]:
        names = [name.lower() for name in values.texts(usernames, "usernames")]
        if not names:
            return []
        # An $in on the single-field unique index: one index scan on every server.
        cursor = self._users.find({"usernameLower": {"$in": names}}, USER_PROJECTION)
        return [document_to_user(doc) async for doc in cursor]
