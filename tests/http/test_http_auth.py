"""Register, login, refresh rotation, logout, and access-token checking over HTTP."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from httpkit import PASSWORD, ApiClient, assert_error, shaped

from adapters.jwt_tokens import JwtAccessTokens
from chatcore.testing import FixedClock
from entrypoints.http.schemas import AuthSessionOut
from support.app import JWT_SECRET, on_every_backend

SESSION_KEYS = {"user", "accessToken", "refreshToken", "expiresIn"}
USER_KEYS = {"id", "username", "displayName", "createdAt", "lastSeenAt"}


@on_every_backend
async def test_register_returns_201_and_a_session(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/auth/register",
        json={"username": "alice", "password": PASSWORD, "displayName": "Alice A."},
    )

    assert response.status_code == 201
    session = shaped(AuthSessionOut, response.json())
    assert set(session) == SESSION_KEYS
    assert set(session["user"]) == USER_KEYS
    assert session["user"]["username"] == "alice"
    assert session["user"]["displayName"] == "Alice A."
    assert session["user"]["lastSeenAt"] is None
    assert session["expiresIn"] == 900
    me = await http.get(
        "/api/users/me", headers={"Authorization": f"Bearer {session['accessToken']}"}
    )
    assert me.json() == session["user"]


async def test_display_name_defaults_to_the_username(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/auth/register", json={"username": "bob", "password": PASSWORD})
    assert response.json()["user"]["displayName"] == "bob"


@on_every_backend
async def test_a_taken_username_is_a_conflict_whatever_the_case(http: httpx.AsyncClient) -> None:
    await http.post("/api/auth/register", json={"username": "carol", "password": PASSWORD})
    again = await http.post("/api/auth/register", json={"username": "CAROL", "password": PASSWORD})
    assert_error(again, 409, "conflict")


@pytest.mark.parametrize(
    "body",
    [
        {"username": "a" * 65, "password": PASSWORD},
        {"username": "has space", "password": PASSWORD},
        {"username": "dave", "password": "five5"},
        {"username": "dave", "password": PASSWORD, "displayName": "   "},
        {"password": PASSWORD},
        {"username": "dave"},
    ],
)
async def test_invalid_registrations_are_validation_errors(
    http: httpx.AsyncClient, body: dict[str, str]
) -> None:
    response = await http.post("/api/auth/register", json=body)
    error = assert_error(response, 422, "validation_error")
    assert "field" in error["details"]


@on_every_backend
async def test_login_returns_a_fresh_session(http: httpx.AsyncClient, api: ApiClient) -> None:
    account = await api.register("erin")

    response = await http.post("/api/auth/login", json={"username": "Erin", "password": PASSWORD})

    assert response.status_code == 200
    session = shaped(AuthSessionOut, response.json())
    assert set(session) == SESSION_KEYS
    assert session["user"]["id"] == account.id
    assert session["refreshToken"] != account.refresh_token


async def test_wrong_password_and_unknown_user_get_the_same_answer(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    await api.register("frank")
    wrong = await http.post("/api/auth/login", json={"username": "frank", "password": "nope-nope"})
    unknown = await http.post("/api/auth/login", json={"username": "nobody", "password": PASSWORD})

    wrong_error = assert_error(wrong, 401, "unauthorized")
    unknown_error = assert_error(unknown, 401, "unauthorized")
    assert wrong_error["message"] == unknown_error["message"]


async def test_refresh_rotates_the_refresh_token(http: httpx.AsyncClient, api: ApiClient) -> None:
    account = await api.register()

    refreshed = await http.post("/api/auth/refresh", json={"refreshToken": account.refresh_token})
    assert refreshed.status_code == 200
    session = shaped(AuthSessionOut, refreshed.json())
    assert set(session) == SESSION_KEYS
    assert session["user"]["id"] == account.id
    assert session["refreshToken"] != account.refresh_token

    new_one = await http.post("/api/auth/refresh", json={"refreshToken": session["refreshToken"]})
    assert new_one.status_code == 200
    me = await http.get(
        "/api/users/me", headers={"Authorization": f"Bearer {session['accessToken']}"}
    )
    assert me.status_code == 200


async def test_replaying_a_rotated_out_refresh_token_revokes_the_family(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    account = await api.register()
    refreshed = await http.post("/api/auth/refresh", json={"refreshToken": account.refresh_token})
    current = refreshed.json()["refreshToken"]

    replayed = await http.post("/api/auth/refresh", json={"refreshToken": account.refresh_token})

    assert_error(replayed, 401, "unauthorized")
    revoked = await http.post("/api/auth/refresh", json={"refreshToken": current})
    assert_error(revoked, 401, "unauthorized")


async def test_logout_cannot_revoke_someone_elses_refresh_token(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    alice, mallory = await api.register(), await api.register()

    response = await http.post(
        "/api/auth/logout", json={"refreshToken": alice.refresh_token}, headers=mallory.headers
    )

    assert response.status_code == 204
    still = await http.post("/api/auth/refresh", json={"refreshToken": alice.refresh_token})
    assert still.status_code == 200


async def test_the_token_of_a_deleted_user_is_unauthorized(http: httpx.AsyncClient) -> None:
    # A well-signed, unexpired token whose user no longer exists.
    token = JwtAccessTokens(JWT_SECRET).issue("deleted-user").token

    me = await http.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})

    assert_error(me, 401, "unauthorized")


async def test_refresh_with_an_unknown_token_is_unauthorized(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/auth/refresh", json={"refreshToken": "made-up"})
    assert_error(response, 401, "unauthorized")


async def test_logout_revokes_the_refresh_token(http: httpx.AsyncClient, api: ApiClient) -> None:
    account = await api.register()

    response = await http.post(
        "/api/auth/logout", json={"refreshToken": account.refresh_token}, headers=account.headers
    )

    assert response.status_code == 204
    assert response.content == b""
    refused = await http.post("/api/auth/refresh", json={"refreshToken": account.refresh_token})
    assert_error(refused, 401, "unauthorized")
    again = await http.post(
        "/api/auth/logout", json={"refreshToken": account.refresh_token}, headers=account.headers
    )
    assert again.status_code == 204  # idempotent


async def test_logout_needs_an_access_token(http: httpx.AsyncClient, api: ApiClient) -> None:
    account = await api.register()
    response = await http.post("/api/auth/logout", json={"refreshToken": account.refresh_token})
    assert_error(response, 401, "unauthorized")
    still_valid = await http.post("/api/auth/refresh", json={"refreshToken": account.refresh_token})
    assert still_valid.status_code == 200


# --- access tokens -------------------------------------------------------------------------


def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(token: str) -> dict[str, object]:
    payload = _segments(token)[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "==="))
    return decoded


async def _me_with(http: httpx.AsyncClient, authorization: str | None) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    return await http.get("/api/users/me", headers=headers)


async def test_the_access_token_carries_the_contract_claims(api: ApiClient) -> None:
    account = await api.register()
    claims = _claims(account.access_token)
    assert claims["sub"] == account.id
    assert claims["typ"] == "access"
    assert {"exp", "iat", "jti"} <= set(claims)
    assert claims["exp"] == claims["iat"] + 900  # type: ignore[operator]
    assert jwt.get_unverified_header(account.access_token)["alg"] == "HS256"


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer not-a-jwt"],
)
async def test_missing_or_malformed_credentials_are_unauthorized(
    http: httpx.AsyncClient, authorization: str | None
) -> None:
    response = await _me_with(http, authorization)
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_the_bearer_scheme_is_case_insensitive(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    account = await api.register()
    response = await _me_with(http, f"bearer {account.access_token}")
    assert response.status_code == 200


async def test_an_expired_token_is_unauthorized(http: httpx.AsyncClient, api: ApiClient) -> None:
    account = await api.register()
    an_hour_ago = FixedClock(datetime.now(UTC) - timedelta(hours=1))
    expired = JwtAccessTokens(JWT_SECRET, clock=an_hour_ago).issue(account.id).token

    error = assert_error(await _me_with(http, f"Bearer {expired}"), 401, "unauthorized")
    assert "expired" in error["message"]


async def test_a_tampered_token_is_unauthorized(http: httpx.AsyncClient, api: ApiClient) -> None:
    victim, attacker = await api.register(), await api.register()
    header, _, signature = _segments(attacker.access_token)
    claims = _claims(attacker.access_token)
    forged_payload = _b64({**claims, "sub": victim.id})

    response = await _me_with(http, f"Bearer {header}.{forged_payload}.{signature}")

    assert_error(response, 401, "unauthorized")


async def test_alg_none_is_unauthorized(http: httpx.AsyncClient, api: ApiClient) -> None:
    account = await api.register()
    unsigned = _b64({"alg": "none", "typ": "JWT"}) + "." + _segments(account.access_token)[1] + "."
    assert_error(await _me_with(http, f"Bearer {unsigned}"), 401, "unauthorized")


@pytest.mark.parametrize(
    ("secret", "algorithm"),
    [("another-secret-" + "y" * 50, "HS256"), (JWT_SECRET, "HS512"), (JWT_SECRET, "HS384")],
)
async def test_wrong_secret_or_algorithm_is_unauthorized(
    http: httpx.AsyncClient, api: ApiClient, secret: str, algorithm: str
) -> None:
    account = await api.register()
    claims = _claims(account.access_token)
    token = jwt.encode(claims, secret, algorithm=algorithm)
    assert_error(await _me_with(http, f"Bearer {token}"), 401, "unauthorized")


@pytest.mark.parametrize("missing", ["exp", "sub", "jti", "iat"])
async def test_a_token_without_a_required_claim_is_unauthorized(
    http: httpx.AsyncClient, api: ApiClient, missing: str
) -> None:
    account = await api.register()
    claims = {k: v for k, v in _claims(account.access_token).items() if k != missing}
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    assert_error(await _me_with(http, f"Bearer {token}"), 401, "unauthorized")


async def test_a_token_of_another_type_is_unauthorized(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    account = await api.register()
    token = jwt.encode({**_claims(account.access_token), "typ": "refresh"}, JWT_SECRET, "HS256")
    assert_error(await _me_with(http, f"Bearer {token}"), 401, "unauthorized")


async def test_the_refresh_token_is_not_an_access_token(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    account = await api.register()
    assert_error(await _me_with(http, f"Bearer {account.refresh_token}"), 401, "unauthorized")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/users"),
        ("GET", "/api/users/x"),
        ("GET", "/api/conversations"),
        ("POST", "/api/conversations"),
        ("POST", "/api/conversations/direct/x"),
        ("GET", "/api/conversations/x"),
        ("POST", "/api/conversations/x/members"),
        ("DELETE", "/api/conversations/x/members/y"),
        ("GET", "/api/conversations/x/messages"),
        ("POST", "/api/conversations/x/messages"),
        ("PATCH", "/api/conversations/x/messages/y"),
        ("DELETE", "/api/conversations/x/messages/y"),
        ("POST", "/api/conversations/x/read"),
        ("GET", "/api/conversations/x/receipts"),
        ("GET", "/api/messages/x"),
        ("POST", "/api/messages/x"),
        ("GET", "/api/presence"),
    ],
)
async def test_every_api_route_but_auth_needs_a_token(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    # Checked before the body: even an invalid body gets 401, not 422.
    response = await http.request(method, path, json={"bogus": True})
    assert_error(response, 401, "unauthorized")
