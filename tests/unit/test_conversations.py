"""ConversationService: direct get-or-create, groups, members, per-viewer views, lists."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcore.chat import Storage
from chatcore.errors import Forbidden, NotFound, ValidationFailed
from chatcore.limits import GROUP_MAX_MEMBERS
from chatcore.models import ConversationType, ConversationView, User
from chatcore.testing import EPOCH, ChatKit, in_memory_chat

PASSWORD = "correct horse battery"


def updates(kit: ChatKit) -> dict[str, ConversationView]:
    """conversationUpdated events by viewer (each must go to its own viewer only)."""
    events = kit.notifier.named("conversationUpdated")
    for event in events:
        assert event.recipient_ids == (event.payload.viewer_id,)
    by_viewer = {e.payload.viewer_id: e.payload for e in events}
    assert len(by_viewer) == len(events), "one conversationUpdated per viewer"
    return by_viewer


# --- direct conversations ---------------------------------------------------------------


async def test_open_direct_creates_the_conversation_and_tells_both(
    kit: ChatKit, alice: User, bob: User
) -> None:
    view = await kit.chat.conversations.open_direct(alice.id, bob.id)

    conversation = view.conversation
    assert conversation.type is ConversationType.DIRECT
    assert conversation.name is None
    assert set(conversation.member_ids) == {alice.id, bob.id}
    assert conversation.created_at == EPOCH
    assert conversation.last_seq == 0
    assert conversation.last_message is None
    assert (view.viewer_id, view.last_read_seq, view.unread_count) == (alice.id, 0, 0)
    told = updates(kit)
    assert set(told) == {alice.id, bob.id}
    assert all(v.conversation == conversation for v in told.values())


async def test_open_direct_is_unique_in_both_orders(kit: ChatKit, alice: User, bob: User) -> None:
    first = await kit.chat.conversations.open_direct(alice.id, bob.id)
    kit.notifier.clear()

    again = await kit.chat.conversations.open_direct(alice.id, bob.id)
    reverse = await kit.chat.conversations.open_direct(bob.id, alice.id)

    assert again.conversation.id == reverse.conversation.id == first.conversation.id
    assert reverse.viewer_id == bob.id
    assert kit.notifier.events == []
    page = await kit.chat.conversations.list_for_user(alice.id)
    assert [v.conversation.id for v in page.items] == [first.conversation.id]


async def test_ensure_direct_announces_only_when_it_creates(
    kit: ChatKit, alice: User, bob: User
) -> None:
    created = await kit.chat.conversations.ensure_direct(alice.id, bob.id)
    told = updates(kit)
    kit.notifier.clear()

    existing = await kit.chat.conversations.ensure_direct(bob.id, alice.id)

    assert set(told) == {alice.id, bob.id}
    assert all(v.conversation == created for v in told.values())
    assert existing == created
    assert kit.notifier.events == []


async def test_open_direct_is_unique_under_concurrency(yielding_kit: ChatKit) -> None:
    kit = yielding_kit
    alice = (await kit.chat.auth.register("alice", PASSWORD)).user
    bob = (await kit.chat.auth.register("bob", PASSWORD)).user
    calls = [(alice.id, bob.id), (bob.id, alice.id)] * 8
    random.Random(7).shuffle(calls)

    views = await asyncio.gather(*(kit.chat.conversations.open_direct(a, b) for a, b in calls))

    assert len({v.conversation.id for v in views}) == 1
    assert [v.viewer_id for v in views] == [a for a, _ in calls]
    # Created once, so announced once to each of the two.
    assert set(updates(kit)) == {alice.id, bob.id}
    for user in (alice, bob):
        page = await kit.chat.conversations.list_for_user(user.id)
        assert len(page.items) == 1


async def test_direct_conversations_are_per_pair(
    kit: ChatKit, alice: User, bob: User, carol: User
) -> None:
    ab = await kit.chat.conversations.open_direct(alice.id, bob.id)
    ac = await kit.chat.conversations.open_direct(alice.id, carol.id)
    bc = await kit.chat.conversations.open_direct(carol.id, bob.id)

    assert len({ab.conversation.id, ac.conversation.id, bc.conversation.id}) == 3


async def test_direct_conversation_with_oneself_is_refused(kit: ChatKit, alice: User) -> None:
    with pytest.raises(ValidationFailed):
        await kit.chat.conversations.open_direct(alice.id, alice.id)

    assert kit.notifier.events == []
    assert (await kit.chat.conversations.list_for_user(alice.id)).items == []


async def test_direct_conversation_with_unknown_user_is_not_found(
    kit: ChatKit, alice: User
) -> None:
    with pytest.raises(NotFound):
        await kit.chat.conversations.open_direct(alice.id, "nobody")

    assert kit.notifier.events == []
    assert (await kit.chat.conversations.list_for_user(alice.id)).items == []


# --- groups -----------------------------------------------------------------------------


async def test_create_group_includes_the_creator_and_dedupes_members(
    kit: ChatKit, alice: User, bob: User, carol: User
) -> None:
    view = await kit.chat.conversations.create_group(
        alice.id, "  Book club  ", [bob.id, carol.id, bob.id, alice.id]
    )

    conversation = view.conversation
    assert conversation.type is ConversationType.GROUP
    assert conversation.name == "Book club"
    assert conversation.member_ids == (alice.id, bob.id, carol.id)
    assert conversation.created_by == alice.id
    assert view.viewer_id == alice.id
    assert set(updates(kit)) == {alice.id, bob.id, carol.id}
    assert (await kit.chat.conversations.get(bob.id, conversation.id)).conversation == conversation


async def test_a_group_may_start_with_the_creator_alone(kit: ChatKit, alice: User) -> None:
    view = await kit.chat.conversations.create_group(alice.id, "Notes to self", [])

    assert view.conversation.member_ids == (alice.id,)
    assert set(updates(kit)) == {alice.id}


async def test_create_group_with_unknown_members_is_not_found_with_their_ids(
    kit: ChatKit, alice: User, bob: User
) -> None:
    with pytest.raises(NotFound) as err:
        await kit.chat.conversations.create_group(
            alice.id, "Ghosts", ["zz-ghost", bob.id, "aa-ghost", "zz-ghost"]
        )

    assert err.value.details == {"userIds": ["aa-ghost", "zz-ghost"]}
    assert kit.notifier.events == []
    assert (await kit.chat.conversations.list_for_user(bob.id)).items == []


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
async def test_create_group_refuses_bad_names(
    kit: ChatKit, alice: User, bob: User, name: str
) -> None:
    with pytest.raises(ValidationFailed) as err:
        await kit.chat.conversations.create_group(alice.id, name, [bob.id])

    assert err.value.details == {"field": "name"}
    assert kit.notifier.events == []


async def test_group_name_of_100_characters_is_accepted(
    kit: ChatKit, alice: User, bob: User
) -> None:
    view = await kit.chat.conversations.create_group(alice.id, "x" * 100, [bob.id])

    assert view.conversation.name == "x" * 100


async def test_create_group_refuses_more_than_the_member_limit(kit: ChatKit, alice: User) -> None:
    too_many = [f"user-{i}" for i in range(GROUP_MAX_MEMBERS)]  # + the creator

    with pytest.raises(ValidationFailed) as err:
        await kit.chat.conversations.create_group(alice.id, "Crowd", too_many)

    assert err.value.details == {"field": "memberIds"}


# --- get and per-viewer views -----------------------------------------------------------


async def test_views_carry_last_message_read_pointer_and_unread_count_per_viewer(
    kit: ChatKit, alice: User, bob: User, carol: User
) -> None:
    group = await kit.chat.conversations.create_group(alice.id, "Trio", [bob.id, carol.id])
    cid = group.conversation.id
    for body in ("one", "two", "three"):
        await kit.chat.messages.send(alice.id, cid, body)
    await kit.chat.messages.send(bob.id, cid, "four")
    await kit.chat.receipts.mark_read(bob.id, cid, 2)

    as_alice = await kit.chat.conversations.get(alice.id, cid)
    as_bob = await kit.chat.conversations.get(bob.id, cid)
    as_carol = await kit.chat.conversations.get(carol.id, cid)

    last = as_alice.conversation.last_message
    assert last is not None
    assert (last.seq, last.body, last.sender_id) == (4, "four", bob.id)
    assert as_alice.conversation.last_seq == 4
    assert (as_alice.last_read_seq, as_alice.unread_count) == (0, 1)  # only bob's "four"
    assert (as_bob.last_read_seq, as_bob.unread_count) == (2, 1)  # "three"; "four" is his
    assert (as_carol.last_read_seq, as_carol.unread_count) == (0, 4)


async def test_last_message_follows_edits_and_deletes(kit: ChatKit, alice: User, bob: User) -> None:
    dm = await kit.chat.conversations.open_direct(alice.id, bob.id)
    cid = dm.conversation.id
    first = (await kit.chat.messages.send(alice.id, cid, "first")).message
    last = (await kit.chat.messages.send(alice.id, cid, "second")).message

    await kit.chat.messages.edit(alice.id, cid, first.id, "first, edited")
    seen = (await kit.chat.conversations.get(bob.id, cid)).conversation.last_message
    assert seen is not None
    assert seen.body == "second"

    await kit.chat.messages.edit(alice.id, cid, last.id, "second, edited")
    seen = (await kit.chat.conversations.get(bob.id, cid)).conversation.last_message
    assert seen is not None
    assert (seen.body, seen.edited_at) == ("second, edited", EPOCH)

    await kit.chat.messages.delete(alice.id, cid, last.id)
    seen = (await kit.chat.conversations.get(bob.id, cid)).conversation.last_message
    assert seen is not None
    assert (seen.id, seen.body, seen.deleted_at) == (last.id, "", EPOCH)


async def test_get_unknown_conversation_is_not_found(kit: ChatKit, alice: User) -> None:
    with pytest.raises(NotFound):
        await kit.chat.conversations.get(alice.id, "no-such-conversation")


# --- listing ----------------------------------------------------------------------------


async def test_list_is_by_most_recent_activity(
    kit: ChatKit, alice: User, bob: User, carol: User, dave: User
) -> None:
    oldest = await kit.chat.conversations.open_direct(alice.id, bob.id)
    kit.clock.advance(seconds=1)
    middle = await kit.chat.conversations.create_group(alice.id, "G", [carol.id])
    kit.clock.advance(seconds=1)
    newest = await kit.chat.conversations.open_direct(dave.id, alice.id)
    kit.clock.advance(seconds=1)

    page = await kit.chat.conversations.list_for_user(alice.id)
    assert [v.conversation.id for v in page.items] == [
        newest.conversation.id,
        middle.conversation.id,
        oldest.conversation.id,
    ]
    assert page.next_cursor is None

    # A message makes the oldest conversation the most recent one.
    await kit.chat.messages.send(bob.id, oldest.conversation.id, "bump")
    page = await kit.chat.conversations.list_for_user(alice.id)
    assert [v.conversation.id for v in page.items] == [
        oldest.conversation.id,
        newest.conversation.id,
        middle.conversation.id,
    ]
    assert [v.unread_count for v in page.items] == [1, 0, 0]
    assert all(v.viewer_id == alice.id for v in page.items)

    # Only one's own conversations.
    page = await kit.chat.conversations.list_for_user(carol.id)
    assert [v.conversation.id for v in page.items] == [middle.conversation.id]


async def test_list_pages_without_duplicates_or_omissions(
    kit: ChatKit, alice: User, register: Callable[..., Awaitable[User]]
) -> None:
    expected = []
    for i in range(7):
        other = await register(f"user{i}")
        view = await kit.chat.conversations.open_direct(alice.id, other.id)
        expected.append(view.conversation.id)
        if i % 3 == 0:  # several conversations share a timestamp: ties broken by id
            kit.clock.advance(seconds=1)
    expected.reverse()

    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await kit.chat.conversations.list_for_user(alice.id, limit=3, cursor=cursor)
        seen.extend(v.conversation.id for v in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
        assert len(page.items) == 3

    assert seen == expected


@pytest.mark.parametrize("limit", [0, 101, -5])
async def test_list_limit_out_of_range_is_refused(kit: ChatKit, alice: User, limit: int) -> None:
    with pytest.raises(ValidationFailed):
        await kit.chat.conversations.list_for_user(alice.id, limit=limit)


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "eyJ1IjoiYWxpY2UifQ",  # a users cursor: {"u":"alice"}
        "eyJ0IjoieWVzdGVyZGF5IiwiYyI6ImlkIn0",  # {"t":"yesterday","c":"id"}
        "eyJ0IjoiMjAyNi0wMS0wMVQwMDowMDowMCIsImMiOiJpZCJ9",  # naive time: no offset
        "eyJ0IjoiMjAyNi0wMS0wMSIsImMiOiJpZCJ9",  # a date only
        "eyJ0IjoxLCJjIjoyfQ",  # {"t":1,"c":2}
    ],
)
async def test_list_with_invalid_cursor_is_a_validation_error(
    kit: ChatKit, alice: User, bob: User, cursor: str
) -> None:
    await kit.chat.conversations.open_direct(alice.id, bob.id)

    with pytest.raises(ValidationFailed) as err:
        await kit.chat.conversations.list_for_user(alice.id, cursor=cursor)
    assert err.value.details == {"field": "cursor"}


@settings(max_examples=40, deadline=None)
@given(
    gaps=st.lists(st.sampled_from([0, 0, 1, 5]), min_size=0, max_size=14),
    bumps=st.lists(st.integers(0, 13), max_size=6),
    limit=st.integers(1, 5),
)
def test_paging_the_list_matches_one_big_page(
    yielding_storage: Callable[[], Storage], gaps: list[int], bumps: list[int], limit: int
) -> None:
    """Whatever the activity times (ties included), pages concatenate to the full list."""

    async def scenario() -> None:
        kit = in_memory_chat(storage=yielding_storage())
        me = (await kit.chat.auth.register("me-myself", PASSWORD)).user
        others = [
            (await kit.chat.auth.register(f"user{i}", PASSWORD)).user for i in range(len(gaps))
        ]
        ids = []
        for other, gap in zip(others, gaps, strict=True):
            kit.clock.advance(seconds=gap)
            ids.append((await kit.chat.conversations.open_direct(me.id, other.id)).conversation.id)
        for bump in bumps:
            if ids:
                kit.clock.advance(seconds=1)
                await kit.chat.messages.send(me.id, ids[bump % len(ids)], "bump")

        everything = await kit.chat.conversations.list_for_user(me.id, limit=100)
        assert everything.next_cursor is None
        full = everything.items
        activity = [(v.conversation.activity_at, v.conversation.id) for v in full]
        assert activity == sorted(activity, reverse=True)
        assert sorted(v.conversation.id for v in full) == sorted(ids)

        paged: list[ConversationView] = []
        cursor: str | None = None
        for _ in range(len(ids) + 1):
            page = await kit.chat.conversations.list_for_user(me.id, limit=limit, cursor=cursor)
            paged.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert [v.conversation.id for v in paged] == [v.conversation.id for v in full]

    asyncio.run(scenario())


# --- members ----------------------------------------------------------------------------


async def test_any_member_adds_a_user_to_a_group(
    kit: ChatKit, alice: User, bob: User, carol: User
) -> None:
    group = await kit.chat.conversations.create_group(alice.id, "G", [bob.id])
    cid = group.conversation.id
    await kit.chat.messages.send(alice.id, cid, "one")
    await kit.chat.messages.send(alice.id, cid, "two")
    await kit.chat.receipts.mark_read(bob.id, cid, 1)
    kit.notifier.clear()

    view = await kit.chat.conversations.add_member(bob.id, cid, carol.id)

    assert view.viewer_id == bob.id
    assert view.conversation.member_ids == (alice.id, bob.id, carol.id)
    told = updates(kit)
    assert set(told) == {alice.id, bob.id, carol.id}
    assert {u: (v.last_read_seq, v.unread_count) for u, v in told.items()} == {
        alice.id: (0, 0),
        bob.id: (1, 1),
        carol.id: (0, 2),
    }
    assert (await kit.chat.conversations.get(carol.id, cid)).conversation.member_ids == (
        alice.id,
        bob.id,
        carol.id,
    )


async def test_adding_an_existing_member_changes_nothing(
    kit: ChatKit, alice: User, bob: User
) -> None:
    group = await kit.chat.conversations.create_group(alice.id, "G", [bob.id])
    kit.notifier.clear()

    view = await kit.chat.conversations.add_member(alice.id, group.conversation.id, bob.id)

    assert view.conversation.member_ids == (alice.id, bob.id)
    assert kit.notifier.events == []


async def test_adding_an_unknown_user_is_not_found(kit: ChatKit, alice: User, bob: User) -> None:
    group = await kit.chat.conversations.create_group(alice.id, "G", [bob.id])
    kit.notifier.clear()

    with pytest.raises(NotFound) as err:
        await kit.chat.conversations.add_member(alice.id, group.conversation.id, "ghost")

    assert err.value.details == {"userIds": ["ghost"]}
    assert kit.notifier.events == []
    view = await kit.chat.conversations.get(alice.id, group.conversation.id)
    assert view.conversation.member_ids == (alice.id, bob.id)


async def test_members_cannot_be_added_to_a_direct_conversation(
    kit: ChatKit, alice: User, bob: User, carol: User
) -> None:
    dm = await kit.chat.conversations.open_direct(alice.id, bob.id)
    kit.notifier.clear()

    with pytest.raises(Forbidden):
        await kit.chat.conversations.add_member(alice.id, dm.conversation.id, carol.id)

    assert kit.notifier.events == []
    with pytest.raises(NotFound):
        await kit.chat.conversations.get(carol.id, dm.conversation.id)


async def test_a_full_group_takes_no_more_members(
    kit: ChatKit, alice: User, register: Callable[..., Awaitable[User]]
) -> None:
    members = [await register(f"member{i:03d}") for i in range(GROUP_MAX_MEMBERS - 1)]
    latecomer = await register("latecomer")
    group = await kit.chat.conversations.create_group(alice.id, "Full", [m.id for m in members])
    assert len(group.conversation.member_ids) == GROUP_MAX_MEMBERS

    with pytest.raises(ValidationFailed):
        await kit.chat.conversations.add_member(alice.id, group.conversation.id, latecomer.id)


async def test_a_member_leaves_a_group(kit: ChatKit, alice: User, bob: User, carol: User) -> None:
    group = await kit.chat.conversations.create_group(alice.id, "G", [bob.id, carol.id])
    cid = group.conversation.id
    kit.notifier.clear()

    await kit.chat.conversations.remove_member(bob.id, cid, bob.id)

    told = updates(kit)
    # Remaining members and the one who left hear of it.
    assert set(told) == {alice.id, bob.id, carol.id}
    assert all(v.conversation.member_ids == (alice.id, carol.id) for v in told.values())
    with pytest.raises(NotFound):
        await kit.chat.conversations.get(bob.id, cid)
    assert (await kit.chat.conversations.list_for_user(bob.id)).items == []
    with pytest.raises(NotFound):
        await kit.chat.messages.send(bob.id, cid, "still here?")


async def test_the_creator_may_leave_too(kit: ChatKit, alice: User, bob: User) -> None:
    group = await kit.chat.conversations.create_group(alice.id, "G", [bob.id])

    await kit.chat.conversations.remove_member(alice.id, group.conversation.id, alice.id)

    view = await kit.chat.conversations.get(bob.id, group.conversation.id)
    assert view.conversation.member_ids == (bob.id,)


async def test_the_creator_removes_another_member(
    kit: ChatKit, alice: User, bob: User, carol: User
) -> None:
    group = await kit.chat.conversations.create_group(alice.id, "G", [bob.id, carol.id])
    cid = group.conversation.id
    kit.notifier.clear()

    await kit.chat.conversations.remove_member(alice.id, cid, carol.id)

    assert set(updates(kit)) == {alice.id, bob.id, carol.id}
    assert (await kit.chat.conversations.get(bob.id, cid)).conversation.member_ids == (
        alice.id,
        bob.id,
    )
    with pytest.raises(NotFound):
        await kit.chat.conversations.get(carol.id, cid)


async def test_only_the_creator_removes_others(
    kit: ChatKit, alice: User, bob: User, carol: User
) -> None:
    group = await kit.chat.conversations.create_group(alice.id, "G", [bob.id, carol.id])
    cid = group.conversation.id
    kit.notifier.clear()

    with pytest.raises(Forbidden):
        await kit.chat.conversations.remove_member(bob.id, cid, carol.id)
    with pytest.raises(Forbidden):
        await kit.chat.conversations.remove_member(bob.id, cid, alice.id)

    assert kit.notifier.events == []
    view = await kit.chat.conversations.get(carol.id, cid)
    assert view.conversation.member_ids == (alice.id, bob.id, carol.id)


async def test_the_creator_removing_a_non_member_is_not_found(
    kit: ChatKit, alice: User, bob: User, carol: User
) -> None:
    group = await kit.chat.conversations.create_group(alice.id, "G", [bob.id])
    kit.notifier.clear()

    with pytest.raises(NotFound):
        await kit.chat.conversations.remove_member(alice.id, group.conversation.id, carol.id)
    assert kit.notifier.events == []


@pytest.mark.parametrize("who", ["self", "other"])
async def test_nobody_is_removed_from_a_direct_conversation(
    kit: ChatKit, alice: User, bob: User, who: str
) -> None:
    dm = await kit.chat.conversations.open_direct(alice.id, bob.id)
    kit.notifier.clear()

    target = alice.id if who == "self" else bob.id
    with pytest.raises(Forbidden):
        await kit.chat.conversations.remove_member(alice.id, dm.conversation.id, target)

    assert kit.notifier.events == []
    view = await kit.chat.conversations.get(bob.id, dm.conversation.id)
    assert set(view.conversation.member_ids) == {alice.id, bob.id}


async def test_a_removed_member_can_be_added_back(
    kit: ChatKit, alice: User, bob: User, carol: User
) -> None:
    group = await kit.chat.conversations.create_group(alice.id, "G", [bob.id, carol.id])
    cid = group.conversation.id
    await kit.chat.conversations.remove_member(alice.id, cid, carol.id)

    view = await kit.chat.conversations.add_member(bob.id, cid, carol.id)

    assert view.conversation.member_ids == (alice.id, bob.id, carol.id)
    assert (await kit.chat.conversations.get(carol.id, cid)).viewer_id == carol.id
