"""Message search in the domain: how text becomes words, and what a match is.

Every adapter of :class:`chatcore.ports.MessageSearch` uses these functions, so
"``Élan`` matches ``elan``" means the same thing in memory and in MongoDB.

- :func:`words`: the words of a text, compared case- and accent-insensitively:
  case folded, decomposed (NFKD), combining marks dropped, then split into
  maximal runs of letters and digits.
- A message matches a query when every query word is a prefix of some word of
  its current body (:func:`matches`).
- :func:`index_keys`: what a store indexes for a body: every prefix of every
  word up to :data:`KEY_CHARS` characters, so that a query word is found by an
  *equality* on one key (a range over words would return the matches grouped by
  word, not newest first). Longer query words are looked up by their first
  :data:`KEY_CHARS` characters and confirmed with :func:`matches`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

from attrs import frozen

from chatcore.models import Message

# Prefixes longer than this are not indexed: an 8-character prefix already picks
# few messages, and each extra character would add an index entry per long word.
KEY_CHARS: Final = 8

# Letters and digits: \w without the underscore.
_WORD: Final = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """The normalised words of ``text``, in order (repeats kept)."""
    # Case folding first: it can produce combining marks ("İ" -> "i" + dot above)
    # that the decomposition step then drops.
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _WORD.findall(bare)


def index_keys(text: str) -> list[str]:
    """Every distinct prefix (1..KEY_CHARS characters) of every word, sorted."""
    keys = {word[:n] for word in set(words(text)) for n in range(1, min(len(word), KEY_CHARS) + 1)}
    return sorted(keys)


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


def lookup_key(wanted: Sequence[str]) -> str:
    """The index key a store looks up for ``wanted`` (from :func:`query_words`)."""
    return wanted[0][:KEY_CHARS]


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
