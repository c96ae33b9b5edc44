"""Looking users up: oneself, by id, and searching by name."""

from __future__ import annotations

from attrs import define

from chatcore import limits
from chatcore.cursors import decode_user_cursor, encode_user_cursor
from chatcore.errors import NotFound, Unauthorized
from chatcore.models import Page, User
from chatcore.ports import UserRepository


@define(kw_only=True)
class UserService:
    users: UserRepository

    async def get(self, user_id: str) -> User:
        user = await self.users.get(user_id)
        if user is None:
            raise NotFound("user not found")
        return user

    async def me(self, user_id: str) -> User:
        """The caller; Unauthorized if their account is gone (their token outlived it)."""
        user = await self.users.get(user_id)
        if user is None:
            raise Unauthorized("the account of this token no longer exists")
        return user

    async def search(
        self,
        viewer_id: str,
        *,
        search: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[User]:
        """Other users whose username or display name starts with ``search``
        (case-insensitive), by username; the viewer is left out (seed behaviour)."""
        query = limits.search(search)
        size = limits.page_limit(limit)
        after = decode_user_cursor(cursor) if cursor else None
        found = await self.users.search(
            query, limit=size + 1, after_username=after, exclude_id=viewer_id
        )
        items = found[:size]
        next_cursor = encode_user_cursor(items[-1].username.lower()) if len(found) > size else None
        return Page(items=items, next_cursor=next_cursor)
