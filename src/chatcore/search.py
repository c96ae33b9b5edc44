"""Message search in the domain: how text becomes words, and what a match is.

Every adapter of :class:`chatcore.ports.MessageSearch` uses these functions, so
"``Élan`` matches ``elan``" means the same thing in memory and in MongoDB.

- :func:`words`: the words of a text, compared case- and accent-insensitively:
  case folded, decomposed (NFKD), combining marks dropped, then split into
  maximal runs of letters and digits.
- A message matches a query when every query word is a prefix of some word of
  its current body (:func:`matches`).
- :func:`index_words`: what a store indexes for a body: its distinct words (cut
  to :data:`WORD_CHARS` characters), without those that are a prefix of another
  of its words (a prefix query that finds ``the`` also finds ``there``). A query
  word is looked up as the range of indexed words that start with it
  (:func:`lookup_word`, at most :data:`WORD_CHARS` characters) and every
  candidate is confirmed with :func:`matches`.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

from attrs import frozen

from chatcore.models import Message

# Indexed words are cut to this length: a 32-character prefix picks few messages,
# and a URL or a hash pasted into a message does not make a huge index key.
WORD_CHARS: Final = 32

# Letters and digits: \w without the underscore.
_WORD: Final = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """The normalised words of ``text``, in order (repeats kept)."""
    # Case folding first: it can produce combining marks ("İ" -> "i" + dot above)
    # that the decomposition step then drops.
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _WORD.findall(bare)


def index_words(text: str) -> list[str]:
    """The distinct words of ``text`` cut to WORD_CHARS characters, sorted, without
    any that is a prefix of another (sorted order puts a prefix right before the
    first word that extends it): one index entry per word a prefix query needs."""
    distinct = sorted({word[:WORD_CHARS] for word in words(text)})
    kept = [
        word for word, following in itertools.pairwise(distinct) if not following.startswith(word)
    ]
    return kept + distinct[-1:]


def query_words(query: str) -> list[str]:
    """The words a query asks for, without those implied by a longer one
    (``"ab abc"`` asks for ``abc`` only: a word starting with ``abc`` starts with ``ab``).
    Longest first: the first is the most selective key to look up."""
    distinct = sorted(set(words(query)), key=lambda w: (-len(w), w))
    kept: list[str] = []
    for word in distinct:
        if not any(longer.startswith(word) for longer in kept):
            kept.append(word)
    return kept


def lookup_word(wanted: Sequence[str]) -> str:
    """The prefix a store looks up among the indexed words for ``wanted`` (from
    :func:`query_words`): the longest query word, cut to WORD_CHARS characters."""
    return wanted[0][:WORD_CHARS]


def matches(body_words: Iterable[str], wanted: Sequence[str]) -> bool:
    """Whether every wanted word is a prefix of some word in ``body_words``."""
    have = body_words if isinstance(body_words, (set, frozenset)) else set(body_words)
    return all(any(word.startswith(w) for word in have) for w in wanted)


def message_matches(message: Message, wanted: Sequence[str]) -> bool:
    """A live (not deleted) message whose current body has every wanted word prefix."""
    return not message.is_deleted and matches(words(message.body), wanted)


@frozen(kw_only=True)
class SearchPosition:
    """Where a page of results ended, in their order: newest first by ``created_at``,
    ties by message id descending. The next page holds what sorts strictly after."""

    created_at: datetime
    message_id: str

    @classmethod
    def of(cls, message: Message) -> SearchPosition:
        return cls(created_at=message.created_at, message_id=message.id)

    def is_before(self, message: Message) -> bool:
        """Whether ``message`` comes after this position (is older, or the same
        millisecond with a smaller id)."""
        return (message.created_at, message.id) < (self.created_at, self.message_id)


def newest_first(messages: Iterable[Message]) -> list[Message]:
    """``messages`` in result order."""
    return sorted(messages, key=lambda m: (m.created_at, m.id), reverse=True)
