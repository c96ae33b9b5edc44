"""UserService: me, get by id, search with cursor paging."""

from __future__ import annotations

import asyncio
import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcore.errors import NotFound, Unauthorized, ValidationFailed
from chatcore.models import User
from chatcore.testing import ChatKit, in_memory_chat

PASSWORD = "correct horse battery"


async def test_me_is_the_callers_own_user(kit: ChatKit, alice: User, bob: User) -> None:
    assert await kit.chat.users.me(alice.id) == alice
    assert await kit.chat.users.me(bob.id) == bob


async def test_get_returns_another_user(kit: ChatKit, alice: User, bob: User) -> None:
    assert await kit.chat.users.get(bob.id) == bob


@pytest.mark.parametrize("user_id", ["", "nobody", "id-99999999"])
async def test_get_unknown_user_is_not_found(kit: ChatKit, alice: User, user_id: str) -> None:
    with pytest.raises(NotFound):
        await kit.chat.users.get(user_id)
    # A token whose user is gone: the credentials are what is wrong (401, not 404).
    with pytest.raises(Unauthorized):
        await kit.chat.users.me(user_id)


async def names(kit: ChatKit, viewer: User, **kwargs: object) -> list[str]:
    page = await kit.chat.users.search(viewer.id, **kwargs)  # type: ignore[arg-type]
    return [u.username for u in page.items]


@pytest.fixture
async def crowd(kit: ChatKit) -> dict[str, User]:
    people = {}
    for username, display in [
        ("alice", "Alice Liddell"),
        ("Alfred", "Butler"),
        ("bob", "Bob Builder"),
        ("zed", "Alina Z"),
        ("malice", "Mal"),
        ("carol", "Carol Danvers"),
    ]:
        people[username] = (await kit.chat.auth.register(username, PASSWORD, display)).user
    return people


async def test_search_matches_username_or_display_name_prefix_case_insensitively(
    kit: ChatKit, crowd: dict[str, User]
) -> None:
    viewer = crowd["bob"]

    # "Al" prefixes alice and Alfred (usernames) and zed ("Alina Z"), not malice (infix).
    assert await names(kit, viewer, search="al") == ["Alfred", "alice", "zed"]
    assert await names(kit, viewer, search="AL") == ["Alfred", "alice", "zed"]
    assert await names(kit, viewer, search="  aLi ") == ["alice", "zed"]
    assert await names(kit, viewer, search="butler") == ["Alfred"]
    assert await names(kit, viewer, search="carol d") == ["carol"]
    assert await names(kit, viewer, search="lice") == []


async def test_search_leaves_the_viewer_out(kit: ChatKit, crowd: dict[str, User]) -> None:
    assert await names(kit, crowd["alice"], search="al") == ["Alfred", "zed"]
    assert "bob" not in await names(kit, crowd["bob"])


@pytest.mark.parametrize("search", [None, "", "   "])
async def test_empty_search_lists_everyone_else_by_username(
    kit: ChatKit, crowd: dict[str, User], search: str | None
) -> None:
    assert await names(kit, crowd["carol"], search=search) == [
        "Alfred",
        "alice",
        "bob",
        "malice",
        "zed",
    ]


async def test_search_longer_than_64_characters_is_refused(
    kit: ChatKit, crowd: dict[str, User]
) -> None:
    assert await names(kit, crowd["bob"], search="a" * 64) == []
    with pytest.raises(ValidationFailed) as err:
        await kit.chat.users.search(crowd["bob"].id, search="a" * 65)
    assert err.value.details == {"field": "search"}


@pytest.mark.parametrize("limit", [0, -1, 101])
async def test_search_limit_out_of_range_is_refused(kit: ChatKit, alice: User, limit: int) -> None:
    with pytest.raises(ValidationFailed) as err:
        await kit.chat.users.search(alice.id, limit=limit)
    assert err.value.details == {"field": "limit"}


async def test_search_pages_through_everyone_without_duplicates_or_omissions(
    kit: ChatKit, crowd: dict[str, User]
) -> None:
    viewer = crowd["carol"]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await kit.chat.users.search(viewer.id, limit=2, cursor=cursor)
        pages += 1
        assert 1 <= len(page.items) <= 2
        seen.extend(u.username for u in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break

    assert pages == 3
    assert seen == ["Alfred", "alice", "bob", "malice", "zed"]


async def test_a_page_that_ends_exactly_at_the_last_user_has_no_next_cursor(
    kit: ChatKit, crowd: dict[str, User]
) -> None:
    viewer = crowd["carol"]
    first = await kit.chat.users.search(viewer.id, limit=3)
    second = await kit.chat.users.search(viewer.id, limit=2, cursor=first.next_cursor)
    everyone = await kit.chat.users.search(viewer.id, limit=5)

    assert first.next_cursor is not None
    assert [u.username for u in second.items] == ["malice", "zed"]
    assert second.next_cursor is None
    assert everyone.next_cursor is None
    assert len(everyone.items) == 5


async def test_search_paging_keeps_the_filter(kit: ChatKit, crowd: dict[str, User]) -> None:
    viewer = crowd["bob"]
    first = await kit.chat.users.search(viewer.id, search="al", limit=1)
    second = await kit.chat.users.search(viewer.id, search="al", limit=1, cursor=first.next_cursor)
    third = await kit.chat.users.search(viewer.id, search="al", limit=1, cursor=second.next_cursor)

    assert [u.username for u in (*first.items, *second.items, *third.items)] == [
        "Alfred",
        "alice",
        "zed",
    ]
    assert third.next_cursor is None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!!",
        "not a cursor",
        "é",
        _b64(b"not json"),
        _b64(b"[1, 2]"),
        _b64(b'"alice"'),
        _b64(b'{"u": 5}'),
        _b64(b'{"t": "2026-01-01T00:00:00+00:00", "c": "x"}'),
        _b64(b"\xff\xfe"),
        _b64(b"[" * 50_000),
    ],
)
async def test_invalid_cursor_is_a_validation_error(kit: ChatKit, alice: User, cursor: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        await kit.chat.users.search(alice.id, cursor=cursor)
    assert err.value.details == {"field": "cursor"}


usernames = st.lists(
    st.from_regex(r"[A-Za-z0-9_.\-]{3,12}", fullmatch=True),
    min_size=1,
    max_size=25,
    unique_by=str.lower,
)


@settings(max_examples=60, deadline=None)
@given(usernames=usernames, limit=st.integers(1, 8), viewer_index=st.integers(0, 24))
def test_paging_concatenates_to_the_full_sorted_list(
    usernames: list[str], limit: int, viewer_index: int
) -> None:
    async def scenario() -> None:
        kit = in_memory_chat()
        users = [(await kit.chat.auth.register(n, PASSWORD)).user for n in usernames]
        viewer = users[viewer_index % len(users)]

        collected: list[str] = []
        cursor: str | None = None
        for _ in range(len(users) + 1):
            page = await kit.chat.users.search(viewer.id, limit=limit, cursor=cursor)
            assert len(page.items) <= limit
            assert page.items or cursor is None  # only the first page may be empty
            collected.extend(u.id for u in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        else:
            pytest.fail("paging did not terminate")

        expected = sorted((u for u in users if u.id != viewer.id), key=lambda u: u.username.lower())
        assert collected == [u.id for u in expected]

    asyncio.run(scenario())
