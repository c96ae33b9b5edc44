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

What a query costs on SecantusDB: it bounds a scan by equalities plus ONE range
(a word range and a time range cannot both bound one scan), it reads every entry
in the bounds before it applies ``limit`` (a ``sort`` does not use an index's
order), it fetches and checks every document it scanned (~70 us each, whether or
not the document travels: a word check on the server saves no time), and each
read costs about what 20 more documents would. So "newest first, stop at 20"
comes from time windows that send NO word predicate: every message of a window
travels, and the words are checked here by :func:`doc_matches` on the document's
``searchWords`` (the body only for a query word longer than 32 characters), which
answers exactly as the domain's :func:`chatcore.search.message_matches`. A query
word ``abc`` read through the word index is the range ``["abc", "abd")``.

All conversations:

1. The first window: every message of the hour before the cursor (or now),
   ``{createdAt: window}``, through the ``createdAt`` index. It decides the plan:
   for each query word, how many of its messages the word index would return for
   it, scaled to a 30-day history (:data:`HORIZON`).
2. A rare word (the cheapest word's estimate at most :data:`SMALL_READ`): all its
   older matches at once, ``{searchWords: range, createdAt: older}`` (the first
   clause's index serves it, the time is checked on the server). With several
   words the one with the fewest estimated matches is read (the others are checked
   here). The first window's and these candidates' conversations are then looked
   up in ONE membership read: a rare word costs three reads.
3. A common word, a user in at most :data:`FEW_CONVERSATIONS` conversations (read
   from the ``memberIds`` index with their ``lastSeq`` and ``createdAt``): the
   membership is that list (no other membership read), and the next windows are
   read per conversation of the user, ``{conversationId, createdAt: window}``
   each, :data:`CONCURRENT_READS` in flight ($in would make SecantusDB scan the
   collection), so the other conversations' messages are not read. A window is
   sized for twice the hits the page still needs, at the rate expected from the
   user's message rate (their conversations' ``lastSeq`` over their lifetimes)
   times the share of the first window's messages that match, then at the rate
   observed; a window that finds nothing makes the next one :data:`_GROWTH` times
   longer (never the end of the search). Before each window its cost (the user's
   messages it spans, plus :data:`READ_COST` per read) is weighed against the
   cheapest word's older matches; the word index takes over when it is cheaper (a
   rare combination of common words).
4. A common word, a user in more conversations: windows across conversations,
   ``{createdAt: window}``, sized from the hit rate so far (at most four times the
   previous one); membership is learnt for the conversations of the newest
   candidates the page still needs only (the first 21 matches of a window cost one
   lookup by conversation ``_id``, whatever the user's count: 10,000 cost what 10
   do). The word index takes over when all the older matches are estimated to be at
   most ``SMALL_READ`` or fewer than the windows would still read.

One conversation: ``{conversationId, createdAt: window}``, every message of the
window, checked here (a third clause would make SecantusDB read the whole
conversation); once at most :data:`CONVERSATION_REST` of its messages are left
they are read in one go, and when the windows are expected to read more than that,
the cheapest word's older matches in the conversation are read through the word
index (the conversation and time checked on the server).

Every read is one batch (:data:`BATCH_SIZE`: no getMore round trips). No message
is ever read by ``_id`` and membership is never looked up per message.

Guarantees: AND of word prefixes, case- and accent-insensitive
(:mod:`chatcore.search`); newest first by (createdAt, id); a deleted message has
no words and never matches; an edited one matches its new body only (its words
are rewritten with the body); membership is the one of the moment of the query;
cursor paging is exact-once (every read is bounded by the cursor, windows do not
overlap, candidates are taken newest first and results cut here). A message with
no ``searchWords`` (stored by v1) is found once the start-up backfill
(:mod:`adapters.mongo.backfill`) has given it its words, also within one
conversation.

