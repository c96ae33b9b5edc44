"""Creating the pymongo client: native async API, aware UTC datetimes, short timeouts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from attrs import frozen
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener

from adapters.mongo.documents import Document


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
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        tzinfo=UTC,
        serverSelectionTimeoutMS=timeouts.server_selection_ms,
        connectTimeoutMS=timeouts.connect_ms,
        socketTimeoutMS=timeouts.socket_ms,
        event_listeners=list(command_listeners),
        appname=app_name,
    )
