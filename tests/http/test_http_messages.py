"""Messages over HTTP: send, idempotent replay, history windows, edit, delete, seed routes."""

from __future__ import annotations

import httpx
import pytest
from httpkit import ApiClient, assert_error, shaped

from entrypoints.http.schemas import HistoryOut, MessageOut
from support.app import on_every_backend
from support.wire_keys import MESSAGE_KEYS


@on_every_backend
async def test_send_returns_201_and_the_stored_message(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)

    response = await api.send(me, dm["id"], "  hello there  ", client_msg_id="c-1")

    assert response.status_code == 201
    message = shaped(MessageOut, response.json())
    assert set(message) == MESSAGE_KEYS
    assert message["conversationId"] == dm["id"]
    assert message["seq"] == 1
    assert message["senderId"] == me.id
    assert message["body"] == "hello there"
    assert message["clientMsgId"] == "c-1"
    assert (message["editedAt"], message["deletedAt"]) == (None, None)


@on_every_backend
async def test_history_is_ascending_by_seq(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    for i in range(1, 6):
        await api.sent(me if i % 2 else other, dm["id"], f"m{i}")

    history = shaped(HistoryOut, await api.history(other, dm["id"]))

    assert set(history) == {"messages", "hasMore"}
    assert [m["seq"] for m in history["messages"]] == [1, 2, 3, 4, 5]
    assert [m["body"] for m in history["messages"]] == ["m1", "m2", "m3", "m4", "m5"]
    assert history["hasMore"] is False


@on_every_backend
async def test_history_windows(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    for i in range(1, 8):
        await api.sent(me, dm["id"], f"m{i}")

    def seqs(history: dict[str, object]) -> tuple[list[object], object]:
        return [m["seq"] for m in history["messages"]], history["hasMore"]  # type: ignore[attr-defined]

    assert seqs(await api.history(me, dm["id"], limit=3)) == ([5, 6, 7], True)
    assert seqs(await api.history(me, dm["id"], before=5, limit=3)) == ([2, 3, 4], True)
    assert seqs(await api.history(me, dm["id"], before=3, limit=3)) == ([1, 2], False)
    assert seqs(await api.history(me, dm["id"], after=2, limit=3)) == ([3, 4, 5], True)
    assert seqs(await api.history(me, dm["id"], after=5)) == ([6, 7], False)
    assert seqs(await api.history(me, dm["id"], after=7)) == ([], False)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "many"},
        {"before": "-1"},
        {"after": "-3"},
        {"before": "x"},
        {"after": str(2**64)},
        {"before": "2", "after": "1"},
    ],
)
async def test_bad_history_parameters_are_validation_errors(
    http: httpx.AsyncClient, api: ApiClient, params: dict[str, str]
) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    response = await http.get(
        f"/api/conversations/{dm['id']}/messages", params=params, headers=me.headers
    )
    assert_error(response, 422, "validation_error")


