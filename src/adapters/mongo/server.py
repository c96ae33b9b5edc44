"""What the server behind a client can do, asked once: transactions, and whether its
query planner uses indexes for ``$or`` filters.

SecantusDB (the embedded server) answers every query mongod answers, but its
planner uses an index only when every field of the filter is in that index and
the filter is equalities plus at most one range: an ``$or``, an ``$in`` on a
compound index, a ``$ne`` or any extra field turns the query into a collection
scan. The repositories shape their filters so that both planners use an index,
and where one query cannot do that on SecantusDB (unread counts over many
conversations) they pick a strategy by this profile.
"""

from __future__ import annotations

import asyncio

from attrs import frozen
from pymongo import AsyncMongoClient

from adapters.mongo.documents import Document
from adapters.mongo.errors import translate_errors


@frozen(kw_only=True)
class ServerProfile:
    """``transactions``: multi-document transactions run (replica set member or mongos).
    ``indexed_or``: an ``$or`` of index ranges is answered from the index (mongod)."""

    transactions: bool
    indexed_or: bool


async def detect_profile(client: AsyncMongoClient[Document]) -> ServerProfile:
    """Ask the server (``hello`` and ``buildInfo``: two commands)."""
    with translate_errors():
        hello = await client.admin.command("hello")
        build = await client.admin.command("buildInfo")
    sessions = hello.get("logicalSessionTimeoutMinutes") is not None
    replicated = bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"
    return ServerProfile(
        transactions=sessions and replicated,
        indexed_or="secantusVersion" not in build,
    )


class ServerInfo:
    """The profile of one client's server, detected on first use (once, however many
    callers ask at the same time). ``transactions`` overrides the detected value."""

    def __init__(
        self, client: AsyncMongoClient[Document], *, transactions: bool | None = None
    ) -> None:
        self.client = client
        self._transactions = transactions
        self._profile: ServerProfile | None = None
        self._detecting = asyncio.Lock()

    async def profile(self) -> ServerProfile:
        if self._profile is None:
            async with self._detecting:
                if self._profile is None:
                    detected = await detect_profile(self.client)
                    if self._transactions is not None:
                        detected = ServerProfile(
                            transactions=self._transactions, indexed_or=detected.indexed_or
                        )
                    self._profile = detected
        return self._profile

    def no_transactions(self) -> None:
        """The server refused a transaction after all: go without from now on."""
        if self._profile is not None:
            self._profile = ServerProfile(transactions=False, indexed_or=self._profile.indexed_or)
        self._transactions = False
