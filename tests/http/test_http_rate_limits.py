"""Rate limits over HTTP with the contract's default limits (API.md v1.1 "Rate limits").

The domain's clock is the test's FixedClock, so no limit frees up while a test runs
unless the test moves the clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpkit import ApiClient, assert_error

from chatcore.testing import FixedClock, in_memory_storage
from entrypoints.app import create_app
from entrypoints.settings import RATE_LIMIT_SETTINGS, Settings
from support.accounts import PASSWORD, Account
from support.app import AppFactory, make_container, make_settings, running
from support.secantus import free_port

# What an operator gets without setting anything.
DEFAULTS: dict[str, Any] = {
    name: Settings.model_fields[name].default for name in RATE_LIMIT_SETTINGS
}


@pytest.fixture
async def limited(tmp_path: Path, clock: FixedClock) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the default limits (and, to test addresses, a trusted proxy)."""
    settings = make_settings(tmp_path, trusted_proxies="10.9.0.0/16", **DEFAULTS)
    app = create_app(settings, container=make_container(settings, in_memory_storage(), clock))
    async with running(app) as http:
        yield http


@pytest.fixture
def kit(limited: httpx.AsyncClient) -> ApiClient:
    return ApiClient(limited)


def _limit_headers(response: httpx.Response) -> tuple[int, int, int]:
    h = response.headers
    return int(h["RateLimit-Limit"]), int(h["RateLimit-Remaining"]), int(h["RateLimit-Reset"])


async def _pair(kit: ApiClient) -> tuple[Account, Account, str]:
    alice, bob = await kit.register(), await kit.register()
    return alice, bob, (await kit.direct(alice, bob))["id"]


# -- sends ------------------------------------------------------------------------------


async def test_sends_carry_the_limit_and_the_31st_is_refused(
    kit: ApiClient, clock: FixedClock
) -> None:
    alice, _, cid = await _pair(kit)
    answers = [await kit.send(alice, cid, f"m{i}") for i in range(30)]
    assert {a.status_code for a in answers} == {201}
    assert _limit_headers(answers[0]) == (30, 29, 1)
    assert _limit_headers(answers[-1]) == (30, 0, 10)

    refused = await kit.send(alice, cid, "one too many")

    error = assert_error(refused, 429, "rate_limited")
    assert error["details"] == {"retryAfter": 1}
    assert refused.headers["Retry-After"] == "1"
    assert _limit_headers(refused) == (30, 0, 10)
    assert len((await kit.history(alice, cid, limit=100))["messages"]) == 30
    clock.advance(seconds=0.334)
    assert (await kit.send(alice, cid, "after a third of a second")).status_code == 201


async def test_the_seed_send_shares_the_budget(kit: ApiClient) -> None:
    alice, bob, cid = await _pair(kit)
    for i in range(30):
        await kit.sent(alice, cid, f"m{i}")

    refused = await kit.http.post(
        f"/api/messages/{bob.id}", json={"body": "and this?"}, headers=alice.headers
    )

    assert_error(refused, 429, "rate_limited")


async def test_idempotent_replays_are_free(kit: ApiClient) -> None:
    alice, _, cid = await _pair(kit)
    first = await kit.send(alice, cid, "once", client_msg_id="c-1")
    for _ in range(40):
        replay = await kit.send(alice, cid, "once", client_msg_id="c-1")
        assert replay.status_code == 200
        assert replay.json()["id"] == first.json()["id"]
    for i in range(29):
        assert (await kit.send(alice, cid, f"m{i}")).status_code == 201


async def test_sends_do_not_spend_the_api_budget(tmp_path: Path, clock: FixedClock) -> None:
    settings = make_settings(tmp_path, **{**DEFAULTS, "rate_api": "2/60s"})
    app = create_app(settings, container=make_container(settings, in_memory_storage(), clock))
    async with running(app) as http:
        kit = ApiClient(http)
        alice, bob = await kit.register(), await kit.register()
        cid = (await kit.direct(alice, bob))["id"]  # one request of the api budget
        for i in range(5):
            assert (await kit.send(alice, cid, f"m{i}")).status_code == 201
        me = await http.get("/api/users/me", headers=alice.headers)
        assert _limit_headers(me) == (2, 0, 60)
        refused = await http.get("/api/users/me", headers=alice.headers)
        assert_error(refused, 429, "rate_limited")
        assert refused.headers["Retry-After"] == "30"
        # Bob's budget is his own.
        assert (await http.get("/api/users/me", headers=bob.headers)).status_code == 200


async def test_requests_refused_for_other_reasons_still_show_the_budget(kit: ApiClient) -> None:
    alice = await kit.register()

    missing = await kit.http.get("/api/conversations/nope", headers=alice.headers)

    assert_error(missing, 404, "not_found")
    assert _limit_headers(missing) == (600, 599, 1)


