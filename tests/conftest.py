"""Fixtures shared by every test package: the MongoDB-wire servers tests run against.

- ``secantus_uri``: a SecantusDB child process for the whole session (started
  on first use only), on a free port with a temporary storage directory.
- ``secantus_standalone_uri``: the same, advertising a standalone server (no
  replica set), which makes the Mongo adapter run without transactions.
- ``mongo_uri``: where Mongo-backed tests should connect: the real mongod of
  ``CHATCORE_TEST_MONGODB_URI`` if set, else the SecantusDB above.
- ``mongo_db``: a fresh, uniquely named database on ``mongo_uri`` with the
  adapter's indexes, dropped after the test.

Test packages that run on each server in turn use ``support.mongo.backend_uri``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo.documents import Document
from support.mongo import fresh_database, real_mongodb_uri
from support.secantus import SecantusProcess


def _serve(tmp_path_factory: pytest.TempPathFactory, *args: str) -> Iterator[str]:
    server = SecantusProcess(tmp_path_factory.mktemp("secantus") / "data", args=args)
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture(scope="session")
def secantus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(tmp_path_factory)


@pytest.fixture(scope="session")
def secantus_standalone_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(tmp_path_factory, "--standalone")


@pytest.fixture(scope="session")
def mongo_uri(request: pytest.FixtureRequest) -> str:
    return real_mongodb_uri() or str(request.getfixturevalue("secantus_uri"))


@pytest.fixture
async def mongo_db(mongo_uri: str) -> AsyncIterator[AsyncDatabase[Document]]:
    async with fresh_database(mongo_uri) as db:
        yield db


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """Where the app under test stores: ``memory`` unless a test is parametrised with
    ``support.app.on_every_backend`` (then also ``mongo``: the ``mongo_uri`` server)."""
    return str(getattr(request, "param", "memory"))
