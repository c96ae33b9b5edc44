"""Finding ``@username`` mentions in a message body (API.md v1.1, Mentions).

A mention is ``@`` followed by a username, compared case-insensitively over the
username's full length and not followed by another username character. So the
name is the whole run of username characters after the ``@``: ``@bob.`` names
``bob.``, not ``bob``. An ``@`` right after a username character starts no
mention, so ``alice@example.org`` mentions nobody (as in Slack and Mattermost).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

# The characters of chatcore.limits' username rule, '@' included.
_MENTION_RE: Final = re.compile(r"(?<![A-Za-z0-9_.@+\-])@([A-Za-z0-9_.@+\-]+)")


def named_usernames(body: str) -> list[str]:
    """The lower-cased names after each ``@`` of ``body``, in order, without repeats.

    Cheap when there is no ``@`` at all (the common case): no regex runs.
    """
    if "@" not in body:
        return []
    return list(dict.fromkeys(map(str.lower, _MENTION_RE.findall(body))))


def mentioned_ids(
    names: Iterable[str],
    ids_by_username: Mapping[str, str],
    member_ids: Iterable[str] | None,
    sender_id: str,
) -> tuple[str, ...]:
    """The ids of ``names`` (lower-cased, in order) other than the sender's; with
    ``member_ids``, only those of members."""
    found = [i for i in map(ids_by_username.get, names) if i is not None and i != sender_id]
    if member_ids is not None:
        members = set(member_ids)
        found = [i for i in found if i in members]
    return tuple(dict.fromkeys(found))
