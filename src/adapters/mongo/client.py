"""Creating the pymongo client: native async API, aware UTC datetimes, short timeouts,
durable writes.

Write concern, set here explicitly rather than left to the server's default:
``w: "majority"`` and ``j: true``. A write (a transaction's commit included) is
acknowledged only once it is in the journal of a majority of the replica set,
so an acknowledged message survives a crash of the database process, of the
server, or of the machine, and a fail-over. On a one-node replica set or a
standalone, majority is that one node. Options given in ``CHATCORE_MONGODB_URI``
(``w=``, ``journal=``) do not weaken this: these keyword arguments win.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from attrs import frozen
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener

from adapters.mongo.cancellation import use_same_task_condition_waits
from adapters.mongo.documents import Document

_HEARTBEAT_MS = 1000


@frozen(kw_only=True)
class MongoTimeouts:
    """How long the driver waits before it reports the database as unavailable.

    Short on purpose: an outage should surface as ``Unavailable`` (HTTP 503)
    within about two seconds instead of piling up requests for the driver's
    30-second default. Every operation of this adapter is small, so a healthy
    server answers far inside these limits.
    """

    server_selection_ms: int = 2000
    connect_ms: int = 2000
    socket_ms: int = 2000
    # Bounds each operation as a whole (selection, retries, the reply): pymongo's
    # timeoutMS. None keeps the separate limits above only.
    operation_ms: int | None = None


def create_client(
    uri: str,
    *,
    timeouts: MongoTimeouts | None = None,
    command_listeners: Sequence[CommandListener] = (),
    app_name: str = "chatcore",
) -> AsyncMongoClient[Document]:
    """An ``AsyncMongoClient`` for ``uri``; no I/O happens until the first operation.

    ``command_listeners`` see every command sent (used to count round trips).
    """
    timeouts = timeouts or MongoTimeouts()
    use_same_task_condition_waits()  # or a cancelled call can wedge the client for good
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        tzinfo=UTC,
        serverSelectionTimeoutMS=timeouts.server_selection_ms,
        connectTimeoutMS=timeouts.connect_ms,
        socketTimeoutMS=timeouts.socket_ms,
        timeoutMS=timeouts.operation_ms,
        w="majority",
        journal=True,
        # How soon the driver notices a server back (or gone) when nothing else asks:
        # the readiness probe relies on it (a loopback hello per second is nothing).
        heartbeatFrequencyMS=_HEARTBEAT_MS,
        event_listeners=list(command_listeners),
        appname=app_name,
    )