Costs that remain: a word that is rare lately but was common long ago makes step
2 read all its old matches; a rare combination of common words reads the
cheapest word's older matches in every conversation (no index holds words by
conversation); a one-conversation search for a word common elsewhere but rare in
the conversation reads the word's matches in every conversation; a user with a
busy conversation reads all of its messages in each window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from attrs import frozen
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo import values
from adapters.mongo.documents import (
    CONVERSATIONS,
    MESSAGES,
    OLD_SEARCH_KEYS,
    SEARCH_KEYS,
    Document,
    as_utc,
    document_to_message,
)
from adapters.mongo.errors import TimeBound, storage_call
from chatcore.models import Message
from chatcore.ports import Clock, MessageSearch
from chatcore.search import (
    WORD_CHARS,
    SearchPosition,
    lookup_word,
    matches,
    newest_first,
    words,
)

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
# A user in at most this many conversations has the windows after the first read
# per conversation (their messages only) once the first window showed the word to
# be common; see the module docs.
FEW_CONVERSATIONS: Final = 50
# Per-conversation window reads in flight at once: enough to hide the round trips,
# few enough not to queue a user's 50 reads ahead of everyone else's on the server.
CONCURRENT_READS: Final = 4
# What one more read costs the server, in documents it would read instead (its
# round trip, query parsing and cursor): weighs per-conversation windows (one read
# per conversation and window) against the word index.
READ_COST: Final = 20
# A window comes back in one batch: a getMore is one more round trip (16 MB still
# caps a batch).
BATCH_SIZE: Final = 10_000
_PROJECTION: Final = {OLD_SEARCH_KEYS: 0}
# Per-conversation windows: the hits a user's own first window must show before its
# rate replaces the expected one, and how many times over a window is sized.
_SEEN: Final = 3
_OWN_MARGIN: Final = 2.0


def doc_matches(doc: Document, wanted: Sequence[str]) -> bool:
    """Whether the stored message ``doc`` matches ``wanted`` (from
    :func:`chatcore.search.query_words`), the same answer as
    :func:`chatcore.search.message_matches` gives for its message, read from its
    ``searchWords``: a query word is a prefix of a body word exactly when its first
    ``WORD_CHARS`` characters are a prefix of an indexed word (a word dropped from
    the index is a prefix of one kept). Only a query word longer than that needs
    the body. A document without ``searchWords`` (stored by v1 and not backfilled
    yet) never matches; a deleted one has none."""
    if doc.get("deletedAt") is not None:
        return False
    indexed = doc.get(SEARCH_KEYS)
    if not indexed:
        return False
    if not all(any(word.startswith(w[:WORD_CHARS]) for word in indexed) for w in wanted):
        return False
    return all(len(w) <= WORD_CHARS for w in wanted) or matches(words(doc["body"]), wanted)


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


def _word_counts(wanted: Sequence[str], docs: Iterable[Document]) -> dict[str, int]:
    """For each query word (cut as looked up), how many of ``docs`` the word index
    would return for it."""
    prefixes = [lookup_word([word]) for word in wanted]
    counts = dict.fromkeys(prefixes, 0)
    for doc in docs:
        for prefix in prefixes:
            counts[prefix] += _has_prefix(doc, prefix)
    return counts


def _cheapest(counts: dict[str, int]) -> str:
    """The word the fewest documents have; ties: the longest (the first)."""
    return min(counts, key=counts.__getitem__)


def _time_range(newest: Document, lower: datetime | None, anchor: datetime) -> Document:
    """A window: from ``lower`` (None: unbounded) up to ``newest`` (the cursor or the
    previous window; ``anchor`` when unbounded both ways)."""
    if lower is None:
        return newest or {"$lte": anchor}
    # Without a cursor the first window is open above: a message stamped by a clock
    # ahead of this one (another server) is the newest, not lost.
    return {**newest, "$gte": lower}


def _older_matches(word: str, lower: datetime) -> Document:
    """Every message older than ``lower`` with a word starting with ``word``, through
    the word index (the first clause; the time is checked on the server)."""
    return {SEARCH_KEYS: prefix_range(word), "createdAt": {"$lt": lower}}


@frozen
class _FirstWindow:
    """The first window across conversations, of a common word: its messages, the
    instant the search reaches back from (the cursor or now), the window's start."""

    docs: list[Document]
    anchor: datetime
    lower: datetime


@frozen
class _Own:
    """The conversations of a user who has few, and how many messages they get per
    second over their lifetimes (their ``lastSeq`` since their creation)."""

    ids: list[str]
    rate: float


