"""GET /api/users/me, /api/users/{userId} and the seed-compatible user search."""

from __future__ import annotations

import httpx
import pytest
from httpkit import ApiClient, assert_error, shaped

from entrypoints.http.schemas import UserOut, UserPageOut


async def test_me_is_the_caller(http: httpx.AsyncClient, api: ApiClient) -> None:
    account = await api.register("grace", display_name="Grace H.")

    response = await http.get("/api/users/me", headers=account.headers)

    assert response.status_code == 200
    user = shaped(UserOut, response.json())
    assert user["id"] == account.id
    assert user["username"] == "grace"
    assert user["displayName"] == "Grace H."


async def test_a_user_by_id(http: httpx.AsyncClient, api: ApiClient) -> None:
    me, other = await api.register(), await api.register("heidi")

    response = await http.get(f"/api/users/{other.id}", headers=me.headers)

    assert response.status_code == 200
    assert shaped(UserOut, response.json())["username"] == "heidi"


async def test_an_unknown_user_is_not_found(http: httpx.AsyncClient, api: ApiClient) -> None:
    me = await api.register()
    assert_error(await http.get("/api/users/nobody", headers=me.headers), 404, "not_found")


async def test_search_lists_other_users_by_username(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me = await api.register("searcher")
    for name in ("zoe", "ivan", "judy"):
        await api.register(name)

    response = await http.get("/api/users", headers=me.headers)

    assert response.status_code == 200
    page = shaped(UserPageOut, response.json())
    assert set(page) == {"users", "nextCursor"}
    assert [u["username"] for u in page["users"]] == ["ivan", "judy", "zoe"]
    assert page["nextCursor"] is None


async def test_search_filters_by_prefix_case_insensitively(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me = await api.register("searcher")
    await api.register("kate")
    await api.register("karl")
    await api.register("leo", display_name="Kaiser")

    response = await http.get("/api/users", params={"search": "KA"}, headers=me.headers)

    assert sorted(u["username"] for u in response.json()["users"]) == ["karl", "kate", "leo"]


async def test_search_pages_with_an_opaque_cursor(http: httpx.AsyncClient, api: ApiClient) -> None:
    me = await api.register("searcher")
    names = [f"member{i}" for i in range(5)]
    for name in names:
        await api.register(name)

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/api/users", params=params, headers=me.headers)).json()
        assert len(page["users"]) <= 2
        seen += [u["username"] for u in page["users"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break

    assert seen == names


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"limit": "1.5"}, {"cursor": "%%%"}],
)
async def test_bad_search_parameters_are_validation_errors(
    http: httpx.AsyncClient, api: ApiClient, params: dict[str, str]
) -> None:
    me = await api.register()
    response = await http.get("/api/users", params=params, headers=me.headers)
    assert_error(response, 422, "validation_error")
