"""Fixtures of the Mongo adapter's own tests: servers per backend, and private servers
that a test may stop, kill and restart."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo import MongoTimeouts, create_client, mongo_storage
from adapters.mongo.documents import Document
from chatcore.chat import Storage
from support.mongo import backend_uri, fresh_database
from support.secantus import SecantusProcess


@pytest.fixture(params=["secantus", "mongod"])
def backend(request: pytest.FixtureRequest) -> str:
    """The URI of each server the adapter must work on (mongod only if configured)."""
    return backend_uri(request, request.param)


@pytest.fixture
async def db(backend: str) -> AsyncIterator[AsyncDatabase[Document]]:
    async with fresh_database(backend) as database:
        yield database


class ServerFactory:
    """Starts private SecantusDB servers for one test and stops them all after it."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._servers: list[SecantusProcess] = []

    def __call__(self, *args: str) -> SecantusProcess:
        server = SecantusProcess(self._root / f"server-{len(self._servers)}", args=args)
        self._servers.append(server)
        server.start()
        return server

    def stop_all(self) -> None:
        for server in self._servers:
            server.stop()


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """``private_server(*args)`` starts a SecantusDB of this test's own."""
    factory = ServerFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
async def two_storages(
    backend: str, db: AsyncDatabase[Document]
) -> AsyncIterator[tuple[Storage, Storage]]:
    """Two storages on the same database through two separate clients (connection
    pools), as two server processes would have."""
    other_client = create_client(backend)
    try:
        yield mongo_storage(db), mongo_storage(other_client[db.name])
    finally:
        await other_client.close()


@pytest.fixture(scope="module")
def fail_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecantusProcess]:
    """A SecantusDB of this module's own with mongod's test commands (``failCommand``)."""
    factory = ServerFactory(tmp_path_factory.mktemp("failpoints"))
    try:
        yield factory("--enable-test-commands")
    finally:
        factory.stop_all()


@contextlib.asynccontextmanager
async def failpoint_client(
    uri: str, timeouts: MongoTimeouts | None = None
) -> AsyncIterator[AsyncMongoClient[Document]]:
    """The adapter's client on a ``fail_server``; its fail point is off again afterwards."""
    client = create_client(uri, timeouts=timeouts)
    try:
        yield client
    finally:
        await client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
        await client.close()


async def fail_next(
    client: AsyncMongoClient[Document], times: int, command: str = "insert", **data: Any
) -> None:
    """Arm ``failCommand``: the next ``times`` ``command``s fail as ``data`` says."""
    await client.admin.command(
        {
            "configureFailPoint": "failCommand",
            "mode": {"times": times},
            "data": {"failCommands": [command], **data},
        }
    )
