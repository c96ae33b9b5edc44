"""Contract of UserRepository, for every adapter."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from chatcore.chat import Storage
from chatcore.errors import Conflict
from chatcore.models import User
from chatcore.testing import factories as make


async def _add(storage: Storage, *users: User) -> None:
    for u in users:
        await storage.users.add(u, f"hash-of-{u.username}")


def _names(users: list[User]) -> list[str]:
    return [u.username for u in users]


async def test_add_then_get_returns_the_user_with_utc_millisecond_times(storage: Storage) -> None:
    alice = make.user("alice", "Alice A.")
    await _add(storage, alice)

    stored = await storage.users.get(alice.id)

    assert stored == alice
    assert stored is not None
    assert stored.created_at.utcoffset() == timedelta(0)
    assert stored.created_at.microsecond == 123_000


async def test_get_unknown_user_is_none(storage: Storage) -> None:
    assert await storage.users.get("nobody") is None


async def test_username_is_unique_case_insensitively(storage: Storage) -> None:
    alice = make.user("Alice")
    await _add(storage, alice)

    with pytest.raises(Conflict):
        await storage.users.add(make.user("aLICE"), "other-hash")

    credentials = await storage.users.find_credentials("alice")
    assert credentials is not None
    assert credentials.user == alice
    assert credentials.password_hash == "hash-of-Alice"


async def test_get_many_returns_existing_users_only(storage: Storage) -> None:
    alice, bob = make.user("alice"), make.user("bob")
    await _add(storage, alice, bob)

    found = await storage.users.get_many([bob.id, "ghost", alice.id, bob.id])

    assert sorted(found, key=lambda u: u.id) == sorted([alice, bob], key=lambda u: u.id)
    assert await storage.users.get_many([]) == []


async def test_find_credentials_is_case_insensitive(storage: Storage) -> None:
    bob = make.user("Bob")
    await _add(storage, bob)

    for spelling in ("Bob", "bob", "BOB"):
        credentials = await storage.users.find_credentials(spelling)
        assert credentials is not None
        assert credentials.user == bob
        assert credentials.password_hash == "hash-of-Bob"
    assert await storage.users.find_credentials("bobby") is None


async def _directory(storage: Storage) -> dict[str, User]:
    users = {
        "alice": make.user("alice", "Wonderland"),
        "Alfred": make.user("Alfred", "Butler"),
        "bob": make.user("bob", "Al Bundy"),
        "carol": make.user("carol", "Carol"),
        "a.b": make.user("a.b", "Dotty"),
        "axb": make.user("axb", "Crossed"),
    }
    await _add(storage, *users.values())
    return users


async def test_search_matches_a_prefix_of_username_or_display_name(storage: Storage) -> None:
    await _directory(storage)

    found = await storage.users.search("al", limit=10, after_username=None, exclude_id=None)

    # Ordered by lower-cased username; "bob" matches by display name ("Al Bundy").
    assert _names(found) == ["Alfred", "alice", "bob"]


async def test_search_is_case_insensitive_and_prefix_only(storage: Storage) -> None:
    await _directory(storage)

    assert _names(
        await storage.users.search("WONDER", limit=10, after_username=None, exclude_id=None)
    ) == ["alice"]
    # "lice" is inside "alice", not a prefix.
    assert await storage.users.search("lice", limit=10, after_username=None, exclude_id=None) == []


async def test_search_treats_the_query_literally(storage: Storage) -> None:
    await _directory(storage)

    found = await storage.users.search("a.", limit=10, after_username=None, exclude_id=None)

    assert _names(found) == ["a.b"]
    for query in ("^a", ".*", "$", "a|b", "[a]"):
        found = await storage.users.search(query, limit=10, after_username=None, exclude_id=None)
        assert found == [], query


async def test_search_without_query_lists_everyone_in_username_order(storage: Storage) -> None:
    users = await _directory(storage)

    found = await storage.users.search(None, limit=10, after_username=None, exclude_id=None)

    assert _names(found) == sorted(users, key=str.lower)


async def test_search_pages_after_a_username_and_honours_the_limit(storage: Storage) -> None:
    users = await _directory(storage)
    seen: list[str] = []
    after: str | None = None
    while True:
        page = await storage.users.search(None, limit=2, after_username=after, exclude_id=None)
        assert len(page) <= 2
        if not page:
            break
        seen.extend(_names(page))
        after = page[-1].username.lower()

    assert seen == sorted(users, key=str.lower)


async def test_search_leaves_out_the_excluded_user(storage: Storage) -> None:
    users = await _directory(storage)

    found = await storage.users.search(
        "al", limit=10, after_username=None, exclude_id=users["alice"].id
    )

    assert _names(found) == ["Alfred", "bob"]


async def test_set_last_seen_is_stored(storage: Storage) -> None:
    alice = make.user("alice")
    await _add(storage, alice)
    seen = make.T0 + timedelta(minutes=5, milliseconds=7)

    await storage.users.set_last_seen(alice.id, seen)
    await storage.users.set_last_seen("ghost", seen)  # unknown users are ignored

    stored = await storage.users.get(alice.id)
    assert stored is not None
    assert stored.last_seen_at == seen
    assert stored.last_seen_at.tzinfo is not None
    assert stored.last_seen_at.astimezone(UTC) == seen
