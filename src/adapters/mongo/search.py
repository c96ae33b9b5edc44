"""Message search on MongoDB (and SecantusDB) without text indexes.

What is stored: each message document carries ``searchKeys``, every word prefix
of its body up to :data:`chatcore.search.KEY_CHARS` characters
(:func:`adapters.mongo.documents.message_to_document`), rewritten in the same
update as the body on edit and emptied on delete. Two multikey indexes hold
them: ``(searchKeys, createdAt desc)`` for all of a user's conversations and
``(conversationId, searchKeys, createdAt desc)`` for one.

How a query runs: an *equality* on the query's longest word prefix (stored
prefixes make that exact, where a range over whole words would return the
matches grouped by word rather than by time) and a *time window* on
``createdAt``. SecantusDB reads every index entry in the bounds of a query and
only then applies ``limit`` (a ``sort`` does not use the index's order at all),
so an unbounded query for a common word would read every message holding it.
Windows keep each read small: the first covers the last hour before the cursor
(or now), each next one reaches further back, sized from the hit rate so far
(at most four times the previous one), until the page is full or the windows
reach 1970. A rare word costs a dozen small index reads at most; a common word
stops after the first window or two.

In the adapter, each candidate's body is normalised again and checked against
every query word (the index served one; longer words and the other words are
checked here), and its conversation must have the user as a member *now*: the
distinct conversation ids of the candidates are looked up by ``_id`` (one point
lookup per window), so the cost does not depend on how many conversations the
user is in (10,000 conversations cost what 10 do), only on how many candidates
the windows hold. A user who is in few of the conversations that use a word
pays for reading the others' matches; that is what the per-conversation index
avoids when one conversation is searched.

Neither ``$in`` over the user's conversations nor ``$and`` of several prefixes
would do better on SecantusDB: either turns its plan into a collection scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo import values
from adapters.mongo.documents import (
    CONVERSATIONS,
    MESSAGES,
    SEARCH_KEYS,
    Document,
    document_to_message,
)
from adapters.mongo.errors import TimeBound, storage_call
from chatcore.models import Message
from chatcore.ports import Clock, MessageSearch
from chatcore.search import SearchPosition, lookup_key, message_matches, newest_first

FIRST_WINDOW: Final = timedelta(hours=1)
_SMALLEST_WINDOW: Final = timedelta(minutes=1)
_GROWTH: Final = 4
# Windows stop here: the next one is unbounded below (BSON dates go further, but
# a chat's messages don't).
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_WITHOUT_KEYS: Final = {SEARCH_KEYS: 0}


def next_window(window: timedelta, searched: timedelta, hits: int, needed: int) -> timedelta:
    """How far back the next window reaches: from the hit rate so far, with a margin,
    never more than ``_GROWTH`` times the last window (nothing found yet: exactly that)."""
    grown = window * _GROWTH
    if hits == 0:
        return grown
    estimate = searched * (needed / hits) * 1.25
    return max(_SMALLEST_WINDOW, min(grown, estimate))


def _reach_back(start: datetime, window: timedelta) -> datetime | None:
    """The lower end of a window ending at ``start``; None once it would pass 1970."""
    return start - window if start - _EPOCH > window else None


class MongoMessageSearch(MessageSearch, TimeBound):
    """Searches the ``messages`` collection through the ``search`` indexes."""

    def __init__(self, db: AsyncDatabase[Document], clock: Clock) -> None:
        self.bound_by(db)
        self._messages = db[MESSAGES]
        self._conversations = db[CONVERSATIONS]
        self._clock = clock

    @storage_call
    async def search(
        self,
        user_id: str,
        wanted: Sequence[str],
        *,
        conversation_id: str | None,
        limit: int,
        after: SearchPosition | None,
    ) -> list[Message]:
        user_id = values.text(user_id, "userId")
        wanted = values.texts(wanted, "q")
        limit = values.integer(limit, "limit")
        if not wanted or limit < 1:
            return []
        scope: Document = {SEARCH_KEYS: lookup_key(wanted)}
        if conversation_id is not None:
            scope = {"conversationId": values.text(conversation_id, "conversationId"), **scope}
        newest: dict[str, Any] = {}
        if after is not None:
            # Inclusive: messages of the same millisecond with a smaller id still follow.
            newest = {"$lte": values.moment(after.created_at, "cursor")}
        anchor = after.created_at if after is not None else self._clock.now()
        membership: dict[str, bool] = {}
        found: list[Message] = []
        window = FIRST_WINDOW
        lower = _reach_back(anchor, window)
        while True:
            bounds = dict(newest)
            if lower is not None:
                bounds["$gte"] = lower
            query = {**scope, "createdAt": bounds} if bounds else scope
            cursor = self._messages.find(query, projection=_WITHOUT_KEYS)
            candidates = [
                message
                for message in map(document_to_message, await cursor.to_list())
                if (after is None or after.is_before(message)) and message_matches(message, wanted)
            ]
            await self._learn_membership(user_id, candidates, membership)
            found.extend(m for m in candidates if membership[m.conversation_id])
            if len(found) >= limit or lower is None:
                return newest_first(found)[:limit]
            window = next_window(window, anchor - lower, len(found), limit - len(found))
            newest = {"$lt": lower}
            lower = _reach_back(lower, window)

    async def _learn_membership(
        self, user_id: str, candidates: Iterable[Message], membership: dict[str, bool]
    ) -> None:
        """Record, for the candidates' conversations not seen yet, whether ``user_id``
        is a member now (one lookup by ``_id``: a point read per conversation)."""
        unknown = list({m.conversation_id for m in candidates} - membership.keys())
        if not unknown:
            return
        cursor = self._conversations.find({"_id": {"$in": unknown}}, projection={"memberIds": 1})
        members = {doc["_id"]: doc.get("memberIds", ()) for doc in await cursor.to_list()}
        for conversation_id in unknown:
            membership[conversation_id] = user_id in members.get(conversation_id, ())
