"""Unread counts read off the conversation document, kept up to date by every send batch.

A conversation's seqs 1..lastSeq are all messages (gapless), so a viewer whose
read pointer is at ``after`` has ``lastSeq - after`` messages after it, minus
their own among them. To know their own, every send batch records on the
conversation, per sender, the seqs of their last ``OWN_SEQS_KEPT`` messages
(``ownSeqs``, a map from user id to seqs), and ``ownSince``, the ``lastSeq`` at
which this recording began (conversations stored by an older version have
messages before it that were never recorded).

The count is exact when every own message after ``after`` is recorded: the
pointer is at or after ``ownSince``, and the viewer sent fewer than
``OWN_SEQS_KEPT`` messages since it (or the oldest recorded one is not after it).
Otherwise (a viewer who sent many messages without reading, or an old
conversation) :func:`unread_from_counters` answers None and the messages are
counted. Interactive clients mark what they read as messages arrive, so their
pointers pass their own messages and the counters answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from adapters.mongo.documents import Document

# Per sender and conversation: a small, bounded addition to the conversation
# document (a few bytes per member who ever sent).
OWN_SEQS_KEPT: Final = 4
# What a list page reads of each conversation to count (a find projection).
COUNTER_FIELDS: Final = {"lastSeq": 1, "ownSince": 1, "ownSeqs": 1}


def counter_updates(read_seq: Any, own_seqs: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """``$set`` expressions (for an update pipeline) recording ``own_seqs`` (sender ->
    their new seqs in order; numbers or expressions) on a conversation whose lastSeq
    before the batch is ``read_seq`` (a number or an expression)."""
    stored = {"$ifNull": ["$ownSeqs", {}]}

    def kept(user_id: str, seqs: Sequence[Any]) -> dict[str, Any]:
        # By $getField: user ids as field names whatever characters they hold.
        before = {"$getField": {"field": {"$literal": user_id}, "input": stored}}
        together = {"$concatArrays": [{"$ifNull": [before, []]}, list(seqs)]}
        return {"$slice": [together, -OWN_SEQS_KEPT]}

    return {
        "ownSince": {"$ifNull": ["$ownSince", read_seq]},
        "ownSeqs": {
            "$mergeObjects": [
                stored,
                {
                    "$arrayToObject": [
                        [{"k": {"$literal": u}, "v": kept(u, s)} for u, s in own_seqs.items()]
                    ]
                },
            ]
        },
    }


def recorded_counters(
    conversation: Document, read_seq: int, own_seqs: Mapping[str, Sequence[int]]
) -> Document:
    """The counter fields of ``conversation`` after :func:`counter_updates` (the same
    change, done here: for a batch that rewrites the whole document). ``ownSince`` is
    set only when missing: once set it is a lastSeq read earlier, never above
    ``read_seq``."""
    since = conversation.get("ownSince")
    kept = dict(conversation.get("ownSeqs") or {})
    for user_id, seqs in own_seqs.items():
        kept[user_id] = [*kept.get(user_id, ()), *seqs][-OWN_SEQS_KEPT:]
    return {"ownSince": read_seq if since is None else since, "ownSeqs": kept}


def unread_from_counters(conversation: Document, user_id: str, after: int) -> int | None:
    """Messages from others after seq ``after``, from ``conversation``'s counters
    (:data:`COUNTER_FIELDS` at least); None when the counters cannot tell."""
    since = conversation.get("ownSince")
    if since is None or after < since:
        return None
    own: list[int] = (conversation.get("ownSeqs") or {}).get(user_id, [])
    if len(own) >= OWN_SEQS_KEPT and own[0] > after:
        return None  # older own messages after the pointer may not be recorded
    unread: int = conversation.get("lastSeq", 0) - after - sum(1 for seq in own if seq > after)
    return max(unread, 0)
