"""PresenceService (with LocalPresenceTracker): multi-tab online/offline, lastSeenAt,
who hears of it, and presence queries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chatcore.errors import ValidationFailed
from chatcore.limits import PRESENCE_QUERY_MAX
from chatcore.models import Presence, User
from chatcore.system import LocalPresenceTracker
from chatcore.testing import EPOCH, ChatKit


@pytest.fixture
async def contacts(kit: ChatKit, alice: User, bob: User, carol: User, dave: User) -> None:
    """alice-bob direct, alice+carol group; dave shares nothing with alice."""
    await kit.chat.conversations.open_direct(alice.id, bob.id)
    await kit.chat.conversations.create_group(carol.id, "G", [alice.id])
    await kit.chat.conversations.open_direct(bob.id, dave.id)
    kit.notifier.clear()


@pytest.mark.usefixtures("contacts")
async def test_several_tabs_go_online_once_and_offline_once(
    kit: ChatKit, alice: User, bob: User, carol: User
) -> None:
    presence = kit.chat.presence

    assert await presence.connected(alice.id, "tab-1") is True
    assert await presence.connected(alice.id, "tab-2") is False
    assert await presence.connected(alice.id, "phone") is False
    [online] = kit.notifier.events
    assert (online.name, online.payload) == ("userOnline", {"userId": alice.id})
    assert set(online.recipient_ids) == {bob.id, carol.id}
    kit.notifier.clear()

    assert await presence.disconnected(alice.id, "tab-1") is False
    kit.clock.advance(minutes=2)
    assert await presence.disconnected(alice.id, "phone") is False
    assert kit.notifier.events == []
    assert (await presence.query([alice.id]))[0].online is True

    kit.clock.advance(minutes=3)
    assert await presence.disconnected(alice.id, "tab-2") is True

    left_at = EPOCH.replace(minute=5)
    [offline] = kit.notifier.events
    assert (offline.name, offline.payload) == (
        "userOffline",
        {"userId": alice.id, "lastSeenAt": left_at},
    )
    assert set(offline.recipient_ids) == {bob.id, carol.id}
    assert (await kit.chat.users.get(alice.id)).last_seen_at == left_at
    assert await presence.query([alice.id]) == [
        Presence(user_id=alice.id, online=False, last_seen_at=left_at)
    ]


@pytest.mark.usefixtures("contacts")
async def test_coming_back_goes_online_again_and_keeps_the_last_seen_time(
    kit: ChatKit, alice: User
) -> None:
    await kit.chat.presence.connected(alice.id, "tab")
    kit.clock.set(datetime(2026, 3, 4, 5, 6, 7, 891_234, tzinfo=UTC))
    await kit.chat.presence.disconnected(alice.id, "tab")
    kit.clock.advance(days=1)
    kit.notifier.clear()

    assert await kit.chat.presence.connected(alice.id, "tab") is True

    assert [e.name for e in kit.notifier.events] == ["userOnline"]
    # Stored to the millisecond, like every time the domain hands out.
    seen_at = datetime(2026, 3, 4, 5, 6, 7, 891_000, tzinfo=UTC)
    assert await kit.chat.presence.query([alice.id]) == [
        Presence(user_id=alice.id, online=True, last_seen_at=seen_at)
    ]


@pytest.mark.usefixtures("contacts")
async def test_presence_events_reach_only_users_sharing_a_conversation(
    kit: ChatKit, alice: User, bob: User, dave: User
) -> None:
    await kit.chat.presence.connected(bob.id, "b")
    await kit.chat.presence.connected(dave.id, "d")

    [bob_online, dave_online] = kit.notifier.events
    assert set(bob_online.recipient_ids) == {alice.id, dave.id}
    assert set(dave_online.recipient_ids) == {bob.id}


async def test_a_user_with_no_conversations_tells_nobody(kit: ChatKit, alice: User) -> None:
    await kit.chat.presence.connected(alice.id, "tab")
    await kit.chat.presence.disconnected(alice.id, "tab")

    assert [(e.name, e.recipient_ids) for e in kit.notifier.events] == [
        ("userOnline", ()),
        ("userOffline", ()),
    ]


async def test_disconnecting_an_unknown_connection_changes_nothing(
    kit: ChatKit, alice: User
) -> None:
    assert await kit.chat.presence.disconnected(alice.id, "never-connected") is False
    await kit.chat.presence.connected(alice.id, "tab")
    assert await kit.chat.presence.disconnected(alice.id, "other-tab") is False

    assert [e.name for e in kit.notifier.events] == ["userOnline"]
    assert (await kit.chat.users.get(alice.id)).last_seen_at is None
    assert (await kit.chat.presence.query([alice.id]))[0].online is True


async def test_the_same_connection_counts_once(kit: ChatKit, alice: User) -> None:
    assert await kit.chat.presence.connected(alice.id, "tab") is True
    assert await kit.chat.presence.connected(alice.id, "tab") is False

    assert await kit.chat.presence.disconnected(alice.id, "tab") is True
    assert await kit.chat.presence.disconnected(alice.id, "tab") is False
    assert [e.name for e in kit.notifier.events] == ["userOnline", "userOffline"]


async def test_query_returns_existing_users_in_the_order_asked(
    kit: ChatKit, alice: User, bob: User, carol: User
) -> None:
    await kit.chat.presence.connected(bob.id, "b")

    found = await kit.chat.presence.query([carol.id, "ghost", bob.id, alice.id, carol.id])

    assert found == [
        Presence(user_id=carol.id, online=False, last_seen_at=None),
        Presence(user_id=bob.id, online=True, last_seen_at=None),
        Presence(user_id=alice.id, online=False, last_seen_at=None),
    ]


async def test_query_of_nobody_is_empty(kit: ChatKit) -> None:
    assert await kit.chat.presence.query([]) == []
    assert await kit.chat.presence.query(["ghost"]) == []


async def test_query_size_is_limited_after_removing_duplicates(kit: ChatKit, alice: User) -> None:
    at_limit = [alice.id] + [f"u{i}" for i in range(PRESENCE_QUERY_MAX - 1)]
    assert await kit.chat.presence.query(at_limit * 2) == [
        Presence(user_id=alice.id, online=False, last_seen_at=None)
    ]

    with pytest.raises(ValidationFailed) as err:
        await kit.chat.presence.query([*at_limit, "one-too-many"])
    assert err.value.details == {"field": "userIds"}


async def test_local_tracker_counts_connections_per_user() -> None:
    tracker = LocalPresenceTracker()

    assert await tracker.connect("u1", "a") is True
    assert await tracker.connect("u1", "b") is False
    assert await tracker.connect("u2", "a") is True  # connection ids are per user
    assert await tracker.online(["u1", "u2", "u3"]) == {"u1", "u2"}
    assert await tracker.disconnect("u1", "a") is False
    assert await tracker.disconnect("u2", "b") is False
    assert await tracker.disconnect("u1", "b") is True
    assert await tracker.online(["u1", "u2"]) == {"u2"}


@pytest.mark.usefixtures("contacts")
async def test_users_swept_offline_get_last_seen_and_one_event_each(
    kit: ChatKit, alice: User, bob: User, carol: User
) -> None:
    await kit.chat.presence.went_offline([alice.id, alice.id])
    [offline] = kit.notifier.events
    assert offline.name == "userOffline"
    assert offline.payload == {"userId": alice.id, "lastSeenAt": kit.clock.now()}
    assert set(offline.recipient_ids) == {bob.id, carol.id}
    assert (await kit.chat.users.get(alice.id)).last_seen_at == kit.clock.now()


@pytest.mark.usefixtures("contacts")
async def test_users_counted_again_are_announced_online_once(
    kit: ChatKit, alice: User, bob: User, carol: User
) -> None:
    await kit.chat.presence.came_online([alice.id, alice.id])
    [online] = kit.notifier.events
    assert (online.name, online.payload) == ("userOnline", {"userId": alice.id})
    assert set(online.recipient_ids) == {bob.id, carol.id}