def _own_window(previous: timedelta, needed: int, rate: float) -> timedelta:
    """The next per-conversation window: long enough for the ``needed`` hits at
    ``rate`` (per second) ``_OWN_MARGIN`` times over, since another round of reads
    (one per conversation) costs more than the extra messages; never shorter than
    the last one, and ``_GROWTH`` times it while nothing is found."""
    if rate <= 0:
        return previous * _GROWTH
    return max(previous, timedelta(seconds=needed / rate * _OWN_MARGIN))


class _Membership:
    """Whether the user is in a conversation now: from the list of the user's
    conversations when it was read, else looked up by conversation ``_id`` for the
    conversations that candidates need, once each."""

    def __init__(
        self, conversations: AsyncCollection[Document], user_id: str, own: Iterable[str] | None
    ) -> None:
        self._conversations = conversations
        self._user_id = user_id
        self.complete = own is not None
        self.known: dict[str, bool] = dict.fromkeys(own or (), True)

    def has(self, conversation_id: str) -> bool:
        """Known to hold the user (an unknown one does not, when the list is complete)."""
        return self.known.get(conversation_id, False)

    async def learn(self, conversation_ids: set[str]) -> None:
        """Record membership for those of ``conversation_ids`` not known yet (one read)."""
        unknown = [c for c in conversation_ids if c not in self.known]
        if self.complete or not unknown:
            return
        cursor = self._conversations.find({"_id": {"$in": unknown}}, projection={"memberIds": 1})
        members = {doc["_id"]: doc.get("memberIds", ()) for doc in await cursor.to_list()}
        for conversation_id in unknown:
            self.known[conversation_id] = self._user_id in members.get(conversation_id, ())


