"""No value can become a query operator: dicts where strings or ints belong are refused."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo import mongo_storage
from adapters.mongo.documents import Document
from chatcore.chat import Storage
from chatcore.errors import ValidationFailed
from chatcore.models import ConversationCursor
from chatcore.testing import factories as make

pytestmark = pytest.mark.mongo

OP: Any = {"$gt": ""}
NUM_OP: Any = {"$gt": -1}

CALLS: dict[str, Callable[[Storage], Awaitable[object]]] = {
    "users.get": lambda s: s.users.get(OP),
    "users.get_many": lambda s: s.users.get_many([OP]),
    "users.find_credentials": lambda s: s.users.find_credentials(OP),
    "users.search": lambda s: s.users.search(OP, limit=5, after_username=None, exclude_id=None),
    "users.search.after": lambda s: s.users.search(
        None, limit=5, after_username=OP, exclude_id=None
    ),
    "users.search.exclude": lambda s: s.users.search(
        None, limit=5, after_username=None, exclude_id=OP
    ),
    "users.search.limit": lambda s: s.users.search(
        None, limit=NUM_OP, after_username=None, exclude_id=None
    ),
    "conversations.get": lambda s: s.conversations.get(OP),
    "conversations.get_for_member": lambda s: s.conversations.get_for_member("c", OP),
    "conversations.find_direct": lambda s: s.conversations.find_direct(OP, "u"),
    "conversations.list_for_member": lambda s: s.conversations.list_for_member(
        OP, limit=5, after=None
    ),
    "conversations.list_for_member.cursor": lambda s: s.conversations.list_for_member(
        "u-a", limit=5, after=ConversationCursor(activity_at=OP, conversation_id=OP)
    ),
    "conversations.list_by_ids_for_member": lambda s: s.conversations.list_by_ids_for_member(
        "u-a", [OP]
    ),
    "conversations.add_member": lambda s: s.conversations.add_member(OP, "u"),
    "conversations.remove_member": lambda s: s.conversations.remove_member("c", OP),
    "conversations.contact_ids": lambda s: s.conversations.contact_ids(OP),
    "messages.get": lambda s: s.messages.get("c", OP),
    "messages.range": lambda s: s.messages.range(OP, 1, 5),
    "messages.range.seq": lambda s: s.messages.range("c", NUM_OP, 5),
    "messages.count_unread": lambda s: s.messages.count_unread("u", {"c": NUM_OP}),
    "messages.count_unread.user": lambda s: s.messages.count_unread(OP, {"c": 0}),
    "messages.append": lambda s: s.messages.append(make.message(OP, "u-a")),
    "receipts.advance": lambda s: s.receipts.advance("c", OP, 1, OP),
    "receipts.list_for_conversation": lambda s: s.receipts.list_for_conversation(OP),
    "receipts.for_user": lambda s: s.receipts.for_user("u", [OP]),
    "refresh_tokens.consume": lambda s: s.refresh_tokens.consume(OP, OP),
    "refresh_tokens.revoke": lambda s: s.refresh_tokens.revoke(OP, "u-a"),
    "refresh_tokens.revoke.user": lambda s: s.refresh_tokens.revoke("t", OP),
    "refresh_tokens.find_used": lambda s: s.refresh_tokens.find_used(OP),
    "refresh_tokens.revoke_family": lambda s: s.refresh_tokens.revoke_family(OP),
    "refresh_tokens.revoke_all_for_user": lambda s: s.refresh_tokens.revoke_all_for_user(OP),
}


@pytest.mark.parametrize("call", list(CALLS))
async def test_an_operator_in_place_of_a_value_is_refused(
    db: AsyncDatabase[Document], call: str
) -> None:
    storage = mongo_storage(db)
    conversation = await make.stored_group(storage, "u-a", "u-b")
    await storage.messages.append(make.message(conversation.id, "u-a"))

    with pytest.raises(ValidationFailed):
        await CALLS[call](storage)

    # Nothing was changed on the way.
    stored = await storage.conversations.get(conversation.id)
    assert stored is not None
    assert (stored.member_ids, stored.last_seq) == (("u-a", "u-b"), 1)
