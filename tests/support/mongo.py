"""Fresh databases on a MongoDB-wire server, and counting the commands a client sends."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from pymongo.monitoring import CommandListener

from adapters.mongo import create_client, ensure_indexes
from adapters.mongo.documents import Document

# Set it to run the Mongo tests against a real mongod as well (a replica set
# member for the transactional paths), e.g. mongodb://localhost:27017/?replicaSet=rs0
MONGODB_URI_ENV = "CHATCORE_TEST_MONGODB_URI"


def real_mongodb_uri() -> str | None:
    return os.environ.get(MONGODB_URI_ENV) or None


def backend_uri(request: pytest.FixtureRequest, backend: str) -> str:
    """The URI of ``backend``: "secantus" (the session's SecantusDB), "secantus-standalone"
    (one without transactions) or "mongod" (the real server of
    ``CHATCORE_TEST_MONGODB_URI``; the test is skipped if unset)."""
    if backend == "secantus":
        return str(request.getfixturevalue("secantus_uri"))
    if backend == "secantus-standalone":
        return str(request.getfixturevalue("secantus_standalone_uri"))
    uri = real_mongodb_uri()
    if uri is None:
        pytest.skip(f"no real mongod: set {MONGODB_URI_ENV} to run this")
    return uri


def unique_database_name(prefix: str = "test") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


async def drop_database(uri: str, name: str) -> None:
    """Drop database ``name`` on ``uri``, if the server still answers."""
    client = create_client(uri)
    try:
        await client.drop_database(name)
    except PyMongoError:
        pass  # the server is gone (an outage test): nothing left to clean
    finally:
        await client.close()


@asynccontextmanager
async def fresh_database(
    uri: str, *, indexes: bool = True, command_listeners: Sequence[CommandListener] = ()
) -> AsyncIterator[AsyncDatabase[Document]]:
    """A new, uniquely named database on ``uri`` (with the adapter's indexes),
    dropped afterwards; its client is closed on exit."""
    client = create_client(uri, command_listeners=command_listeners)
    db = client[unique_database_name()]
    try:
        if indexes:
            await ensure_indexes(db)
        yield db
    finally:
        try:
            await client.drop_database(db.name)
        except PyMongoError:
            pass  # the server is gone (an outage test): nothing left to clean
        finally:
            await client.close()
