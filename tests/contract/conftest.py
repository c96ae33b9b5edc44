"""The adapters every contract suite runs against.

To add an adapter, add a factory to ``STORAGES`` or ``PRESENCE_TRACKERS`` (its
key is the test id): an async context manager factory given the fixture request,
yielding a fresh, empty adapter. ``MARKS`` adds pytest marks to an adapter's tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from adapters.mongo import mongo_storage
from chatcore.chat import Storage
from chatcore.ports import PresenceTracker
from chatcore.presence import LocalPresenceTracker
from chatcore.testing import in_memory_storage
from support.mongo import backend_uri, fresh_database

StorageFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[Storage]]
TrackerFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[PresenceTracker]]


@asynccontextmanager
async def _memory_storage(request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
    yield in_memory_storage()


def _mongo_storage(backend: str) -> StorageFactory:
    @asynccontextmanager
    async def open_storage(request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
        async with fresh_database(backend_uri(request, backend)) as db:
            yield mongo_storage(db)

    return open_storage


@asynccontextmanager
async def _local_presence(request: pytest.FixtureRequest) -> AsyncIterator[PresenceTracker]:
    yield LocalPresenceTracker()


STORAGES: dict[str, StorageFactory] = {
    "memory": _memory_storage,
    "secantus": _mongo_storage("secantus"),
    # The Mongo adapter's fallback for servers without transactions.
    "secantus-standalone": _mongo_storage("secantus-standalone"),
    "mongod": _mongo_storage("mongod"),
}

PRESENCE_TRACKERS: dict[str, TrackerFactory] = {
    "memory": _local_presence,
}

MARKS: dict[str, tuple[pytest.MarkDecorator, ...]] = {
    "secantus": (pytest.mark.mongo,),
    "secantus-standalone": (pytest.mark.mongo,),
    "mongod": (pytest.mark.mongo,),
}


def _params(names: list[str]) -> list[object]:
    return [pytest.param(name, id=name, marks=MARKS.get(name, ())) for name in names]


@pytest.fixture(params=_params(list(STORAGES)))
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
    async with STORAGES[request.param](request) as opened:
        yield opened


@pytest.fixture(params=_params(list(PRESENCE_TRACKERS)))
async def presence_tracker(request: pytest.FixtureRequest) -> AsyncIterator[PresenceTracker]:
    async with PRESENCE_TRACKERS[request.param](request) as tracker:
        yield tracker
