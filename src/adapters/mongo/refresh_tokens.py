"""Refresh tokens in MongoDB: stored by hash, consumed at most once."""

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
from adapters.mongo.errors import storage_call
from chatcore.errors import Conflict
from chatcore.models import RefreshToken
from chatcore.ports import RefreshTokenRepository


class MongoRefreshTokenRepository(RefreshTokenRepository):
    """Tokens in the ``refreshTokens`` collection, ``_id`` = the token's hash; a TTL
    index removes expired ones in the background."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
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
        # One atomic delete: of two concurrent consumes only one gets the document.
        # By _id alone (an expiresAt condition makes it a scan on SecantusDB); an
        # expired token is removed all the same, and not returned.
        doc = await self._tokens.find_one_and_delete({"_id": values.text(token_hash, "tokenHash")})
        if doc is None:
            return None
        token = document_to_refresh_token(doc)
        return token if token.expires_at > now else None

    @storage_call
    async def revoke(self, token_hash: str) -> None:
        await self._tokens.delete_one({"_id": values.text(token_hash, "tokenHash")})

    @storage_call
    async def revoke_all_for_user(self, user_id: str) -> None:
        await self._tokens.delete_many({"userId": values.text(user_id, "userId")})
