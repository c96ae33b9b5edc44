"""GET /api/presence."""

from __future__ import annotations

import httpx
from httpkit import ApiClient, assert_error, shaped

from entrypoints.http.schemas import PresenceListOut


async def test_presence_of_known_users_in_the_order_asked(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me, a, b = await api.register(), await api.register(), await api.register()

    response = await http.get(
        "/api/presence", params={"userIds": f"{b.id}, unknown,{a.id},{b.id}"}, headers=me.headers
    )

    assert response.status_code == 200
    listing = shaped(PresenceListOut, response.json())
    assert listing == {
        "presence": [
            {"userId": b.id, "online": False, "lastSeenAt": None},
            {"userId": a.id, "online": False, "lastSeenAt": None},
        ]
    }


async def test_no_ids_is_an_empty_list(http: httpx.AsyncClient, api: ApiClient) -> None:
    me = await api.register()
    response = await http.get("/api/presence", headers=me.headers)
    assert response.json() == {"presence": []}


async def test_too_many_ids_is_a_validation_error(http: httpx.AsyncClient, api: ApiClient) -> None:
    me = await api.register()
    ids = ",".join(f"u{i}" for i in range(101))
    response = await http.get("/api/presence", params={"userIds": ids}, headers=me.headers)
    assert_error(response, 422, "validation_error")
