"""Conversations over HTTP: groups, direct, listing, members, read receipts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from httpkit import ApiClient, assert_error, shaped

from chatcore.testing import FixedClock
from entrypoints.http.schemas import (
    ConversationOut,
    ConversationPageOut,
    ReadReceiptOut,
    ReceiptsOut,
)
from support.app import on_every_backend
from support.wire_keys import CONVERSATION_KEYS, RECEIPT_KEYS


async def test_create_group_returns_201_with_the_creator_as_member(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me, a, b = await api.register(), await api.register(), await api.register()

    response = await http.post(
        "/api/conversations",
        json={"type": "group", "name": " Team ", "memberIds": [a.id, b.id]},
        headers=me.headers,
    )

    assert response.status_code == 201
    group = shaped(ConversationOut, response.json())
    assert set(group) == CONVERSATION_KEYS
    assert group["type"] == "group"
    assert group["name"] == "Team"
    assert set(group["memberIds"]) == {me.id, a.id, b.id}
    assert (group["lastMessage"], group["lastSeq"], group["unreadCount"]) == (None, 0, 0)


async def test_a_group_with_an_unknown_member_is_not_found(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me = await api.register()
    response = await http.post(
        "/api/conversations", json={"name": "g", "memberIds": ["ghost"]}, headers=me.headers
    )
    error = assert_error(response, 404, "not_found")
    assert error["details"] == {"userIds": ["ghost"]}


@pytest.mark.parametrize(
    "body",
    [
        {"type": "direct", "name": "g", "memberIds": []},
        {"memberIds": []},
        {"name": "", "memberIds": []},
        {"name": "g", "memberIds": "someone"},
        {"name": "g", "memberIds": [1, 2]},
    ],
)
async def test_invalid_groups_are_validation_errors(
    http: httpx.AsyncClient, api: ApiClient, body: dict[str, Any]
) -> None:
    me = await api.register()
    response = await http.post("/api/conversations", json=body, headers=me.headers)
    assert_error(response, 422, "validation_error")


async def test_direct_is_get_or_create(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, other = await api.register(), await api.register()

    first = await http.post(f"/api/conversations/direct/{other.id}", headers=me.headers)
    second = await http.post(f"/api/conversations/direct/{me.id}", headers=other.headers)

    assert first.status_code == second.status_code == 200
    conversation = shaped(ConversationOut, first.json())
    assert conversation["type"] == "direct"
    assert conversation["name"] is None
    assert sorted(conversation["memberIds"]) == sorted([me.id, other.id])
    assert second.json()["id"] == conversation["id"]


async def test_direct_with_oneself_or_nobody_fails(http: httpx.AsyncClient, api: ApiClient) -> None:
    me = await api.register()
    self_dm = await http.post(f"/api/conversations/direct/{me.id}", headers=me.headers)
    assert_error(self_dm, 422, "validation_error")
    ghost = await http.post("/api/conversations/direct/ghost", headers=me.headers)
    assert_error(ghost, 404, "not_found")


async def test_get_a_conversation_as_the_member_sees_it(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    await api.sent(other, dm["id"], "one")
    await api.sent(other, dm["id"], "two")

    response = await http.get(f"/api/conversations/{dm['id']}", headers=me.headers)

    assert response.status_code == 200
    seen = shaped(ConversationOut, response.json())
    assert (seen["lastSeq"], seen["lastReadSeq"], seen["unreadCount"]) == (2, 0, 2)
    assert seen["lastMessage"]["body"] == "two"


async def test_non_members_get_404_not_403(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, other, outsider = await api.register(), await api.register(), await api.register()
    dm = await api.direct(me, other)
    message = await api.sent(me, dm["id"])
    cid = dm["id"]

    attempts = [
        ("GET", f"/api/conversations/{cid}", None),
        ("GET", f"/api/conversations/{cid}/messages", None),
        ("POST", f"/api/conversations/{cid}/messages", {"body": "hi"}),
        ("PATCH", f"/api/conversations/{cid}/messages/{message['id']}", {"body": "x"}),
        ("DELETE", f"/api/conversations/{cid}/messages/{message['id']}", None),
        ("POST", f"/api/conversations/{cid}/read", {"upToSeq": 1}),
        ("GET", f"/api/conversations/{cid}/receipts", None),
        ("POST", f"/api/conversations/{cid}/members", {"userId": outsider.id}),
        ("DELETE", f"/api/conversations/{cid}/members/{me.id}", None),
    ]
    for method, path, body in attempts:
        response = await http.request(method, path, json=body, headers=outsider.headers)
        unknown = await http.request(
            method, path.replace(cid, "no-such-id"), json=body, headers=outsider.headers
        )
        # Same answer as for an id that does not exist: ids can't be probed.
        assert_error(response, 404, "not_found")
        assert response.json() == unknown.json(), path


@on_every_backend
async def test_list_is_most_recent_activity_first(
    http: httpx.AsyncClient, api: ApiClient, clock: FixedClock
) -> None:
    me, a, b = await api.register(), await api.register(), await api.register()
    with_a = await api.direct(me, a)
    clock.advance(seconds=1)
    with_b = await api.direct(me, b)
    clock.advance(seconds=1)
    group = await api.group(me, a, b)
    clock.advance(seconds=1)
    await api.sent(a, with_a["id"], "newest")

    response = await http.get("/api/conversations", headers=me.headers)

    assert response.status_code == 200
    listing = shaped(ConversationPageOut, response.json())
    assert set(listing) == {"conversations", "nextCursor"}
    assert [c["id"] for c in listing["conversations"]] == [with_a["id"], group["id"], with_b["id"]]
    assert listing["conversations"][0]["unreadCount"] == 1
    assert listing["nextCursor"] is None


@on_every_backend
async def test_list_pages_with_a_cursor(
    http: httpx.AsyncClient, api: ApiClient, clock: FixedClock
) -> None:
    me = await api.register()
    created = []
    for _ in range(5):
        created.append((await api.direct(me, await api.register()))["id"])
        clock.advance(seconds=1)

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/api/conversations", params=params, headers=me.headers)).json()
        seen += [c["id"] for c in page["conversations"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break

    assert seen == created[::-1]  # newest first, each exactly once


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "x"}, {"cursor": "not-a-cursor"}])
async def test_bad_list_parameters_are_validation_errors(
    http: httpx.AsyncClient, api: ApiClient, params: dict[str, str]
) -> None:
    me = await api.register()
    response = await http.get("/api/conversations", params=params, headers=me.headers)
    assert_error(response, 422, "validation_error")


async def test_add_a_member_to_a_group(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, a, newcomer = await api.register(), await api.register(), await api.register()
    group = await api.group(me, a)

    response = await http.post(
        f"/api/conversations/{group['id']}/members",
        json={"userId": newcomer.id},
        headers=a.headers,
    )

    assert response.status_code == 200
    assert newcomer.id in shaped(ConversationOut, response.json())["memberIds"]
    seen_by_newcomer = await http.get(f"/api/conversations/{group['id']}", headers=newcomer.headers)
    assert seen_by_newcomer.status_code == 200


async def test_members_are_added_to_groups_only(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, other, third = await api.register(), await api.register(), await api.register()
    dm = await api.direct(me, other)
    response = await http.post(
        f"/api/conversations/{dm['id']}/members", json={"userId": third.id}, headers=me.headers
    )
    assert_error(response, 403, "forbidden")


async def test_adding_an_unknown_user_is_not_found(http: httpx.AsyncClient, api: ApiClient) -> None:
    me = await api.register()
    group = await api.group(me)
    response = await http.post(
        f"/api/conversations/{group['id']}/members", json={"userId": "ghost"}, headers=me.headers
    )
    assert_error(response, 404, "not_found")


async def test_leave_a_group(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, a = await api.register(), await api.register()
    group = await api.group(me, a)

    response = await http.delete(
        f"/api/conversations/{group['id']}/members/{a.id}", headers=a.headers
    )

    assert response.status_code == 204
    assert response.content == b""
    gone = await http.get(f"/api/conversations/{group['id']}", headers=a.headers)
    assert_error(gone, 404, "not_found")


async def test_only_the_creator_removes_others(http: httpx.AsyncClient, api: ApiClient) -> None:
    creator, a, b = await api.register(), await api.register(), await api.register()
    group = await api.group(creator, a, b)
    path = f"/api/conversations/{group['id']}/members"

    refused = await http.delete(f"{path}/{b.id}", headers=a.headers)
    assert_error(refused, 403, "forbidden")

    removed = await http.delete(f"{path}/{b.id}", headers=creator.headers)
    assert removed.status_code == 204
    listing = await http.get(f"/api/conversations/{group['id']}", headers=creator.headers)
    assert b.id not in listing.json()["memberIds"]


async def test_mark_read_returns_the_receipt(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    for text in ("a", "b", "c"):
        await api.sent(other, dm["id"], text)

    response = await http.post(
        f"/api/conversations/{dm['id']}/read", json={"upToSeq": 2}, headers=me.headers
    )

    assert response.status_code == 200
    receipt = shaped(ReadReceiptOut, response.json())
    assert set(receipt) == RECEIPT_KEYS
    assert (receipt["conversationId"], receipt["userId"], receipt["lastReadSeq"]) == (
        dm["id"],
        me.id,
        2,
    )
    back = await http.post(
        f"/api/conversations/{dm['id']}/read", json={"upToSeq": 1}, headers=me.headers
    )
    assert back.status_code == 200
    assert back.json()["lastReadSeq"] == 2  # never moves back
    view = (await http.get(f"/api/conversations/{dm['id']}", headers=me.headers)).json()
    assert (view["lastReadSeq"], view["unreadCount"]) == (2, 1)


@pytest.mark.parametrize("up_to_seq", [-1, "2", 1.5, True, None, {"$gt": 0}, 2**63])
async def test_mark_read_needs_a_non_negative_integer(
    http: httpx.AsyncClient, api: ApiClient, up_to_seq: object
) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    response = await http.post(
        f"/api/conversations/{dm['id']}/read", json={"upToSeq": up_to_seq}, headers=me.headers
    )
    assert_error(response, 422, "validation_error")


async def test_receipts_list_every_members_pointer(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    await api.sent(me, dm["id"])
    await http.post(f"/api/conversations/{dm['id']}/read", json={"upToSeq": 1}, headers=me.headers)
    await http.post(
        f"/api/conversations/{dm['id']}/read", json={"upToSeq": 1}, headers=other.headers
    )

    response = await http.get(f"/api/conversations/{dm['id']}/receipts", headers=other.headers)

    assert response.status_code == 200
    listing = shaped(ReceiptsOut, response.json())
    assert sorted((r["userId"], r["lastReadSeq"]) for r in listing["receipts"]) == sorted(
        [(me.id, 1), (other.id, 1)]
    )
