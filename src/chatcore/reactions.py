"""The rule of a message's reactions, as a pure function (stores apply it atomically)."""

from __future__ import annotations

from chatcore import limits
from chatcore.errors import Conflict
from chatcore.models import Reaction


def too_many_emoji() -> Conflict:
    return Conflict(
        f"a message holds at most {limits.MAX_REACTION_EMOJI} distinct emoji",
        details={"field": "emoji"},
    )


def toggled_reaction(
    reactions: tuple[Reaction, ...], user_id: str, emoji: str, *, add: bool
) -> tuple[Reaction, ...]:
    """``reactions`` with ``user_id``'s ``emoji`` added or removed.

    Emoji keep the order of their first use and users the order they reacted in;
    an emoji nobody holds any more is dropped. Adding a new emoji to a message that
    already holds :data:`~chatcore.limits.MAX_REACTION_EMOJI` raises Conflict.
    """
    for i, reaction in enumerate(reactions):
        if reaction.emoji != emoji:
            continue
        if add == (user_id in reaction.user_ids):
            return reactions
        if add:
            users = (*reaction.user_ids, user_id)
        else:
            users = tuple(u for u in reaction.user_ids if u != user_id)
        changed = (Reaction(emoji=emoji, user_ids=users),) if users else ()
        return (*reactions[:i], *changed, *reactions[i + 1 :])
    if not add:
        return reactions
    if len(reactions) >= limits.MAX_REACTION_EMOJI:
        raise too_many_emoji()
    return (*reactions, Reaction(emoji=emoji, user_ids=(user_id,)))