async def test_unauthenticated_requests_are_not_metered(kit: ApiClient) -> None:
    answer = await kit.http.get("/api/users/me")
    assert_error(answer, 401, "unauthorized")
    assert "RateLimit-Limit" not in answer.headers


# -- logins and registrations ----------------------------------------------------------


async def _login(
    http: httpx.AsyncClient, username: str, password: str, forwarded: str | None = None
) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return await http.post(
        "/api/auth/login", json={"username": username, "password": password}, headers=headers
    )


async def test_failed_logins_are_limited_per_address_and_username(
    kit: ApiClient, clock: FixedClock
) -> None:
    alice = await kit.register()
    for _ in range(10):
        assert_error(await _login(kit.http, alice.username, "wrong password"), 401, "unauthorized")

    refused = await _login(kit.http, alice.username, PASSWORD)

    assert_error(refused, 429, "rate_limited")
    assert refused.headers["Retry-After"] == "6"
    assert _limit_headers(refused) == (10, 0, 60)
    # A client naming another address itself changes nothing: 127.0.0.1 is no trusted proxy.
    assert_error(await _login(kit.http, alice.username, PASSWORD, "1.2.3.4"), 429, "rate_limited")
    clock.advance(seconds=6)
    ok = await _login(kit.http, alice.username, PASSWORD)
    assert ok.status_code == 200
    assert _limit_headers(ok)[:2] == (10, 1)  # the success was given back


async def test_a_trusted_proxy_names_the_client(tmp_path: Path, clock: FixedClock) -> None:
    settings = make_settings(tmp_path, trusted_proxies="127.0.0.0/8", **DEFAULTS)
    app = create_app(settings, container=make_container(settings, in_memory_storage(), clock))
    async with running(app) as http:
        alice = await ApiClient(http).register()
        for _ in range(10):
            await _login(http, alice.username, "wrong password", "203.0.113.7")
        # The proxy's own address is trusted: the client is the rightmost untrusted hop.
        assert_error(
            await _login(http, alice.username, PASSWORD, "198.51.100.1, 203.0.113.7"),
            429,
            "rate_limited",
        )
        ok = await _login(http, alice.username, PASSWORD, "203.0.113.7, 198.51.100.1")
        assert ok.status_code == 200


async def test_registrations_are_limited_per_address(kit: ApiClient) -> None:
    for _ in range(20):
        await kit.register()

    refused = await kit.http.post(
        "/api/auth/register", json={"username": "one-more", "password": PASSWORD}
    )

    assert_error(refused, 429, "rate_limited")
    assert refused.headers["Retry-After"] == "3"
    login = await _login(kit.http, "one-more", PASSWORD)
    assert_error(login, 401, "unauthorized")  # nothing was created


# -- operations ---------------------------------------------------------------------------


async def test_refusals_are_counted_by_limit_and_action(kit: ApiClient) -> None:
    alice, _, cid = await _pair(kit)
    for i in range(32):
        await kit.send(alice, cid, f"m{i}")

    metrics = (await kit.http.get("/metrics")).text

    assert 'chatcore_rate_limited_total{action="send_message",limit="send"} 2.0' in metrics


async def test_the_openapi_document_lists_429_where_limits_apply(kit: ApiClient) -> None:
    paths = (await kit.http.get("/openapi.json")).json()["paths"]
    assert "429" in paths["/api/auth/login"]["post"]["responses"]
    assert "429" in paths["/api/conversations/{id}/messages"]["post"]["responses"]
    assert "429" not in paths["/api/auth/refresh"]["post"]["responses"]


def test_limits_that_are_neither_a_rate_nor_off_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rate"):
        make_settings(tmp_path, rate_send="30 per 10s")


async def test_limits_can_be_off(start_app: AppFactory) -> None:
    async with start_app() as http:
        kit = ApiClient(http)
        alice, _, cid = await _pair(kit)
        answers = [await kit.send(alice, cid, f"m{i}") for i in range(40)]
        assert {a.status_code for a in answers} == {201}
        assert "RateLimit-Limit" not in answers[0].headers


async def test_with_redis_unreachable_limits_hold_per_process(
    tmp_path: Path, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(tmp_path, redis_url=nobody, **DEFAULTS)
    app = create_app(settings, container=make_container(settings, in_memory_storage(), clock))
    async with running(app) as http:
        kit = ApiClient(http)
        alice, _, cid = await _pair(kit)
        answers = [await kit.send(alice, cid, f"m{i}") for i in range(31)]
        metrics = (await http.get("/metrics")).text

    assert [a.status_code for a in answers] == [201] * 30 + [429]
    # Every decision: 2 registrations, opening the conversation (api), 31 sends.
    assert "chatcore_rate_limiter_fallbacks_total 34.0" in metrics
    warnings = [
        r for r in caplog.records if "rate limits: Redis is not answering" in r.getMessage()
    ]
    assert len(warnings) == 1
