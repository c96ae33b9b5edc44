"""Searching the messages of one's conversations (contract v1.1, ``GET /api/search/messages``)."""

from __future__ import annotations

from attrs import define

from chatcore import limits
from chatcore.cursors import decode_search_cursor, encode_search_cursor
from chatcore.errors import ValidationFailed
from chatcore.models import Message, Page
from chatcore.ports import ConversationRepository, MessageSearch
from chatcore.search import SearchPosition, query_words
from chatcore.services.access import require_membership


@define
class SearchService:
    """Word-prefix search over the conversations a user is a member of now."""

    search: MessageSearch
    conversations: ConversationRepository

    async def messages(
        self,
        user_id: str,
        q: str,
        *,
        conversation_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Message]:
        """A page of matches, newest first, and the cursor of the next page.

        ``q`` without a word (only spaces or punctuation) is a validation error; a
        ``conversation_id`` the user is not a member of is NotFound.
        """
        wanted = query_words(limits.message_search_query(q))
        if not wanted:
            raise ValidationFailed("q must contain a word", details={"field": "q"})
        size = limits.message_search_limit(limit)
        after = None if cursor is None else decode_search_cursor(cursor)
        if conversation_id is not None:
            limits.entity_id(conversation_id, "conversationId")
            await require_membership(self.conversations, conversation_id, user_id)
        # One more than the page: whether a next page exists without an empty last one.
        found = await self.search.search(
            user_id, wanted, conversation_id=conversation_id, limit=size + 1, after=after
        )
        page = found[:size]
        more = len(found) > size
        next_cursor = encode_search_cursor(SearchPosition.of(page[-1])) if more else None
        return Page(items=page, next_cursor=next_cursor)
