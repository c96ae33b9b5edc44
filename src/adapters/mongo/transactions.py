"""Multi-document transactions with a bounded retry, and a fallback where there are none.

MongoDB runs transactions on replica sets and sharded clusters only; SecantusDB
advertises itself as a one-node replica set and runs them too. A standalone
mongod does not: there :class:`Transactions` runs the same steps one after the
other without atomicity (see :mod:`adapters.mongo.messages` for what that costs).

Why not ``session.with_transaction``: it retries transient errors for up to two
minutes, network errors included, so an outage would hang a request that long.
Here the whole transaction, retries included, runs under one deadline (the
client's ``timeoutMS``, i.e. ``CHATCORE_MONGODB_TIMEOUT_MS``): a write conflict
(two sends racing for the same conversation) is retried with a short jittered
backoff until then, a lost connection fails fast, and both end as ``Unavailable``.

A transaction cut off by a timeout, a lost connection or a cancelled request is
still open on the server, holding its writes: every later write to the same
documents (the conversation's ``lastSeq``) would conflict until the server's
transaction lifetime runs out (60 s on mongod; SecantusDB has no such limit
one can set). :class:`SessionReaper` therefore kills such sessions
(``killSessions``, which aborts their transactions) as soon as the server
answers again.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

import pymongo
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import InvalidOperation, OperationFailure, PyMongoError

from adapters.mongo.documents import Document
from adapters.mongo.errors import hard_limit, is_outage
from adapters.mongo.server import ServerInfo
from chatcore.errors import Unavailable

T = TypeVar("T")

log = logging.getLogger(__name__)

TRANSIENT: Final = "TransientTransactionError"
UNKNOWN_COMMIT: Final = "UnknownTransactionCommitResult"
# "Transaction numbers are only allowed on a replica set member or mongos".
_ILLEGAL_OPERATION: Final = 20
# Used when the client has no timeoutMS.
DEFAULT_TIME_LIMIT: Final = 10.0

Body = Callable[[AsyncClientSession | None], Awaitable[T]]

# True while a body runs again after an attempt whose commit failed in a way that
# may still have applied it (see after_uncertain_commit).
_AFTER_UNCERTAIN_COMMIT: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "after_uncertain_commit", default=False
)


def after_uncertain_commit() -> bool:
    """Inside a body of :meth:`Transactions.run`: whether an earlier attempt's commit
    failed and may have been applied nonetheless (the database died right after a
    durable commit, and its retry was told the transaction is gone). The writes of
    that attempt may then be there already: a body that reports whether it changed
    something should count a state that is already as it asks as its own change."""
    return _AFTER_UNCERTAIN_COMMIT.get()


def _retryable(exc: BaseException, label: str, deadline: float) -> bool:
    return (
        isinstance(exc, PyMongoError)
        and exc.has_error_label(label)
        and not is_outage(exc)
        and time.monotonic() < deadline
    )


def _out_of_time(exc: BaseException) -> Unavailable | None:
    # Conflicts that outlast the deadline mean "busy now", not a bug: 503, not 500.
    # (Outages carry the label too; they become Unavailable where errors translate.)
    if isinstance(exc, PyMongoError) and exc.has_error_label(TRANSIENT) and not is_outage(exc):
        return Unavailable("storage is busy: try again")
    return None


async def _backoff(attempt: int) -> None:
    # Jitter spreads the losers of a write conflict so they do not collide again.
    await asyncio.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.05)))


class SessionReaper:
    """Kills server sessions whose transaction was cut off, once the server answers.

    :meth:`reap` never waits: the sessions are queued and a background task sends
    ``killSessions`` for all of them, retrying every ``interval`` seconds while the
    server does not answer, for ``give_up_after`` seconds at most (by then the
    server has restarted, which ends every session, or it never will). It stops
    when the client is closed.
    """

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        *,
        interval: float = 0.1,
        attempt_timeout: float = 1.0,
        give_up_after: float = 300.0,
    ) -> None:
        self._client = client
        self._interval = interval
        self._attempt_timeout = attempt_timeout
        self._give_up_after = give_up_after
        # session id bytes -> (lsid document, when queued)
        self._pending: dict[bytes, tuple[Mapping[str, Any], float]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """How many sessions still wait to be killed."""
        return len(self._pending)

    def reap(self, lsid: Mapping[str, Any]) -> None:
        """Queue the session ``lsid`` (``session.session_id``) to be killed."""
        self._pending[bytes(lsid["id"])] = (lsid, time.monotonic())
        if self._task is None or self._task.done():
            # A fresh context: the caller's pymongo.timeout() deadline (a context
            # variable, most likely expired already) must not bound the reaper.
            self._task = asyncio.get_running_loop().create_task(
                self._run(), context=contextvars.Context()
            )

    async def wait_idle(self) -> None:
        """Wait until every queued session is killed or given up (tests, shutdown)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        while self._pending:
            cutoff = time.monotonic() - self._give_up_after
            for key, (_, queued) in list(self._pending.items()):
                if queued < cutoff:
                    del self._pending[key]
                    log.warning("gave up killing an interrupted database session")
            batch = dict(self._pending)
            if not batch:
                return
            try:
                with pymongo.timeout(self._attempt_timeout):
                    await self._client.admin.command(
                        {"killSessions": [lsid for lsid, _ in batch.values()]}
                    )
            except InvalidOperation:
                return  # the client was closed: so is every session it had
            except PyMongoError:
                await asyncio.sleep(self._interval)
                continue
            for key in batch:
                if self._pending.get(key) is batch[key]:
                    del self._pending[key]
            log.info("killed %d interrupted database session(s)", len(batch))


