"""Hostile and malformed input: every one gets a 4xx envelope, never a query or a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httpkit import PASSWORD, ApiClient, assert_error

from support.app import AppFactory


@pytest.mark.parametrize(
    "body",
    [
        {"username": {"$gt": ""}, "password": PASSWORD},
        {"username": "alice", "password": {"$ne": None}},
        {"username": ["alice"], "password": PASSWORD},
        {"username": 42, "password": PASSWORD},
        {"username": None, "password": PASSWORD},
        {"username": True, "password": PASSWORD},
    ],
)
async def test_operators_and_wrong_types_never_reach_login(
    http: httpx.AsyncClient, api: ApiClient, body: dict[str, Any]
) -> None:
    await api.register("alice")
    response = await http.post("/api/auth/login", json=body)
    error = assert_error(response, 422, "validation_error")
    assert error["details"]["field"] in {"username", "password"}


@pytest.mark.parametrize(
    "body",
    [
        {"body": {"$ne": None}},
        {"body": ["hi"]},
        {"body": 1},
        {"body": "hi", "clientMsgId": {"$exists": True}},
        {"body": "hi", "clientMsgId": ["a"]},
    ],
)
async def test_operators_in_a_message_are_validation_errors(
    api: ApiClient, body: dict[str, Any]
) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    response = await api.post_message(me, dm["id"], body)
    assert_error(response, 422, "validation_error")


async def test_operators_in_ids_are_just_unknown_ids(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me = await api.register()
    body = {"userId": {"$ne": "x"}}
    group = await api.group(me)
    response = await http.post(
        f"/api/conversations/{group['id']}/members", json=body, headers=me.headers
    )
    assert_error(response, 422, "validation_error")
    by_path = await http.get("/api/users/%24ne", headers=me.headers)
    assert_error(by_path, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/api/users/{long}", "userId"),
        ("GET", "/api/conversations/{long}", "id"),
        ("POST", "/api/conversations/direct/{long}", "userId"),
        ("GET", "/api/conversations/{long}/messages", "id"),
        ("DELETE", "/api/conversations/{group}/messages/{long}", "messageId"),
        ("DELETE", "/api/conversations/{group}/members/{long}", "userId"),
        ("GET", "/api/messages/{long}", "receiverId"),
    ],
)
async def test_ids_in_the_path_follow_the_id_rule(
    http: httpx.AsyncClient, api: ApiClient, method: str, path: str, field: str
) -> None:
    me = await api.register()
    group = await api.group(me)
    url = path.format(long="i" * 65, group=group["id"])
    response = await http.request(method, url, headers=me.headers)
    error = assert_error(response, 422, "validation_error")
    assert error["details"]["field"] == field


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/conversations/{group}/members", {"userId": ""}, "userId"),
        ("/api/conversations/{group}/members", {"userId": "u" * 65}, "userId"),
        ("/api/conversations", {"name": "G", "memberIds": ["u" * 65]}, "memberIds.0"),
        ("/api/messages/{other}", {"body": "hi", "receiverId": "u" * 65}, "receiverId"),
    ],
)
async def test_ids_in_a_body_follow_the_id_rule(
    http: httpx.AsyncClient, api: ApiClient, path: str, body: dict[str, Any], field: str
) -> None:
    me, other = await api.register(), await api.register()
    group = await api.group(me)
    url = path.format(group=group["id"], other=other.id)
    response = await http.post(url, json=body, headers=me.headers)
    error = assert_error(response, 422, "validation_error")
    assert error["details"]["field"] == field
    assert (await http.get(f"/api/conversations/{group['id']}", headers=me.headers)).json()[
        "memberIds"
    ] == [me.id]


async def test_unknown_fields_are_refused_with_their_name(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/auth/register", json={"username": "ok", "password": PASSWORD, "isAdmin": True}
    )
    error = assert_error(response, 422, "validation_error")
    assert error["details"]["field"] == "isAdmin"
    assert PASSWORD not in response.text  # input values are never echoed


async def test_snake_case_names_are_unknown_fields(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/auth/register", json={"username": "snake", "password": PASSWORD, "display_name": "S"}
    )
    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize(
    "raw",
    [b"{", b"{'username': 'x'}", b"", b"nul", b'{"username": "a", }', b"\xff\xfe"],
)
async def test_malformed_json_is_a_validation_error(http: httpx.AsyncClient, raw: bytes) -> None:
    response = await http.post(
        "/api/auth/login", content=raw, headers={"Content-Type": "application/json"}
    )
    error = assert_error(response, 422, "validation_error")
    assert error["details"]["field"] == "body"


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42", b"null", b"true"])
async def test_json_that_is_not_an_object_is_a_validation_error(
    http: httpx.AsyncClient, raw: bytes
) -> None:
    response = await http.post(
        "/api/auth/login", content=raw, headers={"Content-Type": "application/json"}
    )
    error = assert_error(response, 422, "validation_error")
    assert error["message"] == "request body must be a JSON object"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_other_content_types_are_refused(
    http: httpx.AsyncClient, api: ApiClient, content_type: str
) -> None:
    await api.register("ctype")
    response = await http.post(
        "/api/auth/login",
        content=b'{"username": "ctype", "password": "correct horse battery"}',
        headers={"Content-Type": content_type},
    )
    error = assert_error(response, 422, "validation_error")
    assert error["details"]["field"] == "Content-Type"


@pytest.mark.parametrize(
    "content_type", [None, "application/json; charset=utf-8", "application/merge-patch+json"]
)
async def test_json_content_types_and_none_are_accepted(
    http: httpx.AsyncClient, api: ApiClient, content_type: str | None
) -> None:
    await api.register("ctype")
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await http.post(
        "/api/auth/login",
        content=b'{"username": "ctype", "password": "correct horse battery"}',
        headers=headers,
    )
    assert response.status_code == 200


async def test_a_body_over_the_limit_is_413_before_it_is_read(api: ApiClient) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    huge = b'{"body": "' + b"x" * (64 * 1024) + b'"}'

    response = await api.post_message(me, dm["id"], raw=huge)

    error = assert_error(response, 413, "payload_too_large")
    assert error["details"] == {"maxBytes": 64 * 1024}
    assert (await api.history(me, dm["id"]))["messages"] == []


async def test_a_streamed_body_is_counted_as_it_arrives(api: ApiClient) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit must be enforced on the bytes themselves.
        yield b'{"body": "'
        for _ in range(20):
            yield b"y" * 4096
        yield b'"}'

    response = await api.post_message(me, dm["id"], raw=chunks())

    assert_error(response, 413, "payload_too_large")


async def test_a_body_just_under_the_limit_is_read(start_app: AppFactory) -> None:
    async with start_app(max_body_bytes=2048) as http:
        api = ApiClient(http)
        me, other = await api.register(), await api.register()
        dm = await api.direct(me, other)
        body = {"body": "z" * 1900}
        ok = await api.post_message(me, dm["id"], body)
        assert ok.status_code == 201
        too_big = await api.post_message(me, dm["id"], {"body": "z" * 2100})
        assert_error(too_big, 413, "payload_too_large")
