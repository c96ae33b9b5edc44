"""Multi-document transactions with a bounded retry, and a fallback where there are none.

MongoDB runs transactions on replica sets and sharded clusters only; SecantusDB
advertises itself as a one-node replica set and runs them too. A standalone
mongod does not: there :class:`Transactions` runs the same steps one after the
other without atomicity (see :mod:`adapters.mongo.messages` for what that costs).

Why not ``session.with_transaction``: it retries transient errors for up to two
minutes, network errors included, so an outage would hang a request that long.
Here a write conflict (two sends racing for the same conversation) is retried
with a short jittered backoff until a deadline, but a lost connection fails
fast and becomes ``Unavailable``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import OperationFailure, PyMongoError

from adapters.mongo.errors import is_outage
from adapters.mongo.server import ServerInfo

T = TypeVar("T")

TRANSIENT: Final = "TransientTransactionError"
UNKNOWN_COMMIT: Final = "UnknownTransactionCommitResult"
# "Transaction numbers are only allowed on a replica set member or mongos".
_ILLEGAL_OPERATION: Final = 20

Body = Callable[[AsyncClientSession | None], Awaitable[T]]


def _retryable(exc: BaseException, label: str, deadline: float) -> bool:
    return (
        isinstance(exc, PyMongoError)
        and exc.has_error_label(label)
        and not is_outage(exc)
        and time.monotonic() < deadline
    )


async def _backoff(attempt: int) -> None:
    # Jitter spreads the losers of a write conflict so they do not collide again.
    await asyncio.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.05)))


class Transactions:
    """Runs a body of work atomically if the server can (see :class:`ServerInfo`)."""

    def __init__(self, server: ServerInfo, *, time_limit: float = 10.0) -> None:
        self._server = server
        self._client = server.client
        self._time_limit = time_limit

    async def enabled(self) -> bool:
        """Whether bodies run inside transactions (asks the server the first time)."""
        return (await self._server.profile()).transactions

    async def run(self, body: Body[T]) -> T:
        """Run ``body`` in a transaction (its session as argument) and commit, retrying
        write conflicts; without transaction support run it once with no session."""
        if not await self.enabled():
            return await body(None)
        try:
            return await self._run_in_transaction(body)
        except OperationFailure as exc:
            if exc.code != _ILLEGAL_OPERATION:
                raise
            # The hello reply promised transactions but the server refuses them
            # (e.g. a standalone behind a proxy): remember, and go without.
            self._server.no_transactions()
            return await body(None)

    async def _run_in_transaction(self, body: Body[T]) -> T:
        deadline = time.monotonic() + self._time_limit
        async with self._client.start_session() as session:
            attempt = 0
            while True:
                attempt += 1
                await session.start_transaction()
                try:
                    result = await body(session)
                except Exception as exc:
                    if session.in_transaction:
                        await session.abort_transaction()  # never raises
                    if _retryable(exc, TRANSIENT, deadline):
                        await _backoff(attempt)
                        continue
                    raise
                try:
                    await self._commit(session, deadline)
                except PyMongoError as exc:
                    if _retryable(exc, TRANSIENT, deadline):
                        await _backoff(attempt)
                        continue
                    raise
                return result

    @staticmethod
    async def _commit(session: AsyncClientSession, deadline: float) -> None:
        while True:
            try:
                await session.commit_transaction()
                return
            except PyMongoError as exc:
                # Committing again is safe: the server commits a transaction once.
                if _retryable(exc, UNKNOWN_COMMIT, deadline):
                    continue
                raise
