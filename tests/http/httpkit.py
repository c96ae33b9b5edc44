"""A thin test client for the HTTP API: register users, auth headers, common calls."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterable
from typing import Any

import httpx
from pydantic import BaseModel

from support.accounts import PASSWORD, Account

__all__ = ["PASSWORD", "Account", "ApiClient", "assert_error", "error_of", "shaped"]

_names = itertools.count(1)


def unique_username(prefix: str = "user") -> str:
    return f"{prefix}{next(_names)}"


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of an envelope, checking the envelope's shape on the way."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    payload = response.json()
    assert set(payload) == {"error"}, payload
    error: dict[str, Any] = payload["error"]
    assert set(error) <= {"code", "message", "details"}, error
    assert isinstance(error["code"], str)
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["code"] == code, error
    return error


def shaped(model: type[BaseModel], payload: Any) -> Any:
    """Check ``payload`` against a response model of the OpenAPI document: every key
    present, none extra, right types and time formats. Returns the payload."""
    model.model_validate(payload)
    return payload


class ApiClient:
    """Calls the API as different users through one httpx client."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def register(
        self, username: str | None = None, *, display_name: str | None = None
    ) -> Account:
        body: dict[str, Any] = {"username": username or unique_username(), "password": PASSWORD}
        if display_name is not None:
            body["displayName"] = display_name
        response = await self.http.post("/api/auth/register", json=body)
        assert response.status_code == 201, response.text
        return Account.from_session(response.json())

    async def direct(self, me: Account, other: Account) -> dict[str, Any]:
        response = await self.http.post(f"/api/conversations/direct/{other.id}", headers=me.headers)
        assert response.status_code == 200, response.text
        conversation: dict[str, Any] = response.json()
        return conversation

    async def group(self, me: Account, *members: Account, name: str = "group") -> dict[str, Any]:
        response = await self.http.post(
            "/api/conversations",
            json={"type": "group", "name": name, "memberIds": [m.id for m in members]},
            headers=me.headers,
        )
        assert response.status_code == 201, response.text
        conversation: dict[str, Any] = response.json()
        return conversation

    async def send(
        self,
        me: Account,
        conversation_id: str,
        body: str = "hello",
        client_msg_id: str | None = None,
    ) -> httpx.Response:
        payload: dict[str, Any] = {"body": body}
        if client_msg_id is not None:
            payload["clientMsgId"] = client_msg_id
        return await self.post_message(me, conversation_id, payload)

    async def post_message(
        self,
        me: Account,
        conversation_id: str,
        payload: Any = None,
        *,
        raw: bytes | AsyncIterable[bytes] | None = None,
    ) -> httpx.Response:
        """POST to a conversation's messages as given, valid or not: ``payload`` as
        JSON, or else ``raw`` bytes (streamed if iterable) labelled application/json."""
        url = f"/api/conversations/{conversation_id}/messages"
        if raw is None:
            return await self.http.post(url, json=payload, headers=me.headers)
        headers = {**me.headers, "Content-Type": "application/json"}
        return await self.http.post(url, content=raw, headers=headers)

    async def sent(self, me: Account, conversation_id: str, body: str = "hello") -> dict[str, Any]:
        response = await self.send(me, conversation_id, body)
        assert response.status_code == 201, response.text
        message: dict[str, Any] = response.json()
        return message

    async def history(self, me: Account, conversation_id: str, **params: Any) -> dict[str, Any]:
        response = await self.http.get(
            f"/api/conversations/{conversation_id}/messages", params=params, headers=me.headers
        )
        assert response.status_code == 200, response.text
        history: dict[str, Any] = response.json()
        return history
