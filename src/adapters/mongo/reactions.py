"""Reactions in MongoDB: one atomic, conditional update of the message document.

The whole rule runs inside one update pipeline on the message, so it holds under
any concurrency without a read-modify-write race: the server applies each
update to the document as it is at that moment. 20 members adding the
same emoji at once end with 20 user ids, and a new emoji is added only while the
message holds fewer than :data:`chatcore.limits.MAX_REACTION_EMOJI` (the size of
the array is checked in the same write), so racing additions cannot exceed the
cap. A deleted message, or one of another conversation, is left unchanged.

The caller sends it with ``update_one`` (a ``findAndModify`` is a scan of the whole
collection on SecantusDB): ``modified_count`` says whether the reaction changed, and
a read of the message afterwards gives the result. When nothing changed,
:func:`chatcore.reactions.toggled_reaction` (the same rule in Python) on that state
tells "already so" from the emoji cap's Conflict.
"""

from __future__ import annotations

from typing import Any

from chatcore import limits

Expression = Any


def _reactions() -> Expression:
    return {"$ifNull": ["$reactions", []]}


def react_pipeline(conversation_id: str, user_id: str, emoji: str, *, add: bool) -> list[Any]:
    """An update pipeline adding or removing ``user_id``'s ``emoji``.

    Every client value is a ``$literal``: an emoji such as ``"$body"`` must not be
    read as a field path.
    """
    e, u = {"$literal": emoji}, {"$literal": user_id}
    allowed: list[Expression] = [
        {"$eq": ["$conversationId", {"$literal": conversation_id}]},
        {"$eq": [{"$ifNull": ["$deletedAt", None]}, None]},
    ]
    if add:
        has_emoji = {"$in": [e, {"$map": {"input": _reactions(), "in": "$$this.emoji"}}]}
        allowed.append(
            {"$or": [has_emoji, {"$lt": [{"$size": _reactions()}, limits.MAX_REACTION_EMOJI]}]}
        )
        joined = {
            "$map": {
                "input": _reactions(),
                "in": {
                    "$cond": [
                        {
                            "$and": [
                                {"$eq": ["$$this.emoji", e]},
                                {"$not": [{"$in": [u, "$$this.userIds"]}]},
                            ]
                        },
                        {
                            "emoji": "$$this.emoji",
                            "userIds": {"$concatArrays": ["$$this.userIds", [u]]},
                        },
                        "$$this",
                    ]
                },
            }
        }
        first = {"$concatArrays": [_reactions(), [{"emoji": e, "userIds": [u]}]]}
        changed: Expression = {"$cond": [has_emoji, joined, first]}
    else:
        without_user = {
            "$map": {
                "input": _reactions(),
                "in": {
                    "$cond": [
                        {"$eq": ["$$this.emoji", e]},
                        {
                            "emoji": "$$this.emoji",
                            "userIds": {
                                "$filter": {
                                    "input": "$$this.userIds",
                                    "as": "u",
                                    "cond": {"$ne": ["$$u", u]},
                                }
                            },
                        },
                        "$$this",
                    ]
                },
            }
        }
        # An emoji nobody holds any more goes.
        changed = {
            "$filter": {"input": without_user, "cond": {"$gt": [{"$size": "$$this.userIds"}, 0]}}
        }
    return [{"$set": {"reactions": {"$cond": [{"$and": allowed}, changed, _reactions()]}}}]
