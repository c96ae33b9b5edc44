"""The app's lifespan stops the container's resources in dependency order, on real Redis:
a cleanly stopped process leaves shared presence before its Redis client closes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager
from dependency_injector import providers

from adapters.redis import RedisPresenceTracker
from chatcore.testing import in_memory_storage
from entrypoints.app import create_app
from entrypoints.container import Container
from entrypoints.settings import Settings


async def test_a_clean_stop_takes_its_sockets_out_of_shared_presence(
    tmp_path: Path,
    shared_redis_url: str,
    redis_prefix: str,
    redis_client: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path,
        jwt_secret="lifespan-test-secret-" + "x" * 43,
        redis_url=shared_redis_url,
        redis_prefix=redis_prefix,
    )
    container = Container(settings=settings)
    container.storage.override(providers.Object(in_memory_storage()))
    app = create_app(settings, container=container)
    observer = RedisPresenceTracker(redis_client, prefix=redis_prefix + "presence:")

    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        chat = app.runtime.chat
        user = (await chat.auth.register("alice", "correct horse battery")).user
        await chat.presence.connected(user.id, "socket-1")
        assert await observer.online([user.id]) == {user.id}

    # The upkeep left Redis (a clean leave) before the client it uses was closed.
    assert await observer.online([user.id]) == set()
    assert app.runtime.chat_instance is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