async def test_limit_bounds_are_accepted(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    await api.sent(me, dm["id"])
    assert len((await api.history(me, dm["id"], limit=1))["messages"]) == 1
    assert len((await api.history(me, dm["id"], limit=100))["messages"]) == 1


@on_every_backend
async def test_replaying_a_client_msg_id_returns_200_and_stores_nothing_new(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)

    first = await api.send(me, dm["id"], "once", client_msg_id="retry-me")
    replay = await api.send(me, dm["id"], "once", client_msg_id="retry-me")

    assert first.status_code == 201
    assert replay.status_code == 200
    assert replay.json() == first.json()
    history = await api.history(me, dm["id"])
    assert [m["id"] for m in history["messages"]] == [first.json()["id"]]
    listed = await http.get(f"/api/conversations/{dm['id']}", headers=me.headers)
    assert listed.json()["lastSeq"] == 1


async def test_the_same_client_msg_id_from_someone_else_is_a_new_message(
    api: ApiClient,
) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    mine = await api.send(me, dm["id"], "a", client_msg_id="same")
    theirs = await api.send(other, dm["id"], "b", client_msg_id="same")
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert theirs.json()["seq"] == 2


@pytest.mark.parametrize(
    "body",
    [
        {"body": ""},
        {"body": "   "},
        {"body": "x" * 4001},
        {"body": "ok", "clientMsgId": ""},
        {"body": "ok", "clientMsgId": "x" * 65},
        {"body": "ok", "clientMsgId": 7},
        {},
    ],
)
async def test_invalid_messages_are_validation_errors(
    api: ApiClient, body: dict[str, object]
) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    response = await api.post_message(me, dm["id"], body)
    assert_error(response, 422, "validation_error")
    assert (await api.history(me, dm["id"]))["messages"] == []


async def test_edit_by_the_sender(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    message = await api.sent(me, dm["id"], "typo")

    response = await http.patch(
        f"/api/conversations/{dm['id']}/messages/{message['id']}",
        json={"body": "fixed"},
        headers=me.headers,
    )

    assert response.status_code == 200
    edited = shaped(MessageOut, response.json())
    assert (edited["id"], edited["seq"], edited["body"]) == (message["id"], 1, "fixed")
    assert edited["editedAt"] is not None


async def test_only_the_sender_edits_or_deletes(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    message = await api.sent(me, dm["id"])
    path = f"/api/conversations/{dm['id']}/messages/{message['id']}"

    assert_error(
        await http.patch(path, json={"body": "x"}, headers=other.headers), 403, "forbidden"
    )
    assert_error(await http.delete(path, headers=other.headers), 403, "forbidden")


async def test_delete_keeps_id_and_seq(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    message = await api.sent(me, dm["id"], "secret")
    path = f"/api/conversations/{dm['id']}/messages/{message['id']}"

    response = await http.delete(path, headers=me.headers)

    assert response.status_code == 200
    deleted = shaped(MessageOut, response.json())
    assert (deleted["id"], deleted["seq"], deleted["body"]) == (message["id"], 1, "")
    assert deleted["deletedAt"] is not None
    assert (await http.delete(path, headers=me.headers)).json() == deleted
    edit = await http.patch(path, json={"body": "again"}, headers=me.headers)
    assert_error(edit, 409, "conflict")
    history = await api.history(other, dm["id"])
    assert history["messages"][0]["body"] == ""


async def test_an_unknown_message_is_not_found(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    path = f"/api/conversations/{dm['id']}/messages/nope"
    assert_error(await http.patch(path, json={"body": "x"}, headers=me.headers), 404, "not_found")
    assert_error(await http.delete(path, headers=me.headers), 404, "not_found")


async def test_sending_to_an_unknown_conversation_is_not_found(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me = await api.register()
    assert_error(await api.send(me, "nope"), 404, "not_found")


# --- seed-compatible routes -----------------------------------------------------------------


@on_every_backend
async def test_seed_send_uses_the_direct_conversation(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me, other = await api.register(), await api.register()

    response = await http.post(f"/api/messages/{other.id}", json={"body": "hi"}, headers=me.headers)

    assert response.status_code == 201
    message = shaped(MessageOut, response.json())
    dm = await api.direct(other, me)
    assert message["conversationId"] == dm["id"]
    assert message["seq"] == 1
    history = await http.get(f"/api/messages/{me.id}", headers=other.headers)
    assert history.status_code == 200
    assert shaped(HistoryOut, history.json())["messages"] == [message]


async def test_seed_send_is_idempotent_too(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, other = await api.register(), await api.register()
    body = {"body": "hi", "clientMsgId": "k1"}
    first = await http.post(f"/api/messages/{other.id}", json=body, headers=me.headers)
    again = await http.post(f"/api/messages/{other.id}", json=body, headers=me.headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()


async def test_seed_send_accepts_a_matching_receiver_id_in_the_body(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me, other, third = await api.register(), await api.register(), await api.register()
    path = f"/api/messages/{other.id}"
    same = await http.post(path, json={"receiverId": other.id, "body": "a"}, headers=me.headers)
    assert same.status_code == 201
    different = await http.post(
        path, json={"receiverId": third.id, "body": "b"}, headers=me.headers
    )
    assert_error(different, 422, "validation_error")


async def test_seed_history_pages_like_conversation_history(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me, other = await api.register(), await api.register()
    for i in range(4):
        await http.post(f"/api/messages/{other.id}", json={"body": f"m{i}"}, headers=me.headers)
    page = await http.get(
        f"/api/messages/{other.id}", params={"before": "4", "limit": "2"}, headers=me.headers
    )
    assert [m["seq"] for m in page.json()["messages"]] == [2, 3]
    assert page.json()["hasMore"] is True
    bad = await http.get(f"/api/messages/{other.id}", params={"limit": "0"}, headers=me.headers)
    assert_error(bad, 422, "validation_error")


async def test_seed_history_with_someone_never_talked_to_is_empty(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me, other = await api.register(), await api.register()
    response = await http.get(f"/api/messages/{other.id}", headers=me.headers)
    assert response.json() == {"messages": [], "hasMore": False}
    listing = await http.get("/api/conversations", headers=me.headers)
    assert listing.json()["conversations"] == []  # nothing was created


async def test_seed_routes_with_unknown_or_self_receiver(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me = await api.register()
    ghost_send = await http.post("/api/messages/ghost", json={"body": "hi"}, headers=me.headers)
    assert_error(ghost_send, 404, "not_found")
    assert_error(await http.get("/api/messages/ghost", headers=me.headers), 404, "not_found")
    self_send = await http.post(f"/api/messages/{me.id}", json={"body": "hi"}, headers=me.headers)
    assert_error(self_send, 422, "validation_error")
