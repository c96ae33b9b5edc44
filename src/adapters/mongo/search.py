"""Message search on MongoDB (and SecantusDB) without text indexes.

What is stored: each message document carries ``searchWords``, the distinct
normalised words of its body (:func:`chatcore.search.index_words`: cut to 32
characters, without a word that is a prefix of another of its words), rewritten
in the same update as the body on edit and emptied on delete. About one index
entry per distinct word (10 for a 12-word message) in ONE multikey index,
``searchWords``, plus one entry per message in each of two time indexes,
``createdAt`` and ``(conversationId, createdAt)``. (The first release stored
every 1..8-character prefix, ~65 per message, in two indexes: ~130 entries,
~600 us of SecantusDB CPU per stored message; see bench/RESULTS.md.)

How a query runs. A query word ``abc`` is the range ``["abc", "abd")`` of indexed
words (the longest query word is looked up; the others are checked on each
candidate). SecantusDB bounds a scan by equalities plus ONE range, so a word
range and a time range cannot both bound the same index scan; and it reads every
entry in the bounds before it applies ``limit`` (a ``sort`` does not use an
index's order), so "newest first, stop at 20" has to come from time windows:

1. Windows, newest first: the last hour before the cursor (or now), each next
   one reaching further back, sized from the hit rate so far (at most four times
   the previous one), as long as the page is not full.
   - All conversations: ``{createdAt: window, searchWords: range}``. SecantusDB
     serves a filter of two ranges from an index on its first clause, so the
     window is read through ``createdAt`` and the word range is checked on the
     server: only matches travel, but the server reads every message of the
     window (cheap per message; a word in most messages fills a page in one or
     two windows).
   - A user in at most :data:`FEW_CONVERSATIONS` conversations, once the first
     window showed the word to be common (step 2 not taken, page not full): the
     next windows are read per conversation of the user, ``{conversationId,
     createdAt: window}`` each (concurrently; ``$in`` would make SecantusDB scan
     the collection), checked here, so the other conversations' matches are not
     read. The user's conversations come from the ``memberIds`` index.
   - One conversation: ``{conversationId, createdAt: window}``, every message of
     the window, checked here (a third clause would make SecantusDB read the whole
     conversation). Once at most 2,000 of its messages are left they are read in
     one go.
2. The rest at once, through the word index: ``{searchWords: range, createdAt:
   older than the windows}`` (and the conversation, checked on the server). Taken
   when the windows would read more than that: across conversations when all the
   word's older matches, estimated from its rate so far over a 30-day history
   (:data:`HORIZON`), are at most 1,000 documents or fewer than the windows would
   still return; in one conversation when the windows would read more than 2,000
   messages. A rare word thus costs one window and one read of its few matches.
   With several words, the windows are weighed by every message they span (the
   first window is read whole, which gives the message rate): their combination
   can be much rarer than the looked-up word, and a window costs the server all
   its messages, not only the returned ones.

Every candidate's body is normalised again and checked against every query word,
and its conversation must have the user as a member *now*: the distinct
conversation ids of the candidates are looked up by ``_id`` (one point lookup
per read with new ones), so the cost does not depend on how many conversations
the user is in (10,000 cost what 10 do), only on how many candidates are read.

Guarantees: AND of word prefixes, case- and accent-insensitive
(:mod:`chatcore.search`); newest first by (createdAt, id); a deleted message has
no words and never matches; an edited one matches its new body only; membership
is the one of the moment of the query; cursor paging is exact-once (every read
is bounded by the cursor, windows do not overlap, and results are ordered and
cut here). Costs that remain: a user who is in few of the conversations that use
a common word reads the others' matches; a word that is rare lately but was
common long ago makes step 2 read all its old matches; a one-conversation search
for a word that is common elsewhere but rare in the conversation reads the word's
matches in every conversation on the server; a word common elsewhere but rare in
the conversations of a user in few of them makes the per-conversation windows read
the user's messages far back (they do not switch to the word index).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo import values
from adapters.mongo.documents import (
    CONVERSATIONS,
    MESSAGES,
    OLD_SEARCH_KEYS,
    SEARCH_KEYS,
    Document,
    document_to_message,
)
from adapters.mongo.errors import TimeBound, storage_call
from chatcore.models import Message
from chatcore.ports import Clock, MessageSearch
from chatcore.search import SearchPosition, lookup_word, message_matches, newest_first

FIRST_WINDOW: Final = timedelta(hours=1)
_SMALLEST_WINDOW: Final = timedelta(minutes=1)
_GROWTH: Final = 4
# Windows stop here: the next one is unbounded below (BSON dates go further, but
# a chat's messages don't).
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# The history a word's older matches are assumed to span when the cost of reading
# all of them is estimated from its rate in the windows read so far.
HORIZON: Final = timedelta(days=30)
# A read of all the older matches is taken without comparison when it is expected
# to return at most this many documents.
SMALL_READ: Final = 1_000
# In one conversation the windows read every message; once at most this many are
# left they are read in one go, and when the windows are expected to read more than
# this, the word index is read instead.
CONVERSATION_REST: Final = 2_000
_WITHOUT_KEYS: Final = {SEARCH_KEYS: 0, OLD_SEARCH_KEYS: 0}
# A user in at most this many conversations has the windows after the first read
# per conversation (their messages only) once the first window showed the word to
# be common; see the module docs.
FEW_CONVERSATIONS: Final = 50


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


def prefix_range(prefix: str) -> dict[str, str]:
    """The indexed words that start with ``prefix`` (not empty), as a string range:
    BSON compares strings by their UTF-8 bytes, which orders them by code point."""
    return {"$gte": prefix, "$lt": prefix[:-1] + chr(ord(prefix[-1]) + 1)}


def _has_prefix(doc: Document, prefix: str) -> bool:
    return any(word.startswith(prefix) for word in doc.get(SEARCH_KEYS) or ())


def _rarest(wanted: Sequence[str], docs: Sequence[Document]) -> str:
    """The query word (cut as looked up) that the fewest of ``docs`` have; ties: the
    longest (the first in ``wanted``)."""
    prefixes = [lookup_word([word]) for word in wanted]
    return min(prefixes, key=lambda p: sum(_has_prefix(doc, p) for doc in docs))


class _Page:
    """What one search has found so far."""

    def __init__(self, wanted: Sequence[str], after: SearchPosition | None) -> None:
        self.wanted = wanted
        self.after = after
        self.read = 0  # documents the reads returned
        self.found: list[Message] = []

    def add(self, docs: Iterable[Document], member: Mapping[str, bool]) -> None:
        """Keep the live matches after the cursor among ``docs`` whose conversation has
        the user. Membership first: a document of someone else's conversation (most of
        them, for a user in few of a word's conversations) is never decoded or
        normalised."""
        for doc in docs:
            self.read += 1
            if not member[doc["conversationId"]]:
                continue
            message = document_to_message(doc)
            if (self.after is None or self.after.is_before(message)) and message_matches(
                message, self.wanted
            ):
                self.found.append(message)


class MongoMessageSearch(MessageSearch, TimeBound):
    """Searches the ``messages`` collection; see the module docs."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        clock: Clock,
        *,
        conversation_rest: int = CONVERSATION_REST,
        few_conversations: int = FEW_CONVERSATIONS,
    ) -> None:
        self.bound_by(db)
        self._messages = db[MESSAGES]
        self._conversations = db[CONVERSATIONS]
        self._clock = clock
        self._conversation_rest = conversation_rest
        self._few_conversations = few_conversations

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
        words = prefix_range(lookup_word(wanted))
        page = _Page(wanted, after)
        membership: dict[str, bool] = {}
        scope: Document = {}
        last_seq = 0
        if conversation_id is not None:
            conversation_id = values.text(conversation_id, "conversationId")
            scope = {"conversationId": conversation_id}
            conversation = await self._conversations.find_one(
                {"_id": conversation_id}, projection={"memberIds": 1, "lastSeq": 1}
            )
            if conversation is None or user_id not in conversation.get("memberIds", ()):
                return []
            membership[conversation_id] = True
            last_seq = int(conversation.get("lastSeq", 0))
        newest: dict[str, Any] = {}
        if after is not None:
            # Inclusive: messages of the same millisecond with a smaller id still follow.
            newest = {"$lte": values.moment(after.created_at, "cursor")}
        anchor = after.created_at if after is not None else self._clock.now()
        window = FIRST_WINDOW
        lower = _reach_back(anchor, window)
        probed: list[Document] | None = None
        # Messages per unit of time in the first window, when it was read whole: what
        # a window costs the server (it reads every message of the window, not only
        # the matches that travel).
        message_rate: float | None = None
        if conversation_id is None and len(wanted) > 1 and lower is not None:
            # Several words: the first window is read whole, and the word fewest of
            # its messages have is the one looked up (the others are checked here).
            probed = await self._find({"createdAt": {**newest, "$gte": lower}}, words=True)
            message_rate = len(probed) / window.total_seconds()
            look_up = _rarest(wanted, probed)
            probed = [doc for doc in probed if _has_prefix(doc, look_up)]
            words = prefix_range(look_up)
        # The user's conversations, once the windows are read per conversation.
        own: list[str] | None = None
        while True:
            bounds = {**newest, "$gte": lower} if lower is not None else newest or {"$lte": anchor}
            if own is not None:
                # Every message of the window in each of the user's conversations,
                # concurrently: one small range of (conversationId, createdAt) each
                # ($in would make SecantusDB scan the collection). Checked here.
                reads = [
                    self._find({"conversationId": own_id, "createdAt": bounds}) for own_id in own
                ]
                docs = [doc for read in await asyncio.gather(*reads) for doc in read]
            elif conversation_id is None:
                # createdAt first: SecantusDB serves a filter of two ranges from an
                # index on its first clause (here the time window); the words are
                # checked on the server, so only the matches travel. $elemMatch: ONE
                # word within both bounds (a bare range on an array is met by one word
                # above the lower bound and another below the upper).
                query: Document = {"createdAt": bounds, SEARCH_KEYS: {"$elemMatch": words}}
                docs = probed if probed is not None else await self._find(query)
            else:
                # Every message of the window; the words are checked here (a third
                # clause would make SecantusDB read the whole conversation).
                docs = await self._find({"conversationId": conversation_id, "createdAt": bounds})
            probed = None
            await self._add(page, membership, user_id, docs)
            if len(page.found) >= limit or lower is None:
                # Full, or the windows reached 1970 (the last one unbounded below).
                return newest_first(page.found)[:limit]
            newest = {"$lt": lower}
            searched = anchor - lower
            hits = len(page.found)
            # How much further back the windows still have to reach, at the hit rate so far.
            more = searched * ((limit - hits) / max(hits, 0.5))
            windows_read = page.read * (more / searched)
            if own is not None:
                pass  # Per conversation the windows go on until the page is full or 1970.
            elif conversation_id is None:
                # What the word index would return: every older message with a word
                # starting like the looked-up one (the other query words are checked
                # after), at the rate the windows saw.
                all_read = page.read * (HORIZON / searched)
                if message_rate is not None:
                    # Several words: their combination is rarer than the looked-up
                    # word, so the windows would read many messages per hit; they cost
                    # every message they span, not only the returned ones.
                    windows_read = max(windows_read, message_rate * more.total_seconds())
                if all_read <= max(windows_read, SMALL_READ):
                    break
                if own is None and message_rate is None and len(page.found) < limit:
                    # A common word: the windows would read every conversation's
                    # matches; a user in few conversations reads only theirs instead.
                    own = await self._own_conversations(user_id)
            else:
                if last_seq - page.read <= self._conversation_rest:
                    # The rest of the conversation, in one read.
                    rest = {"conversationId": conversation_id, "createdAt": newest}
                    await self._add(page, membership, user_id, await self._find(rest))
                    return newest_first(page.found)[:limit]
                if windows_read > self._conversation_rest:
                    break
            window = next_window(window, searched, hits, limit - hits)
            lower = _reach_back(lower, window)
        # Every older match at once, through the word index (the first clause, as above).
        rest = {SEARCH_KEYS: words, **scope, "createdAt": newest}
        await self._add(page, membership, user_id, await self._find(rest))
        return newest_first(page.found)[:limit]

    async def _own_conversations(self, user_id: str) -> list[str] | None:
        """The ids of the conversations ``user_id`` is in, or None when more than
        ``few_conversations`` (the ``memberIds`` index serves the lookup)."""
        cursor = self._conversations.find(
            {"memberIds": user_id}, projection={"_id": 1}, limit=self._few_conversations + 1
        )
        ids = [doc["_id"] for doc in await cursor.to_list()]
        return ids if len(ids) <= self._few_conversations else None

    async def _find(self, query: Document, *, words: bool = False) -> list[Document]:
        projection = {OLD_SEARCH_KEYS: 0} if words else _WITHOUT_KEYS
        return await self._messages.find(query, projection=projection).to_list()

    async def _add(
        self,
        page: _Page,
        membership: dict[str, bool],
        user_id: str,
        docs: list[Document],
    ) -> None:
        await self._learn_membership(user_id, {doc["conversationId"] for doc in docs}, membership)
        page.add(docs, membership)

    async def _learn_membership(
        self, user_id: str, conversation_ids: set[str], membership: dict[str, bool]
    ) -> None:
        """Record, for the conversations not seen yet, whether ``user_id`` is a member
        now (one lookup by ``_id``: a point read per conversation)."""
        unknown = list(conversation_ids - membership.keys())
        if not unknown:
            return
        cursor = self._conversations.find({"_id": {"$in": unknown}}, projection={"memberIds": 1})
        members = {doc["_id"]: doc.get("memberIds", ()) for doc in await cursor.to_list()}
        for conversation_id in unknown:
            membership[conversation_id] = user_id in members.get(conversation_id, ())