class Transactions:
    """Runs a body of work atomically if the server can (see :class:`ServerInfo`).

    ``time_limit`` (seconds) bounds a whole :meth:`run`, retries included; by
    default the client's ``timeoutMS``.
    """

    def __init__(self, server: ServerInfo, *, time_limit: float | None = None) -> None:
        self._server = server
        self._client = server.client
        self._time_limit = time_limit or self._client.options.timeout or DEFAULT_TIME_LIMIT
        self.reaper = SessionReaper(self._client)

    @property
    def time_limit(self) -> float:
        """Seconds one :meth:`run` may take at most (callers that queue work before
        it, e.g. behind a lock or a batch, should count their wait against it)."""
        return self._time_limit

    async def enabled(self) -> bool:
        """Whether bodies run inside transactions (asks the server the first time)."""
        return (await self._server.profile()).transactions

    async def run(self, body: Body[T], *, time_limit: float | None = None) -> T:
        """Run ``body`` in a transaction (its session as argument) and commit, retrying
        write conflicts; without transaction support run it once with no session.

        Raises ``Unavailable`` when the time limit passes (conflicts included); a
        transaction left open on the server by a timeout or cancellation is killed
        in the background as soon as the server answers. ``time_limit`` shortens the
        limit for this run (a caller that already waited counts its wait)."""
        limit = self._time_limit if time_limit is None else min(time_limit, self._time_limit)
        if not await self.enabled():
            return await body(None)
        try:
            # pymongo.timeout bounds each command (and tells the server its maxTimeMS);
            # hard_limit makes the limit hard (see adapters.mongo.errors: pymongo's
            # server selection overruns it by up to 0.5 s while the server is unknown).
            # Cancelled mid-transaction, _abandon has the session killed.
            async with hard_limit(limit):
                with pymongo.timeout(limit):
                    return await self._run_in_transaction(body, limit)
        except OperationFailure as exc:
            if exc.code != _ILLEGAL_OPERATION:
                raise
            # The hello reply promised transactions but the server refuses them
            # (e.g. a standalone behind a proxy): remember, and go without.
            self._server.no_transactions()
            return await body(None)

    async def _run_in_transaction(self, body: Body[T], limit: float) -> T:
        deadline = time.monotonic() + limit
        async with self._client.start_session() as session:
            attempt = 0
            uncertain = False  # an earlier attempt's commit failed: it may have applied
            while True:
                attempt += 1
                await session.start_transaction()
                committing = False
                try:
                    token = _AFTER_UNCERTAIN_COMMIT.set(uncertain)
                    try:
                        result = await body(session)
                    finally:
                        _AFTER_UNCERTAIN_COMMIT.reset(token)
                    committing = True
                    await self._commit(session, deadline)
                    return result
                except BaseException as exc:
                    uncertain = uncertain or committing
                    await self._abandon(session, exc)
                    if _retryable(exc, TRANSIENT, deadline):
                        await _backoff(attempt)
                        continue
                    unavailable = _out_of_time(exc)
                    if unavailable is not None:
                        raise unavailable from exc
                    raise

    async def _abandon(self, session: AsyncClientSession, exc: BaseException) -> None:
        """Abort a failed attempt; if the server may not have heard, kill the session."""
        if isinstance(exc, asyncio.CancelledError) or is_outage(exc):
            # The transaction may still be open on the server (a failed commit counts:
            # pymongo then no longer reports it in progress), and aborting now would
            # wait on the server that just failed to answer. Never reuse this session:
            # its id is about to be killed.
            session._server_session.mark_dirty()
            self.reaper.reap(session.session_id)
        elif session.in_transaction:
            await session.abort_transaction()  # pymongo's abort never raises

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
