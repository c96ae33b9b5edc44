"""The one place where pymongo errors become domain errors.

Every repository method runs inside :func:`translate_errors` (usually through the
:func:`storage_call` decorator), so no driver exception ever reaches the domain:

- ``DuplicateKeyError`` -> :class:`~chatcore.errors.Conflict` (repositories that
  expect a particular duplicate, e.g. an idempotent replay, catch it first);
- the server cannot be reached, is stepping down or shutting down, does not
  answer in time, or fails in itself (``InternalError``: a storage engine that
  panicked, e.g. on a full disk) -> :class:`~chatcore.errors.Unavailable`;
- anything else the driver raises -> :class:`StorageFailed` (an internal error).

Each call of a :class:`TimeBound` repository also answers within its
``call_limit`` (the client's ``timeoutMS``, i.e. ``CHATCORE_MONGODB_TIMEOUT_MS``),
hard: pymongo bounds each operation by ``timeoutMS``, but while the server is
unknown (stalled, restarting) its server selection looks at that deadline only
every 0.5 s (``MIN_HEARTBEAT_INTERVAL``), so an operation could overrun it by up
to half a second (measured: a 1 s timeout answered after 1.3-1.5 s during a
stall). Past the limit asyncio cancels what still waits and the call raises
``Unavailable``; a write cut off this way may have been applied, exactly as with
a network timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final, ParamSpec, TypeVar

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    InvalidOperation,
    OperationFailure,
    PyMongoError,
)

from chatcore.errors import ChatError, Conflict, Unavailable

P = ParamSpec("P")
T = TypeVar("T")

# InternalError: the database failed in itself, not on the request. It is what
# SecantusDB answers to every command once its storage engine has panicked
# (WiredTiger's WT_PANIC, e.g. on a full disk), where mongod would exit; the
# embedded database's supervisor restarts such a child (entrypoints.embedded_db).
INTERNAL_ERROR: Final = 1

# Server error codes that mean "not now" rather than "never": the node is down,
# shutting down, not (or no longer) primary, or out of time.
_UNAVAILABLE_CODES: Final = frozenset(
    {
        INTERNAL_ERROR,
        6,  # HostUnreachable
        7,  # HostNotFound
        50,  # MaxTimeMSExpired
        89,  # NetworkTimeout
        91,  # ShutdownInProgress
        189,  # PrimarySteppedDown
        262,  # ExceededTimeLimit
        9001,  # SocketException
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
    }
)


class StorageFailed(ChatError):
    """The database refused an operation for a reason that is not an outage (a bug,
    a schema or permission problem). Maps to an internal error at the edges."""

    code = "internal_error"


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached or cannot answer now."""
    if isinstance(exc, ConnectionFailure):  # includes selection and network timeouts
        return True
    if isinstance(exc, OperationFailure) and exc.code in _UNAVAILABLE_CODES:
        return True
    return isinstance(exc, PyMongoError) and exc.timeout


# The server's code for a unique index refusing a write (also per write of a bulk).
DUPLICATE_KEY: Final = 11000


def duplicate_key_fields(exc: DuplicateKeyError) -> frozenset[str]:
    """The fields of the unique index that ``exc`` reports a clash on (empty if unknown)."""
    details: Mapping[str, Any] = exc.details or {}
    pattern = details.get("keyPattern") or details.get("keyValue") or {}
    return frozenset(pattern)


def to_domain_error(exc: PyMongoError) -> ChatError:
    """The domain error that stands for a driver error."""
    if isinstance(exc, DuplicateKeyError):
        return Conflict("already exists", details={"fields": sorted(duplicate_key_fields(exc))})
    if is_outage(exc):
        return Unavailable("storage is unavailable")
    if isinstance(exc, InvalidOperation) and "after close" in str(exc):
        # A request still running while the application shuts the client down.
        return Unavailable("storage is closed")
    return StorageFailed("storage operation failed")


@contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise any pymongo error inside the block as a domain error (cause kept)."""
    try:
        yield
    except PyMongoError as exc:
        raise to_domain_error(exc) from exc


# The current request's storage budget: [seconds, deadline or None until its
# first storage call] (a list, so that the first call can fix the deadline).
_REQUEST_DEADLINE: ContextVar[list[float | None] | None] = ContextVar(
    "storage_deadline", default=None
)


@contextmanager
def request_deadline(seconds: float | None) -> Iterator[None]:
    """Within the block (an HTTP request, a socket event), the calls of
    :class:`TimeBound` repositories share one deadline, ``seconds`` after the first
    of them starts (CPU work before it, e.g. hashing a password, does not count):
    a request that makes several storage calls answers within it as a whole, not
    within one limit each. None: no shared deadline."""
    if seconds is None:
        yield
        return
    token = _REQUEST_DEADLINE.set([seconds, None])
    try:
        yield
    finally:
        _REQUEST_DEADLINE.reset(token)


def _left_of_request() -> float | None:
    budget = _REQUEST_DEADLINE.get()
    if budget is None:
        return None
    seconds, deadline = budget
    if deadline is None:
        assert seconds is not None
        deadline = budget[1] = time.monotonic() + seconds
    return deadline - time.monotonic()


class TimeBound:
    """Base of the repositories whose ``@storage_call`` methods each answer within
    ``call_limit`` seconds as a whole, or raise ``Unavailable``.

    Subclasses set it with :meth:`bound_by`; without it (e.g. the search backfill,
    a long job) only the driver's per-operation ``timeoutMS`` applies.
    """

    call_limit: float | None = None

    def bound_by(self, db: AsyncDatabase[Any]) -> None:
        """Bound every call by ``db``'s client ``timeoutMS`` (none if it has none)."""
        self.call_limit = db.client.options.timeout


@contextlib.asynccontextmanager
async def hard_limit(seconds: float | None) -> AsyncIterator[None]:
    """Raise ``Unavailable`` if the block is still running after ``seconds`` (None:
    no limit); what it awaits then is cancelled."""
    if seconds is None:
        yield
        return
    try:
        async with asyncio.timeout(seconds) as limit:
            yield
    except TimeoutError as exc:
        if limit.expired():
            raise Unavailable("storage did not answer in time") from exc
        raise


def storage_call(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorate a repository coroutine so that it raises only domain errors, and, on a
    :class:`TimeBound` repository, answers within its ``call_limit`` and within the
    current :func:`request_deadline`."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        owner = args[0] if args else None
        limit = owner.call_limit if isinstance(owner, TimeBound) else None
        left = _left_of_request() if limit is not None else None
        if limit is not None and left is not None:
            limit = min(limit, left)
        with translate_errors():
            async with hard_limit(limit):
                return await fn(*args, **kwargs)

    return wrapper
