"""Contract v1.1 over HTTP: thread replies and listing, reactions, mentions and
unreadMentions, and bad input (error envelope, nothing changed)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from httpkit import Account, ApiClient, assert_error, shaped

from entrypoints.http.schemas import ConversationOut, HistoryOut, MessageOut
from support.app import on_every_backend


def reactions_url(conversation_id: str, message_id: str, emoji: str) -> str:
    return (
        f"/api/conversations/{conversation_id}/messages/{message_id}/reactions/"
        f"{quote(emoji, safe='')}"
    )


async def reply(
    api: ApiClient, me: Account, conversation_id: str, thread_id: Any, body: str = "reply"
) -> httpx.Response:
    return await api.post_message(me, conversation_id, {"body": body, "threadId": thread_id})


async def dm_with_message(api: ApiClient) -> tuple[Account, Account, Any, Any]:
    """Two new users, their direct conversation and a first message in it."""
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    return me, other, dm, await api.sent(me, dm["id"], "hi")


async def get_message(api: ApiClient, me: Account, conversation_id: str, seq: int) -> Any:
    history = await api.history(me, conversation_id, after=seq - 1, limit=1)
    return history["messages"][0]


@on_every_backend
async def test_a_reply_is_a_message_and_updates_the_roots_thread(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me, other = await api.register(), await api.register()
    group = await api.group(me, other)
    root = await api.sent(me, group["id"], "lunch?")
    assert (root["threadId"], root["thread"], root["reactions"], root["mentions"]) == (
        None,
        None,
        [],
        [],
    )

    first = await reply(api, other, group["id"], root["id"], "yes")
    second = await reply(api, me, group["id"], first.json()["id"], "great")

    assert first.status_code == 201
    assert second.status_code == 201
    assert shaped(MessageOut, first.json())["threadId"] == root["id"]
    assert second.json()["threadId"] == root["id"]
    assert second.json()["seq"] == 3
    stored_root = shaped(MessageOut, await get_message(api, me, group["id"], 1))
    assert stored_root["thread"]["replyCount"] == 2
    assert stored_root["thread"]["participantIds"] == [other.id, me.id]
    assert stored_root["thread"]["lastReplyAt"] == second.json()["createdAt"]
    thread = shaped(HistoryOut, await api.history(me, group["id"], threadId=root["id"]))
    assert [m["body"] for m in thread["messages"]] == ["yes", "great"]
    assert thread["hasMore"] is False
    everything = await api.history(me, group["id"])
    assert [m["seq"] for m in everything["messages"]] == [1, 2, 3]


@on_every_backend
async def test_thread_listing_pages_by_seq(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    root = await api.sent(me, dm["id"], "root")
    for i in range(4):
        await api.sent(other, dm["id"], f"noise {i}")
        assert (await reply(api, other, dm["id"], root["id"], f"r{i}")).status_code == 201

    newest = await api.history(me, dm["id"], threadId=root["id"], limit=2)
    older = await api.history(
        me, dm["id"], threadId=root["id"], before=newest["messages"][0]["seq"], limit=2
    )

    assert [m["body"] for m in newest["messages"]] == ["r2", "r3"]
    assert newest["hasMore"] is True
    assert [m["body"] for m in older["messages"]] == ["r0", "r1"]
    assert older["hasMore"] is False


@pytest.mark.parametrize("case", ["other conversation", "deleted", "unknown", "number", "operator"])
async def test_a_bad_thread_id_is_422_and_stores_nothing(
    http: httpx.AsyncClient, api: ApiClient, case: str
) -> None:
    me, other = await api.register(), await api.register()
    group = await api.group(me, other)
    elsewhere = await api.direct(me, other)
    thread_id: Any = {"unknown": "nope", "number": 7, "operator": {"$gt": ""}}.get(case)
    if case == "other conversation":
        thread_id = (await api.sent(me, elsewhere["id"], "hi"))["id"]
    elif case == "deleted":
        thread_id = (await api.sent(me, group["id"], "oops"))["id"]
        url = f"/api/conversations/{group['id']}/messages/{thread_id}"
        assert (await http.delete(url, headers=me.headers)).status_code == 200
    before = await api.history(me, group["id"])

    response = await reply(api, other, group["id"], thread_id)

    error = assert_error(response, 422, "validation_error")
    assert error["details"]["field"] == "threadId"
    assert await api.history(me, group["id"]) == before


async def test_thread_listing_of_a_foreign_message_is_422(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    group = await api.group(me, other)
    foreign = await api.sent(me, group["id"], "elsewhere")

    response = await http.get(
        f"/api/conversations/{dm['id']}/messages",
        params={"threadId": foreign["id"]},
        headers=me.headers,
    )

    assert assert_error(response, 422, "validation_error")["details"]["field"] == "threadId"


@on_every_backend
async def test_reactions_put_and_delete(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    message = await api.sent(me, dm["id"], "party")

    added = await http.put(reactions_url(dm["id"], message["id"], "🎉"), headers=other.headers)
    again = await http.put(reactions_url(dm["id"], message["id"], "🎉"), headers=other.headers)
    mine = await http.put(reactions_url(dm["id"], message["id"], ":party:"), headers=me.headers)

    assert added.status_code == 200
    assert shaped(MessageOut, added.json())["reactions"] == [{"emoji": "🎉", "userIds": [other.id]}]
    assert again.json()["reactions"] == added.json()["reactions"]
    assert mine.json()["reactions"] == [
        {"emoji": "🎉", "userIds": [other.id]},
        {"emoji": ":party:", "userIds": [me.id]},
    ]
    assert (mine.json()["editedAt"], mine.json()["seq"]) == (None, 1)
    removed = await http.delete(reactions_url(dm["id"], message["id"], "🎉"), headers=other.headers)
    absent = await http.delete(reactions_url(dm["id"], message["id"], "👍"), headers=other.headers)
    assert removed.status_code == 200
    assert removed.json()["reactions"] == [{"emoji": ":party:", "userIds": [me.id]}]
    assert absent.status_code == 200
    assert absent.json()["reactions"] == removed.json()["reactions"]


@pytest.mark.parametrize("emoji", [" ", "a b", "x" * 33, "\u00a0"])
async def test_a_bad_emoji_is_422_and_changes_nothing(
    http: httpx.AsyncClient, api: ApiClient, emoji: str
) -> None:
    me, _other, dm, message = await dm_with_message(api)

    response = await http.put(reactions_url(dm["id"], message["id"], emoji), headers=me.headers)

    assert assert_error(response, 422, "validation_error")["details"]["field"] == "emoji"
    assert (await get_message(api, me, dm["id"], 1))["reactions"] == []


async def test_an_empty_emoji_gets_the_error_envelope(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me, _other, dm, message = await dm_with_message(api)

    response = await http.put(reactions_url(dm["id"], message["id"], ""), headers=me.headers)

    assert response.status_code in (404, 405)
    assert_error(response, response.status_code, response.json()["error"]["code"])
    assert (await get_message(api, me, dm["id"], 1))["reactions"] == []


async def test_reacting_to_a_deleted_message_is_409(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me, other, dm, message = await dm_with_message(api)
    await http.delete(f"/api/conversations/{dm['id']}/messages/{message['id']}", headers=me.headers)

    response = await http.put(reactions_url(dm["id"], message["id"], "👍"), headers=other.headers)

    assert_error(response, 409, "conflict")


async def test_the_21st_emoji_is_409(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, other, dm, message = await dm_with_message(api)
    for i in range(20):
        url = reactions_url(dm["id"], message["id"], f":e{i}:")
        assert (await http.put(url, headers=me.headers)).status_code == 200

    response = await http.put(
        reactions_url(dm["id"], message["id"], ":e20:"), headers=other.headers
    )

    assert_error(response, 409, "conflict")
    assert len((await get_message(api, me, dm["id"], 1))["reactions"]) == 20


async def test_strangers_and_unknown_messages_are_404(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me, other, stranger = await api.register(), await api.register(), await api.register()
    dm = await api.direct(me, other)
    message = await api.sent(me, dm["id"], "hi")

    foreign = await http.put(reactions_url(dm["id"], message["id"], "👍"), headers=stranger.headers)
    missing = await http.put(reactions_url(dm["id"], "nope", "👍"), headers=me.headers)

    assert_error(foreign, 404, "not_found")
    assert_error(missing, 404, "not_found")


@on_every_backend
async def test_mentions_and_unread_mentions(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, bob, carol, outsider = [await api.register() for _ in range(4)]
    group = await api.group(me, bob, carol)

    sent = await api.sent(
        me, group["id"], f"hi @{bob.username.upper()} @{outsider.username} @{me.username}"
    )
    await api.sent(carol, group["id"], f"@{bob.username}: see above")
    await api.sent(carol, group["id"], "no mention")

    assert sent["mentions"] == [bob.id]
    response = await http.get(f"/api/conversations/{group['id']}", headers=bob.headers)
    view = shaped(ConversationOut, response.json())
    assert (view["unreadCount"], view["unreadMentions"]) == (3, 2)
    listed = (await http.get("/api/conversations", headers=bob.headers)).json()
    assert listed["conversations"][0]["unreadMentions"] == 2
    read = await http.post(
        f"/api/conversations/{group['id']}/read", json={"upToSeq": 2}, headers=bob.headers
    )
    assert read.status_code == 200
    view = (await http.get(f"/api/conversations/{group['id']}", headers=bob.headers)).json()
    assert (view["unreadCount"], view["unreadMentions"]) == (1, 0)
    edited = await http.patch(
        f"/api/conversations/{group['id']}/messages/{sent['id']}",
        json={"body": f"hi @{carol.username}"},
        headers=me.headers,
    )
    assert edited.json()["mentions"] == [carol.id]
