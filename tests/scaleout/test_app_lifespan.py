"""The app's lifespan stops the container's resources in dependency order, on real Redis:
a cleanly stopped process leaves shared presence before its Redis client closes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from adapters.redis import RedisPresenceTracker
from chatcore.testing import in_memory_storage
from entrypoints.app import create_app
from support.app import make_container, make_settings, running


async def test_a_clean_stop_takes_its_sockets_out_of_shared_presence(
    tmp_path: Path,
    shared_redis_url: str,
    redis_prefix: str,
    redis_client: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(tmp_path, redis_url=shared_redis_url, redis_prefix=redis_prefix)
    app = create_app(settings, container=make_container(settings, in_memory_storage()))
    observer = RedisPresenceTracker(redis_client, prefix=redis_prefix + "presence:")

    async with running(app):
        chat = app.runtime.chat
        user = (await chat.auth.register("alice", "correct horse battery")).user
        await chat.presence.connected(user.id, "socket-1")
        assert await observer.online([user.id]) == {user.id}

    # The upkeep left Redis (a clean leave) before the client it uses was closed.
    assert await observer.online([user.id]) == set()
    assert app.runtime.chat_instance is None
    complaints = [r for r in caplog.records if r.name.startswith("chatcore")]
    assert not [r for r in complaints if r.levelno >= logging.WARNING], caplog.text
