"""Schemathesis over the server's own OpenAPI document: what the document allows,
the server accepts, what it forbids, the server refuses, and no request is a 500.

The app runs in uvicorn (a thread of its own, in-memory storage, a registered
user's token on every request). Every check schemathesis has runs on every
operation, with one exemption: "schema-valid data must be accepted" is not
applied where a rule depends on more than one value or on server state, which
OpenAPI cannot state (each is in the operation's description and answers 422
or 404 in the envelope):

- ``cursor``: an opaque token the server issued; any other string is invalid;
- ``before`` with ``after``: one or the other, not both;
- a direct conversation (or seed-style direct send) with oneself;
- ``receiverId`` in a seed-style body must repeat the path's receiver;
- a search ``q`` must hold a word (a run of letters or digits, in Unicode terms).

Kept small (``MAX_EXAMPLES`` per operation, a few hundred requests): it runs in
``make test``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from chatcore.testing import in_memory_storage
from entrypoints.app import create_app
from support.app import make_container, make_settings

MAX_EXAMPLES = 6

# (method, path) -> why schema-valid values may still be refused.
STATEFUL_RULES = {
    ("GET", "/api/conversations"): "cursor",
    ("GET", "/api/users"): "cursor",
    ("GET", "/api/conversations/{id}/messages"): "before or after, not both",
    ("GET", "/api/messages/{receiverId}"): "before or after, not both; not oneself",
    ("POST", "/api/conversations/direct/{userId}"): "not oneself",
    ("POST", "/api/messages/{receiverId}"): "receiverId repeats the path; not oneself",
    # A word as chatcore.search defines it (Unicode letters and digits after NFKD) has
    # no exact JSON-schema pattern.
    ("GET", "/api/search/messages"): "cursor; q must hold a word",
}


@contextlib.contextmanager
def _serving(tmp_path: Path) -> Iterator[str]:
    app_settings = make_settings(tmp_path)
    app = create_app(app_settings, container=make_container(app_settings, in_memory_storage()))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning")
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        with httpx.Client(timeout=10.0) as probe:
            while not server.started:
                assert thread.is_alive(), "the server did not start"
                threading.Event().wait(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            url = f"http://127.0.0.1:{port}"
            assert probe.get(f"{url}/readyz").status_code == 200
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _serving(tmp_path_factory.mktemp("fuzz")) as url:
        yield url


@pytest.fixture(scope="module")
def token(server_url: str) -> str:
    answer = httpx.post(
        f"{server_url}/api/auth/register",
        json={"username": "fuzzer", "password": "correct horse battery"},
    )
    assert answer.status_code == 201, answer.text
    access_token: str = answer.json()["accessToken"]
    return access_token


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    excluded: list[Any],
) -> None:
    """Every check on ``MAX_EXAMPLES`` generated requests to one operation: schema-valid
    ones (positive) or schema-invalid ones (negative)."""

    # The token is fixed, not fuzzed (auth has its own tests). Negative cases leave the
    # query out: unknown query parameters are ignored by design (cache busters), which
    # OpenAPI 3.0 cannot say, and every declared one is optional.
    fixed: dict[str, Any] = {"headers": headers}
    if mode is GenerationMode.NEGATIVE:
        fixed["query"] = {}

    @given(case=operation.as_strategy(mode, **fixed))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,  # the same cases every run: a failure reproduces
        database=None,
    )
    def check(case: Any) -> None:
        case.call_and_validate(base_url=base_url, excluded_checks=excluded)

    check()


def test_the_server_does_what_its_openapi_document_says(server_url: str, token: str) -> None:
    schema = schemathesis.openapi.from_url(f"{server_url}/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        key = (operation.method.upper(), operation.path)
        excluded = [positive_data_acceptance] if key in STATEFUL_RULES else []
        for mode in GenerationMode:
            try:
                _fuzz(operation, mode, server_url, headers, excluded)
            except Unsatisfiable:
                continue  # nothing to get wrong: no parameters, no body
            except BaseException as exc:  # schemathesis raises an exception group
                if not isinstance(exc, Exception | BaseExceptionGroup):
                    raise
                # One report per operation and mode, then the next one.
                failures[f"{' '.join(key)} ({mode.value})"] = str(exc)[:3000]
    assert operations > 20
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
