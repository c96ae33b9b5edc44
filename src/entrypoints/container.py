"""The dependency-injector container: the only place that knows every piece.

Nothing here does I/O when constructed; resources (the MongoDB client, the
embedded database) are opened in the Starlette lifespan through
``init_resources()`` and closed with ``shutdown_resources()``.
Tests override providers (``container.storage.override(...)``) with the in-memory kit.
"""

from __future__ import annotations

from datetime import timedelta

import socketio
from dependency_injector import containers, providers

from adapters import socketio_json
from chatcore.chat import build_chat
from chatcore.presence import LocalPresenceTracker
from entrypoints.settings import Settings


def _socketio_server(settings: Settings) -> socketio.AsyncServer:
    origins: list[str] | str = settings.cors_origins or []
    return socketio.AsyncServer(
        async_mode="asgi",
        json=socketio_json,
        cors_allowed_origins=origins,
        logger=False,
        engineio_logger=False,
    )


class Container(containers.DeclarativeContainer):
    """Settings, storage, Socket.IO server, adapters and the assembled Chat."""

    settings = providers.Dependency(instance_of=Settings)

    # Filled in by the storage wiring (Mongo Resource); tests override it.
    storage = providers.Dependency()

    sio = providers.Singleton(_socketio_server, settings)
    presence = providers.Singleton(LocalPresenceTracker)
    notifier = providers.Dependency()
    passwords = providers.Dependency()
    access_tokens = providers.Dependency()

    chat = providers.Singleton(
        build_chat,
        storage=storage,
        notifier=notifier,
        presence=presence,
        passwords=passwords,
        access_tokens=access_tokens,
        refresh_ttl=providers.Callable(
            lambda s: timedelta(seconds=s.refresh_token_ttl_seconds), settings
        ),
    )
