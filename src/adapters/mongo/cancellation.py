"""A workaround: pymongo's async client, cancelled in a wait, on Python 3.11.

pymongo (4.20) waits on its asyncio conditions (server selection, a full
connection pool) with ``asyncio.wait_for(condition.wait(), timeout)``. On Python
3.11, ``wait_for`` runs the wait as a task of its own; when the caller is
cancelled just as that wait times out (this adapter cancels storage calls at
their deadline: :func:`adapters.mongo.errors.hard_limit`), ``wait_for`` returns
before the inner wait has taken the condition's lock back. The caller's
``async with lock`` then releases a lock it does not hold (``RuntimeError: Lock
is not acquired``, a 500), and the inner wait takes the lock a moment later and
keeps it: every later server selection waits on it forever, and the client never
works again, not even once the database is back. Seen under an outage of the
embedded database (the full-disk fault test); reproduced in
``tests/mongo/test_client_cancellation.py``. Python 3.12's ``wait_for`` runs the
wait in the caller's task (``asyncio.timeout``), which cannot leave the lock
behind; :func:`use_same_task_condition_waits` gives pymongo that on 3.11.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def _wait_for(awaitable: Awaitable[T], timeout: float | None) -> T:  # noqa: ASYNC109
    """``asyncio.wait_for`` as Python 3.12 has it: the awaitable runs in this task."""
    async with asyncio.timeout(timeout):
        return await awaitable


def use_same_task_condition_waits() -> None:
    """On Python < 3.12, make pymongo's condition waits run in the waiting task
    (idempotent; nothing to do on 3.12 and later)."""
    if sys.version_info >= (3, 12):  # pragma: no cover - the CI runs 3.11
        return
    import pymongo.lock

    pymongo.lock.wait_for = _wait_for  # type: ignore[attr-defined, assignment]
