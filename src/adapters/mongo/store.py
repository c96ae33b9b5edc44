"""Assembling the MongoDB storage, and the object that owns the client's lifetime."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.monitoring import CommandListener

from adapters.mongo.client import MongoTimeouts, create_client
from adapters.mongo.conversations import MongoConversationRepository
from adapters.mongo.documents import CONVERSATIONS, Document
from adapters.mongo.errors import translate_errors
from adapters.mongo.indexes import ensure_indexes
from adapters.mongo.messages import MongoMessageRepository
from adapters.mongo.receipts import MongoReceiptRepository
from adapters.mongo.refresh_tokens import MongoRefreshTokenRepository
from adapters.mongo.search import MongoMessageSearch
from adapters.mongo.server import ServerInfo
from adapters.mongo.transactions import Transactions
from adapters.mongo.users import MongoUserRepository
from chatcore.chat import Storage
from chatcore.errors import Unavailable
from chatcore.ports import Clock
from chatcore.system import SystemClock

DEFAULT_DATABASE = "chatcore"


def mongo_storage(
    db: AsyncDatabase[Document], *, transactions: bool | None = None, clock: Clock | None = None
) -> Storage:
    """The repositories on ``db`` (indexes must exist: see :func:`ensure_indexes`).

    ``transactions`` None asks the server once, on first use, whether it runs
    multi-document transactions (see :class:`ServerInfo`). ``clock`` tells search
    where "recent" starts (the system clock by default).
    """
    server = ServerInfo(db.client, transactions=transactions)
    atomic = Transactions(server)  # one for all: one session reaper
    return Storage(
        users=MongoUserRepository(db),
        conversations=MongoConversationRepository(db, atomic),
        messages=MongoMessageRepository(db, server, transactions=atomic),
        receipts=MongoReceiptRepository(db),
        refresh_tokens=MongoRefreshTokenRepository(db),
        search=MongoMessageSearch(db, clock or SystemClock()),
    )


class MongoStore:
    """Owns one client and the storage on one database: open, ping, close.

    >>> store = MongoStore("mongodb://localhost:27017/chat")  # no I/O yet
    >>> # await store.open(); chat = build_chat(storage=store.storage, ...)

    The database is ``database`` if given, else the one named in the URI, else
    ``chatcore``. Usable as ``async with MongoStore(uri) as store: ...``.
    """

    def __init__(
        self,
        uri: str,
        *,
        database: str | None = None,
        timeouts: MongoTimeouts | None = None,
        command_listeners: Sequence[CommandListener] = (),
        transactions: bool | None = None,
    ) -> None:
        self._uri = uri
        self._database = database
        self._timeouts = timeouts
        self._listeners = tuple(command_listeners)
        self._transactions = transactions
        self._client: AsyncMongoClient[Document] | None = None
        self._db: AsyncDatabase[Document] | None = None
        self._storage: Storage | None = None

    @property
    def storage(self) -> Storage:
        """The repositories; only after :meth:`open`."""
        if self._storage is None:
            raise RuntimeError("MongoStore is not open")
        return self._storage

    @property
    def database(self) -> AsyncDatabase[Document]:
        if self._db is None:
            raise RuntimeError("MongoStore is not open")
        return self._db

    async def open(self) -> Storage:
        """Connect, create the indexes and find out whether transactions are supported.
        Raises Unavailable if the server cannot be reached."""
        if self._storage is not None:
            return self._storage
        client = create_client(
            self._uri, timeouts=self._timeouts, command_listeners=self._listeners
        )
        try:
            db = (
                client[self._database]
                if self._database
                else client.get_default_database(default=DEFAULT_DATABASE)
            )
            await ensure_indexes(db)
            profile = await ServerInfo(client, transactions=self._transactions).profile()
        except BaseException:
            await client.close()
            raise
        self._client, self._db = client, db
        self._storage = mongo_storage(db, transactions=profile.transactions)
        return self._storage

    async def ping(self) -> None:
        """Raise Unavailable unless the server answers from its storage (readiness probe).

        Known down (the driver saw its connections fail, or its monitor found no
        primary) is answered at once, without waiting a server-selection timeout
        for the server to come back: the probe tells the truth now. Otherwise one
        read by ``_id`` (of a conversation that does not exist): a ``ping`` alone is
        answered by a server whose storage engine has failed (SecantusDB after a
        WiredTiger panic, e.g. on a full disk, answers every read and write with
        ``InternalError`` but ``ping``)."""
        if self._client is None or self._db is None:
            raise RuntimeError("MongoStore is not open")
        if not self._client.topology_description.has_writable_server():
            raise Unavailable("storage is unavailable")
        with translate_errors():
            await self._db[CONVERSATIONS].find_one({"_id": ""}, {"_id": 1})

    async def close(self) -> None:
        """Close the client (idempotent)."""
        client, self._client, self._db, self._storage = self._client, None, None, None
        if client is not None:
            await client.close()

    async def __aenter__(self) -> MongoStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
