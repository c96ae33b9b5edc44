"""docs/api.md is the contract: the routes it lists are the routes the server serves
(as its OpenAPI document says), and its event tables are the events the code knows."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from chatcore.events import SERVER_EVENTS
from entrypoints.app import ChatcoreApp

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"

# Contract routes that other work in progress adds (v1.1). Whoever makes the server
# serve one removes it here: the test fails while a route in this set is served, so
# the set cannot go stale, and fails for any other difference between doc and server.
NOT_YET_SERVED: set[tuple[str, str]] = set()
# The same for client-to-server socket events.
NOT_YET_HANDLED: set[str] = set()

_ROUTE_ROW = re.compile(r"^\| (GET|POST|PUT|PATCH|DELETE) \| (/\S*) \|", re.MULTILINE)
_EVENT_ROW = re.compile(r"^\| ([a-z][A-Za-z]+) \| ", re.MULTILINE)


def _documented_routes() -> set[tuple[str, str]]:
    return {(method, path) for method, path in _ROUTE_ROW.findall(API_DOC.read_text())}


def _event_table(heading: str) -> set[str]:
    """Event names in the first table after the paragraph that starts with ``heading``."""
    text = API_DOC.read_text()
    start = text.index(heading)
    table = text[start : text.index("\n\n", text.index("\n|", start) + 1)]
    return set(_EVENT_ROW.findall(table)) - {"event"}


async def _served_routes(http: httpx.AsyncClient) -> set[tuple[str, str]]:
    document = (await http.get("/openapi.json")).json()
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }


async def test_the_doc_and_the_openapi_document_list_the_same_routes(
    http: httpx.AsyncClient,
) -> None:
    documented = _documented_routes()
    served = await _served_routes(http)

    assert len(documented) > 20, "docs/api.md's route tables were not found"
    assert documented >= NOT_YET_SERVED
    assert served - documented == set(), "served, but not in docs/api.md"
    assert documented - NOT_YET_SERVED - served == set(), "in docs/api.md, but not served"
    assert NOT_YET_SERVED & served == set(), "served now: remove it from NOT_YET_SERVED"


def test_the_server_events_of_the_doc_are_the_domain_s_table() -> None:
    assert _event_table("**Server to client:**") == set(SERVER_EVENTS)


def test_the_client_events_of_the_doc_are_the_handled_ones(app: ChatcoreApp) -> None:
    documented = _event_table("**Client to server.**")
    handled = set(app.sio.handlers["/"]) - {"connect", "disconnect", "*"}

    assert documented >= NOT_YET_HANDLED
    assert handled == documented - NOT_YET_HANDLED
    assert NOT_YET_HANDLED & handled == set(), "handled now: remove it from NOT_YET_HANDLED"
