"""GET /api/search/messages (contract v1.1): results, paging, and bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from httpkit import ApiClient, assert_error, shaped

from chatcore.testing import FixedClock
from entrypoints.http.schemas import MessageSearchOut
from support.accounts import Account
from support.app import on_every_backend

URL = "/api/search/messages"


async def _search(http: httpx.AsyncClient, me: Account, **params: Any) -> dict[str, Any]:
    response = await http.get(URL, params=params, headers=me.headers)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = shaped(MessageSearchOut, response.json())
    return page


@on_every_backend
async def test_finds_messages_of_the_callers_conversations_newest_first(
    http: httpx.AsyncClient, api: ApiClient, clock: FixedClock
) -> None:
    alice, bob, carol = await api.register("alice"), await api.register("bob"), await api.register()
    ours = await api.group(alice, bob)
    theirs = await api.group(bob, carol)
    first = await api.sent(bob, ours["id"], "Rendez-vous au Café")
    clock.advance(seconds=1)
    await api.sent(bob, theirs["id"], "cafe for carol only")
    clock.advance(seconds=1)
    second = await api.sent(alice, ours["id"], "café? sure, at noon")
    clock.advance(seconds=1)
    edited = await api.sent(alice, ours["id"], "no coffee today")
    await http.patch(
        f"/api/conversations/{ours['id']}/messages/{edited['id']}",
        json={"body": "no cafe today"},
        headers=alice.headers,
    )
    deleted = await api.sent(alice, ours["id"], "cafe cafe cafe")
    await http.delete(
        f"/api/conversations/{ours['id']}/messages/{deleted['id']}", headers=alice.headers
    )

    page = await _search(http, alice, q="CAFE")

    assert [m["body"] for m in page["messages"]] == [
        "no cafe today",
        second["body"],
        first["body"],
    ]
    assert page["messages"][1] == second
    assert page["nextCursor"] is None
    assert (await _search(http, alice, q="caf no"))["messages"][0]["id"] == edited["id"]
    assert (await _search(http, alice, q="coffee"))["messages"] == []
    one = await _search(http, bob, q="cafe", conversationId=theirs["id"])
    assert [m["body"] for m in one["messages"]] == ["cafe for carol only"]


@on_every_backend
async def test_pages_give_every_match_once(
    http: httpx.AsyncClient, api: ApiClient, clock: FixedClock
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    group = await api.group(alice, bob)
    sent = []
    for i in range(7):
        sent.append(await api.sent(alice, group["id"], f"standup note {i}"))
        if i % 2:
            clock.advance(milliseconds=1)

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"q": "stand", "limit": "3", **({"cursor": cursor} if cursor else {})}
        page = await _search(http, bob, **params)
        seen += [m["id"] for m in page["messages"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(m["id"] for m in sent)
    assert len(seen) == len(set(seen)) == 7


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": " ?! -- "}, "q"),
        ({"q": "a", "limit": "0"}, "limit"),
        ({"q": "a", "limit": "51"}, "limit"),
        ({"q": "a", "limit": "ten"}, "limit"),
        ({"q": "a", "cursor": "not-a-cursor"}, "cursor"),
        ({"q[$gt]": ""}, "q"),
        ({"q": "a", "conversationId": "c" * 65}, "conversationId"),
    ],
)
async def test_bad_input_is_a_validation_error(
    http: httpx.AsyncClient, api: ApiClient, params: dict[str, str], field: str
) -> None:
    me = await api.register()
    response = await http.get(URL, params=params, headers=me.headers)
    error = assert_error(response, 422, "validation_error")
    assert field in str(error.get("details")), error


async def test_two_hundred_characters_are_allowed(http: httpx.AsyncClient, api: ApiClient) -> None:
    me = await api.register()
    assert (await _search(http, me, q="y" * 200))["messages"] == []


async def test_a_foreign_or_unknown_conversation_is_not_found(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me, bob, carol = await api.register(), await api.register(), await api.register()
    theirs = await api.group(bob, carol)
    for conversation_id in (theirs["id"], "nope"):
        response = await http.get(
            URL, params={"q": "hi", "conversationId": conversation_id}, headers=me.headers
        )
        assert_error(response, 404, "not_found")


async def test_needs_a_token(http: httpx.AsyncClient) -> None:
    assert_error(await http.get(URL, params={"q": "hi"}), 401, "unauthorized")
