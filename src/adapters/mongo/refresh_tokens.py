"""Refresh tokens in MongoDB: stored by hash, consumed at most once, kept once used
(until they expire) so that a replay revokes the family."""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from adapters.mongo import values
from adapters.mongo.documents import (
    REFRESH_TOKENS,
    Document,
    document_to_refresh_token,
    refresh_token_to_document,
)
from adapters.mongo.errors import TimeBound, storage_call
from chatcore.errors import Conflict
from chatcore.models import RefreshToken
from chatcore.ports import RefreshTokenRepository


class MongoRefreshTokenRepository(RefreshTokenRepository, TimeBound):
    """Tokens in the ``refreshTokens`` collection, ``_id`` = the token's hash; a TTL
    index removes expired ones in the background."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.bound_by(db)
        self._tokens = db[REFRESH_TOKENS]

    @storage_call
    async def add(self, token: RefreshToken) -> None:
        values.text(token.token_hash, "tokenHash")
        values.text(token.user_id, "userId")
        try:
            await self._tokens.insert_one(refresh_token_to_document(token))
        except DuplicateKeyError as exc:
            raise Conflict("refresh token exists") from exc

    @storage_call
    async def consume(self, token_hash: str, now: datetime) -> RefreshToken | None:
        now = values.moment(now, "now")
        # One atomic update: of two concurrent consumes only one finds it unused. The
        # used token stays (until the TTL index removes it) so that a replay is known.
        # No expiresAt condition (it makes it a scan on SecantusDB): checked below.
        doc = await self._tokens.find_one_and_update(
            {"_id": values.text(token_hash, "tokenHash"), "usedAt": None},
            {"$set": {"usedAt": now}},
        )
        if doc is None:
            return None
        token = document_to_refresh_token(doc)
        return token if token.expires_at > now else None

    @storage_call
    async def find_used(self, token_hash: str) -> RefreshToken | None:
        doc = await self._tokens.find_one({"_id": values.text(token_hash, "tokenHash")})
        if doc is None or doc.get("usedAt") is None:
            return None
        return document_to_refresh_token(doc)

    @storage_call
    async def revoke(self, token_hash: str, user_id: str) -> None:
        await self._tokens.delete_one(
            {"_id": values.text(token_hash, "tokenHash"), "userId": values.text(user_id, "userId")}
        )

    @storage_call
    async def revoke_family(self, family: str) -> None:
        family = values.text(family, "familyId")
        # A family's first token may name no family ("": its own); two indexed deletes.
        await self._tokens.delete_one({"_id": family})
        await self._tokens.delete_many({"familyId": family})

    @storage_call
    async def revoke_all_for_user(self, user_id: str) -> None:
        await self._tokens.delete_many({"userId": values.text(user_id, "userId")})
