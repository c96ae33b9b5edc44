"""The one place where pymongo errors become domain errors.

Every repository method runs inside :func:`translate_errors` (usually through the
:func:`storage_call` decorator), so no driver exception ever reaches the domain:

- ``DuplicateKeyError`` -> :class:`~chatcore.errors.Conflict` (repositories that
  expect a particular duplicate, e.g. an idempotent replay, catch it first);
- the server cannot be reached, is stepping down or shutting down, or does not
  answer in time -> :class:`~chatcore.errors.Unavailable`;
- anything else the driver raises -> :class:`StorageFailed` (an internal error).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, ParamSpec, TypeVar

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

# Server error codes that mean "not now" rather than "never": the node is down,
# shutting down, not (or no longer) primary, or out of time.
_UNAVAILABLE_CODES: Final = frozenset(
    {
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


def storage_call(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorate a repository coroutine so that it raises only domain errors."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with translate_errors():
            return await fn(*args, **kwargs)

    return wrapper
