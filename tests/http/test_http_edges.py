"""The edges of the HTTP API that are not an endpoint's own rules: NUL characters,
405 with a complete Allow header, a trailing slash, a refused CORS preflight. Each
answers in the error envelope and changes nothing."""

from __future__ import annotations

import httpx
import pytest
from httpkit import ApiClient, assert_error

from support.app import AppFactory


@pytest.mark.parametrize(
    "payload",
    [{"body": "hello\x00world"}, {"body": "hello", "clientMsgId": "id\x00"}],
)
async def test_nul_characters_in_a_message_are_refused(
    api: ApiClient, payload: dict[str, str]
) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)

    error = assert_error(await api.post_message(me, dm["id"], payload), 422, "validation_error")

    assert error["details"]["field"] in payload
    assert (await api.history(me, dm["id"]))["messages"] == []


async def test_nul_in_a_display_name_is_refused(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        "/api/auth/register",
        json={"username": "nul", "password": "secret123", "displayName": "a\x00b"},
    )
    assert assert_error(answer, 422, "validation_error")["details"]["field"] == "displayName"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/conversations", {"GET", "HEAD", "POST"}),
        ("DELETE", "/api/users/me", {"GET", "HEAD"}),
        ("GET", "/api/conversations/x/messages/y", {"PATCH", "DELETE"}),
        ("PATCH", "/api/messages/someone", {"GET", "HEAD", "POST"}),
    ],
)
async def test_405_names_every_allowed_method(
    http: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    answer = await http.request(method, path)

    assert_error(answer, 405, "method_not_allowed")
    assert {m.strip() for m in answer.headers["allow"].split(",")} == allowed


async def test_a_trailing_slash_is_a_404_envelope_not_a_redirect(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me = await api.register()
    answer = await http.get("/api/users/me/", headers=me.headers)
    assert_error(answer, 404, "not_found")


async def test_a_refused_cors_preflight_is_a_json_envelope(start_app: AppFactory) -> None:
    async with start_app(cors_origins=["https://chat.example"]) as http:
        refused = await http.options(
            "/api/auth/login",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
    error = assert_error(refused, 403, "forbidden")
    assert "origin" in error["message"].lower()
