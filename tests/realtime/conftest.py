"""Fixtures: a live server (the real app in uvicorn) to connect real clients to."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from livechat import LiveChat, LiveFactory, live_server


@pytest.fixture
async def live(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> AsyncIterator[LiveChat]:
    """A live server on fresh in-memory storage (or a fresh database, backend "mongo")."""
    mongo_uri = str(request.getfixturevalue("mongo_uri")) if backend == "mongo" else None
    async with live_server(tmp_path, mongo_uri=mongo_uri) as chat:
        yield chat


@pytest.fixture
def make_live(tmp_path: Path) -> LiveFactory:
    """A live server of one's own: ``async with make_live(storage=...) as live``."""

    def make(**kwargs: Any) -> contextlib.AbstractAsyncContextManager[LiveChat]:
        return live_server(tmp_path, **kwargs)

    return make
