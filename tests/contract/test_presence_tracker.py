"""Contract of PresenceTracker, for every adapter."""

from __future__ import annotations

import asyncio

from chatcore.ports import PresenceTracker


async def test_the_first_connection_brings_a_user_online(
    presence_tracker: PresenceTracker,
) -> None:
    assert await presence_tracker.online(["u-a"]) == set()

    first = await presence_tracker.connect("u-a", "tab-1")
    second = await presence_tracker.connect("u-a", "tab-2")

    assert (first, second) == (True, False)
    assert await presence_tracker.online(["u-a", "u-b"]) == {"u-a"}


async def test_the_last_disconnection_takes_a_user_offline(
    presence_tracker: PresenceTracker,
) -> None:
    await presence_tracker.connect("u-a", "tab-1")
    await presence_tracker.connect("u-a", "tab-2")

    assert await presence_tracker.disconnect("u-a", "tab-1") is False
    assert await presence_tracker.online(["u-a"]) == {"u-a"}
    assert await presence_tracker.disconnect("u-a", "tab-2") is True
    assert await presence_tracker.online(["u-a"]) == set()


async def test_unknown_disconnections_change_nothing(presence_tracker: PresenceTracker) -> None:
    await presence_tracker.connect("u-a", "tab-1")

    assert await presence_tracker.disconnect("u-a", "tab-9") is False
    assert await presence_tracker.disconnect("u-z", "tab-1") is False
    assert await presence_tracker.online(["u-a", "u-z"]) == {"u-a"}


async def test_connecting_the_same_connection_twice_counts_it_once(
    presence_tracker: PresenceTracker,
) -> None:
    assert await presence_tracker.connect("u-a", "tab-1") is True
    assert await presence_tracker.connect("u-a", "tab-1") is False

    assert await presence_tracker.disconnect("u-a", "tab-1") is True
    assert await presence_tracker.online(["u-a"]) == set()


async def test_users_are_tracked_independently(presence_tracker: PresenceTracker) -> None:
    await presence_tracker.connect("u-a", "c-1")
    await presence_tracker.connect("u-b", "c-1")  # connection ids need not be unique per user

    await presence_tracker.disconnect("u-a", "c-1")

    assert await presence_tracker.online(["u-a", "u-b", "u-c"]) == {"u-b"}
    assert await presence_tracker.online([]) == set()


async def test_concurrent_connects_and_disconnects_report_one_transition_each(
    presence_tracker: PresenceTracker,
) -> None:
    tabs = [f"tab-{i}" for i in range(10)]

    came_online = await asyncio.gather(*(presence_tracker.connect("u-a", t) for t in tabs))
    went_offline = await asyncio.gather(*(presence_tracker.disconnect("u-a", t) for t in tabs))

    assert sum(came_online) == 1
    assert sum(went_offline) == 1
    assert await presence_tracker.online(["u-a"]) == set()
