"""Unread mentions read off the conversation document, like unread counts
(:mod:`adapters.mongo.unread_counters`): a conversation list costs no extra command.

Every send batch records on the conversation, per mentioned member, the seqs of
the last ``MENTION_SEQS_KEPT`` messages that mention them (``mentionSeqs``, a map
from user id to seqs). Mentions exist since v1.1 and every send of v1.1 records
them, so the record of a conversation is complete from its first message (v1
conversations have no mentions and no record, which reads as none). A viewer
whose read pointer is at ``after`` has as many unread mentions as recorded seqs
after it, when fewer than ``MENTION_SEQS_KEPT`` seqs are kept or the oldest kept
is not after the pointer. Otherwise :func:`mentions_from_counters` answers None
and the mentions are counted on the (mentions, conversationId, seq) index.

An edit or a deletion that changes whom an older message mentions cannot patch
the kept seqs in one write; it marks those users' records unknown instead
(:func:`forget_mentions`: ``MENTION_SEQS_KEPT`` seqs beyond any real one), so
they are counted on the index until enough new mentions have replaced the marks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from adapters.mongo.documents import Document

# Per mentioned member and conversation: a few numbers on the conversation document.
MENTION_SEQS_KEPT: Final = 8
MENTION_FIELDS: Final = {"mentionSeqs": 1}
# Larger than any seq (seqs stay below 2**53): a record that cannot be trusted.
_UNKNOWN: Final = 2**62


def _stored() -> dict[str, Any]:
    return {"$ifNull": ["$mentionSeqs", {}]}


def _entries(records: Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    # {k, v} pairs: user ids as field names whatever characters they hold.
    return [{"k": {"$literal": user_id}, "v": value} for user_id, value in records]


def mention_updates(mentioned: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """``$set`` expressions (update pipeline) recording ``mentioned`` (user -> the new
    seqs that mention them, in order; numbers or expressions) on a conversation."""

    def kept(user_id: str, seqs: Sequence[Any]) -> dict[str, Any]:
        before = {"$getField": {"field": {"$literal": user_id}, "input": _stored()}}
        together = {"$concatArrays": [{"$ifNull": [before, []]}, list(seqs)]}
        return {"$slice": [together, -MENTION_SEQS_KEPT]}

    entries: Any = _entries((u, kept(u, s)) for u, s in mentioned.items())
    return {"mentionSeqs": {"$mergeObjects": [_stored(), {"$arrayToObject": [entries]}]}}


def recorded_mentions(conversation: Document, mentioned: Mapping[str, Sequence[int]]) -> Document:
    """The ``mentionSeqs`` field of ``conversation`` after :func:`mention_updates` (the
    same change, done here: for a batch that rewrites the whole document)."""
    kept = dict(conversation.get("mentionSeqs") or {})
    for user_id, seqs in mentioned.items():
        kept[user_id] = [*kept.get(user_id, ()), *seqs][-MENTION_SEQS_KEPT:]
    return {"mentionSeqs": kept}


def forget_mentions(user_ids: Iterable[str]) -> dict[str, Any]:
    """``$set`` expressions marking these users' records unknown (after an edit or a
    deletion changed whether an older message mentions them)."""
    unknown = [_UNKNOWN] * MENTION_SEQS_KEPT
    entries = _entries((u, unknown) for u in user_ids)
    return {"mentionSeqs": {"$mergeObjects": [_stored(), {"$arrayToObject": [entries]}]}}


def mentions_from_counters(conversation: Document, user_id: str, after: int) -> int | None:
    """Messages after seq ``after`` that mention ``user_id``, from ``conversation``'s
    record (:data:`MENTION_FIELDS` at least); None when the record cannot tell."""
    seqs: list[int] = (conversation.get("mentionSeqs") or {}).get(user_id, [])
    if len(seqs) >= MENTION_SEQS_KEPT and seqs[0] > after:
        return None  # older mentions after the pointer may not be recorded (or marked)
    return sum(1 for seq in seqs if seq > after)
