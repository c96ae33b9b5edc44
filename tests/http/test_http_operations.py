"""Outside /api: health, readiness, metrics, docs, home page; routing and server errors."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest
from httpkit import ApiClient, assert_error
from pymongo import AsyncMongoClient

from chatcore.chat import Storage
from chatcore.errors import ChatError, RateLimited, Unavailable
from chatcore.models import User
from chatcore.testing import InMemoryUserRepository, in_memory_storage
from entrypoints.app import create_app
from support.app import BASE_URL, AppFactory, make_container, make_settings, running
from support.secantus import SecantusProcess

# --- health and readiness -------------------------------------------------------------------


async def test_healthz(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_started(http: httpx.AsyncClient) -> None:
    response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_before_startup_readyz_and_the_api_are_unavailable(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    app = create_app(settings, container=make_container(settings, in_memory_storage()))
    # No lifespan: the app is built but not started.
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert_error(await http.get("/readyz"), 503, "unavailable")
        login = await http.post("/api/auth/login", json={"username": "a", "password": "b" * 8})
        assert_error(login, 503, "unavailable")


@pytest.mark.mongo
@pytest.mark.slow
async def test_readyz_is_503_when_the_database_is_down(tmp_path: Path) -> None:
    database = SecantusProcess(tmp_path / "db")
    database.start()
    try:
        settings = make_settings(tmp_path, mongodb_uri=database.uri, mongodb_timeout_ms=300)
        app = create_app(settings, container=make_container(settings, None))
        async with running(app) as http:
            assert (await http.get("/readyz")).status_code == 200
            database.kill()
            assert_error(await http.get("/readyz"), 503, "unavailable")
            down = await http.post("/api/auth/login", json={"username": "x", "password": "y" * 8})
            assert_error(down, 503, "unavailable")
    finally:
        database.kill()


# --- metrics --------------------------------------------------------------------------------


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample (0 if absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_requests_by_route_template(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me = await api.register()
    for _ in range(3):
        await http.get(f"/api/users/{me.id}", headers=me.headers)
    await http.get("/api/users/unknown", headers=me.headers)
    await http.get("/no/such/page")

    response = await http.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = "/api/users/{userId}"
    assert _sample(text, "chatcore_http_requests_total", route=route, status="200") == 3
    assert _sample(text, "chatcore_http_requests_total", route=route, status="404") == 1
    assert _sample(text, "chatcore_http_requests_total", route="<unmatched>", status="404") == 1
    assert (
        _sample(text, "chatcore_http_request_duration_seconds_count", route=route, status="200")
        == 3
    )
    assert "chatcore_sockets_connected 0.0" in text


async def test_metrics_count_stored_messages_not_replays(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    me, other = await api.register(), await api.register()
    dm = await api.direct(me, other)
    await api.send(me, dm["id"], "a", client_msg_id="once")
    await api.send(me, dm["id"], "a", client_msg_id="once")
    await api.send(other, dm["id"], "b")

    text = (await http.get("/metrics")).text

    assert _sample(text, "chatcore_messages_sent_total") == 2


# --- docs -----------------------------------------------------------------------------------

API_ROWS = {
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/refresh"),
    ("post", "/api/auth/logout"),
    ("get", "/api/users/me"),
    ("get", "/api/users"),
    ("get", "/api/users/{userId}"),
    ("get", "/api/conversations"),
    ("post", "/api/conversations"),
    ("post", "/api/conversations/direct/{userId}"),
    ("get", "/api/conversations/{id}"),
    ("post", "/api/conversations/{id}/members"),
    ("delete", "/api/conversations/{id}/members/{userId}"),
    ("get", "/api/conversations/{id}/messages"),
    ("post", "/api/conversations/{id}/messages"),
    ("patch", "/api/conversations/{id}/messages/{messageId}"),
    ("delete", "/api/conversations/{id}/messages/{messageId}"),
    ("post", "/api/conversations/{id}/read"),
    ("get", "/api/conversations/{id}/receipts"),
    ("get", "/api/messages/{receiverId}"),
    ("post", "/api/messages/{receiverId}"),
    ("get", "/api/presence"),
    ("get", "/api/search/messages"),
    ("put", "/api/conversations/{id}/messages/{messageId}/reactions/{emoji}"),
    ("delete", "/api/conversations/{id}/messages/{messageId}/reactions/{emoji}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/docs"),
    ("get", "/openapi.json"),
    ("get", "/"),
}


async def test_openapi_describes_every_route(http: httpx.AsyncClient) -> None:
    response = await http.get("/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    operations = {(method, path) for path, item in document["paths"].items() for method in item}
    assert operations == API_ROWS
    schemas = document["components"]["schemas"]
    for method, path in API_ROWS:
        operation = document["paths"][path][method]
        assert operation["summary"]
        if path.startswith("/api/"):
            assert "500" in operation["responses"]
        for response_doc in operation["responses"].values():
            for media in response_doc.get("content", {}).values():
                ref = media.get("schema", {}).get("$ref")
                if ref:
                    assert ref.rsplit("/", 1)[1] in schemas


async def test_openapi_schemas_speak_camel_case(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    send = document["paths"]["/api/conversations/{id}/messages"]["post"]
    body_ref = send["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body_schema = document["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert set(body_schema["properties"]) == {"body", "clientMsgId", "threadId"}
    assert body_schema["additionalProperties"] is False
    assert set(send["responses"]) >= {"200", "201", "401", "404", "413", "422"}
    assert send["security"] == [{"bearerAuth": []}]
    history = document["paths"]["/api/conversations/{id}/messages"]["get"]
    names = {p["name"]: p for p in history["parameters"]}
    assert set(names) == {"id", "before", "after", "limit", "threadId"}
    assert names["id"]["in"] == "path"
    login = document["paths"]["/api/auth/login"]["post"]
    assert "security" not in login


async def test_docs_work_offline(http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by the app itself"
        fetched = await http.get(asset)
        assert fetched.status_code == 200, asset
        assert fetched.content
    bundle = await http.get("/docs/static/swagger-ui-bundle.js")
    assert "javascript" in bundle.headers["content-type"]
    assert "SwaggerUIBundle" in (await http.get("/docs/static/docs-init.js")).text


@pytest.mark.parametrize(
    "name", ["index.html", "swagger-editor.js", "..%2F..%2Fpyproject.toml", "..%2Fcore.py"]
)
async def test_docs_serve_only_their_own_assets(http: httpx.AsyncClient, name: str) -> None:
    assert_error(await http.get(f"/docs/static/{name}"), 404, "not_found")


async def test_home_page(http: httpx.AsyncClient) -> None:
    response = await http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "chatcore" in response.text


# --- routing and server errors --------------------------------------------------------------


async def test_unknown_routes_get_the_envelope(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/api/nothing-here"), 404, "not_found")
    assert_error(await http.get("/favicon.ico"), 404, "not_found")


async def test_wrong_methods_get_405_in_the_envelope(http: httpx.AsyncClient) -> None:
    response = await http.put("/api/users/me")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


class _ExplodingUsers(InMemoryUserRepository):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def get(self, user_id: str) -> User | None:
        raise self.error


def _storage_with_users(users: InMemoryUserRepository) -> Storage:
    storage = in_memory_storage()
    return Storage(
        users=users,
        conversations=storage.conversations,
        messages=storage.messages,
        receipts=storage.receipts,
        refresh_tokens=storage.refresh_tokens,
        search=storage.search,
    )


async def _get_me_while_users_raise(
    start_app: AppFactory, caplog: pytest.LogCaptureFixture, error: Exception
) -> httpx.Response:
    """GET /api/users/me, as a registered user, on an app whose user store then raises
    ``error``; the ``chatcore.http`` errors logged meanwhile are in ``caplog``."""
    async with start_app(storage=_storage_with_users(_ExplodingUsers(error))) as http:
        me = await ApiClient(http).register()
        with caplog.at_level(logging.ERROR, logger="chatcore.http"):
            return await http.get("/api/users/me", headers=me.headers)


async def test_an_unexpected_error_is_a_500_without_internals(
    start_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    response = await _get_me_while_users_raise(
        start_app, caplog, RuntimeError("db password is hunter2")
    )

    error = assert_error(response, 500, "internal_error")
    request_id = response.headers["x-request-id"]
    assert error["details"] == {"requestId": request_id}
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged
    assert logged[0].exc_info is not None  # the traceback goes to the log


class _StorageBug(ChatError):
    code = "internal_error"


async def test_an_internal_domain_error_is_a_500_without_its_message(
    start_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    response = await _get_me_while_users_raise(
        start_app, caplog, _StorageBug("index users_1 is corrupt")
    )

    error = assert_error(response, 500, "internal_error")
    assert error["details"] == {"requestId": response.headers["x-request-id"]}
    assert "corrupt" not in response.text
    assert any("corrupt" in str(r.exc_info) for r in caplog.records if r.exc_info)


async def test_storage_outage_is_503(start_app: AppFactory) -> None:
    storage = _storage_with_users(_ExplodingUsers(Unavailable("database unreachable")))
    async with start_app(storage=storage) as http:
        me = await ApiClient(http).register()
        response = await http.get("/api/users/me", headers=me.headers)
    assert_error(response, 503, "unavailable")


async def test_rate_limited_is_429_with_retry_after(start_app: AppFactory) -> None:
    storage = _storage_with_users(_ExplodingUsers(RateLimited("slow down", retry_after=2.2)))
    async with start_app(storage=storage) as http:
        me = await ApiClient(http).register()
        response = await http.get("/api/users/me", headers=me.headers)
    assert_error(response, 429, "rate_limited")
    assert response.headers["retry-after"] == "3"


# --- request ids, logs, CORS ----------------------------------------------------------------


async def test_request_ids_are_kept_when_tame(http: httpx.AsyncClient) -> None:
    kept = await http.get("/healthz", headers={"X-Request-ID": "abc-123.x"})
    assert kept.headers["x-request-id"] == "abc-123.x"
    replaced = await http.get("/healthz", headers={"X-Request-ID": "<script>" + "x" * 100})
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])


async def test_one_log_line_per_request(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="chatcore.http"):
        response = await http.get("/api/users/someone")
    lines = [r.getMessage() for r in caplog.records if r.name == "chatcore.http"]
    assert len(lines) == 1
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(
        rf"request method=GET route=/api/users/\{{userId\}} status=401 "
        rf"duration_ms=\d+\.\d\d request_id={request_id}",
        lines[0],
    )


async def test_cors_allows_configured_origins_only(start_app: AppFactory) -> None:
    async with start_app(cors_origins=["https://chat.example"]) as http:
        preflight = await http.options(
            "/api/auth/login",
            headers={
                "Origin": "https://chat.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://chat.example"
        error = await http.get("/api/users/me", headers={"Origin": "https://chat.example"})
        assert error.headers["access-control-allow-origin"] == "https://chat.example"
        other = await http.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


@pytest.mark.mongo
async def test_the_app_can_be_started_again_after_a_stop(tmp_path: Path, mongo_uri: str) -> None:
    settings = make_settings(tmp_path, mongodb_uri=mongo_uri, mongodb_database="restart_test")
    app = create_app(settings, container=make_container(settings, None))
    try:
        async with running(app) as http:
            me = await ApiClient(http).register()
        async with running(app) as http:  # storage reopened, the Chat rebuilt on it
            response = await http.get("/api/users/me", headers=me.headers)
            assert response.status_code == 200, response.text
    finally:
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_uri)
        await client.drop_database("restart_test")
        await client.close()