class _Page:
    """What one search has found so far."""

    def __init__(self, wanted: Sequence[str], after: SearchPosition | None, limit: int) -> None:
        self.wanted = wanted
        self.after = after
        self.limit = limit
        self.read = 0  # documents the reads returned
        self.found: list[Message] = []

    @property
    def full(self) -> bool:
        return len(self.found) >= self.limit

    def result(self) -> list[Message]:
        return newest_first(self.found)[: self.limit]

    def _after_cursor(self, doc: Document) -> bool:
        if self.after is None:
            return True
        key = (as_utc(doc["createdAt"]), doc["_id"])
        return key < (self.after.created_at, self.after.message_id)

    async def add(self, docs: Sequence[Document], membership: _Membership) -> None:
        """Keep the newest matches among ``docs`` (all older than what was kept so
        far) whose conversation has the user, until the page is full. Membership is
        learnt for the conversations of the next matches the page still needs only,
        newest first, so a window full of matches costs one small lookup."""
        self.read += len(docs)
        candidates = sorted(
            (
                doc
                for doc in docs
                if (not membership.complete or membership.has(doc["conversationId"]))
                and self._after_cursor(doc)
                and doc_matches(doc, self.wanted)
            ),
            key=lambda doc: (doc["createdAt"], doc["_id"]),
            reverse=True,
        )
        start = 0
        while start < len(candidates) and not self.full:
            batch = candidates[start : start + self.limit - len(self.found)]
            start += len(batch)
            await membership.learn({doc["conversationId"] for doc in batch})
            self.found += [
                document_to_message(doc) for doc in batch if membership.has(doc["conversationId"])
            ]


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
        page = _Page(wanted, after, limit)
        newest: Document = {}
        if after is not None:
            # Inclusive: messages of the same millisecond with a smaller id still follow.
            newest = {"$lte": values.moment(after.created_at, "cursor")}
        anchor = after.created_at if after is not None else self._clock.now()
        if conversation_id is not None:
            conversation_id = values.text(conversation_id, "conversationId")
            return await self._in_conversation(page, user_id, conversation_id, newest, anchor)
        return await self._everywhere(page, user_id, newest, anchor)

    async def _everywhere(
        self, page: _Page, user_id: str, newest: Document, anchor: datetime
    ) -> list[Message]:
        lower = _reach_back(anchor, FIRST_WINDOW)
        # The first window across conversations, every message of it: the words are
        # checked here, and it shows what each plan would cost (see the module docs).
        first = await self._find({"createdAt": _time_range(newest, lower, anchor)})
        counts = _word_counts(page.wanted, first)
        word = _cheapest(counts)
        word_cost = counts[word] * (HORIZON / FIRST_WINDOW)  # its older matches, estimated
        if lower is None or word_cost <= SMALL_READ:
            # A rare word (or the windows reached 1970).
            return await self._rare_word(page, user_id, first, word, lower)
        # A common word: the windows go on, per conversation when the user has few.
        start = _FirstWindow(first, anchor, lower)
        own = await self._own_conversations(user_id, anchor)
        if own is None:
            return await self._global_windows(page, user_id, start, counts)
        if not own.ids:
            return []
        return await self._own_windows(page, user_id, own, start, (word, word_cost))

    async def _rare_word(
        self,
        page: _Page,
        user_id: str,
        first: list[Document],
        word: str,
        lower: datetime | None,
    ) -> list[Message]:
        """``word``'s matches older than the first window at once, and the membership
        of all the candidates' conversations in one read."""
        rest = [] if lower is None else await self._find(_older_matches(word, lower))
        candidates = first + rest
        membership = _Membership(self._conversations, user_id, None)
        await membership.learn(
            {doc["conversationId"] for doc in candidates if doc_matches(doc, page.wanted)}
        )
        await page.add(candidates, membership)
        return page.result()

    async def _own_windows(
        self,
        page: _Page,
        user_id: str,
        own: _Own,
        start: _FirstWindow,
        cheapest: tuple[str, float],
    ) -> list[Message]:
        """A common word for a user in few conversations: windows per conversation of
        the user, until the page is full or the cheapest word's older matches
        (``cheapest``: the word and their estimated number) cost less to read."""
        word, word_cost = cheapest
        anchor, lower = start.anchor, start.lower
        membership = _Membership(self._conversations, user_id, own.ids)
        await page.add(start.docs, membership)
        # The share of messages that match, whoever's they are: with the user's
        # message rate, how far back the windows have to reach.
        share = sum(doc_matches(doc, page.wanted) for doc in start.docs) / max(len(start.docs), 1)
        window = FIRST_WINDOW
        before: int | None = None  # hits before the last round (None: no round yet)
        while not page.full:
            hits = len(page.found)
            searched = (anchor - lower).total_seconds()
            if before is None and hits < _SEEN:
                rate = own.rate * share  # expected hits per second, before any round
            elif hits == before:
                rate = 0.0  # the last round found nothing: the window grows
            else:
                rate = hits / searched  # observed
            before = hits
            window = _own_window(window, page.limit - hits, rate)
            windows_read = own.rate * window.total_seconds() + len(own.ids) * READ_COST
            if word_cost <= windows_read:
                await page.add(await self._find(_older_matches(word, lower)), membership)
                break
            older = _reach_back(lower, window)
            docs = await self._per_conversation(own.ids, _time_range({"$lt": lower}, older, anchor))
            await page.add(docs, membership)
            if older is None:
                break  # the windows reached 1970 (the last one unbounded below)
            lower = older
        return page.result()

    async def _global_windows(
        self,
        page: _Page,
        user_id: str,
        start: _FirstWindow,
        counts: dict[str, int],
    ) -> list[Message]:
        """A common word for a user in many conversations: windows across
        conversations, every message of each, until the page is full or the word
        index becomes the cheaper way to the rest (``counts``: each word's matches
        in the first window)."""
        anchor, lower = start.anchor, start.lower
        membership = _Membership(self._conversations, user_id, None)
        await page.add(start.docs, membership)
        window = FIRST_WINDOW
        counted = FIRST_WINDOW
        while not page.full:
            searched = anchor - lower
            hits = len(page.found)
            needed = page.limit - hits
            # How much further back the windows still have to reach, at the hit rate
            # so far, and how many documents they would read on the way; against all
            # the older matches of the cheapest word, at the rate seen so far.
            more = searched * (needed / max(hits, 0.5))
            windows_read = page.read * (more / searched)
            word = _cheapest(counts)
            if counts[word] * (HORIZON / counted) <= max(windows_read, SMALL_READ):
                await page.add(await self._find(_older_matches(word, lower)), membership)
                break
            window = next_window(window, searched, hits, needed)
            older = _reach_back(lower, window)
            docs = await self._find({"createdAt": _time_range({"$lt": lower}, older, anchor)})
            for prefix, count in _word_counts(page.wanted, docs).items():
                counts[prefix] += count
            await page.add(docs, membership)
            if older is None:
                break  # the windows reached 1970 (the last one unbounded below)
            counted = anchor - older
            lower = older
        return page.result()

    async def _in_conversation(
        self,
        page: _Page,
        user_id: str,
        conversation_id: str,
        newest: Document,
        anchor: datetime,
    ) -> list[Message]:
        conversation = await self._conversations.find_one(
            {"_id": conversation_id}, projection={"memberIds": 1, "lastSeq": 1}
        )
        if conversation is None or user_id not in conversation.get("memberIds", ()):
            return []
        membership = _Membership(self._conversations, user_id, [conversation_id])
        last_seq = int(conversation.get("lastSeq", 0))
        window = FIRST_WINDOW
        lower = _reach_back(anchor, window)
        word = lookup_word(page.wanted)
        while True:
            # Every message of the window; the words are checked here (a third clause
            # would make SecantusDB read the whole conversation).
            query = {
                "conversationId": conversation_id,
                "createdAt": _time_range(newest, lower, anchor),
            }
            docs = await self._find(query)
            if page.read == 0:
                word = _cheapest(_word_counts(page.wanted, docs))
            await page.add(docs, membership)
            if page.full or lower is None:
                return page.result()
            newest = {"$lt": lower}
            searched = anchor - lower
            hits = len(page.found)
            more = searched * ((page.limit - hits) / max(hits, 0.5))
            if last_seq - page.read <= self._conversation_rest:
                # The rest of the conversation, in one read.
                rest = {"conversationId": conversation_id, "createdAt": newest}
                await page.add(await self._find(rest), membership)
                return page.result()
            if page.read * (more / searched) > self._conversation_rest:
                break
            window = next_window(window, searched, hits, page.limit - hits)
            lower = _reach_back(lower, window)
        # The word's older matches in the conversation through the word index (its
        # first clause; the conversation and the time are checked on the server).
        rest = {
            SEARCH_KEYS: prefix_range(word),
            "conversationId": conversation_id,
            "createdAt": newest,
        }
        await page.add(await self._find(rest), membership)
        return page.result()

    async def _own_conversations(self, user_id: str, anchor: datetime) -> _Own | None:
        """The conversations ``user_id`` is in and their message rate, or None when
        more than ``few_conversations`` (the ``memberIds`` index serves the lookup)."""
        cursor = self._conversations.find(
            {"memberIds": user_id},
            projection={"lastSeq": 1, "createdAt": 1},
            limit=self._few_conversations + 1,
        )
        docs = await cursor.to_list()
        if len(docs) > self._few_conversations:
            return None
        rate = 0.0
        for doc in docs:
            lifetime = (anchor - as_utc(doc.get("createdAt", anchor))).total_seconds()
            rate += int(doc.get("lastSeq", 0)) / max(lifetime, FIRST_WINDOW.total_seconds())
        return _Own([doc["_id"] for doc in docs], rate)

    async def _per_conversation(self, own: Sequence[str], bounds: Document) -> list[Document]:
        """Every message of the window ``bounds`` in each of ``own``: one small range of
        (conversationId, createdAt) each ($in would make SecantusDB scan the
        collection), ``CONCURRENT_READS`` at a time."""
        gate = asyncio.Semaphore(CONCURRENT_READS)

        async def one(conversation_id: str) -> list[Document]:
            async with gate:
                return await self._find({"conversationId": conversation_id, "createdAt": bounds})

        reads = await asyncio.gather(*(one(conversation_id) for conversation_id in own))
        return [doc for docs in reads for doc in docs]

    async def _find(self, query: Document) -> list[Document]:
        cursor = self._messages.find(query, projection=_PROJECTION, batch_size=BATCH_SIZE)
        return await cursor.to_list()
