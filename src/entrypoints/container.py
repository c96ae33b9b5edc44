"""The dependency-injector container: the only place that knows every piece.

Nothing here does I/O when constructed. Everything that lives from startup to
shutdown is a Resource: the MongoDB store, the Redis client, the presence
tracker, the Chat, the presence upkeep task, and ``serving`` (the Chat and the
readiness probe handed to the app's :class:`Runtime`). The Starlette lifespan
is ``init_resources()`` then ``shutdown_resources()``; dependency-injector
shuts a resource down only after every resource that depends on it directly, so
each link of these chains is a Resource (a plain provider between two would
let both shut down at once). Tests override providers, e.g.
``container.storage.override(providers.Object(in_memory_storage()))``.

The embedded SecantusDB is not started here but by ``chatcore serve``, which
then passes its URI in the settings: the container only ever sees a MongoDB URI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import redis.asyncio as aioredis
import socketio
from dependency_injector import containers, providers

from adapters import socketio_json
from adapters.jwt_tokens import JwtAccessTokens
from adapters.mongo import MongoStore, MongoTimeouts
from adapters.mongo.backfill import SearchBackfill
from adapters.passwords import Argon2PasswordHasher
from adapters.redis import (
    RedisPresenceTracker,
    RedisRateLimiter,
    RoutedRedisManager,
    routes_channel,
)
from adapters.socketio_fanout import FanoutManager
from adapters.socketio_notifier import SocketIONotifier
from chatcore.chat import Chat, Storage, build_chat
from chatcore.errors import ChatError, Unavailable
from chatcore.ports import Clock, PresenceTracker, RateLimiter
from chatcore.rate_limits import RateLimits
from chatcore.system import (
    LocalPresenceTracker,
    LocalRateLimiter,
    SystemClock,
    TimeOrderedIdGenerator,
)
from entrypoints.client_address import Network, networks
from entrypoints.metrics import Metrics
from entrypoints.presence_upkeep import PresenceUpkeep
from entrypoints.runtime import ReadinessProbe, Runtime
from entrypoints.settings import Settings
from entrypoints.socketio.server import ChatcoreSocketServer

_log = logging.getLogger("chatcore.search")

# Redis calls fail fast, so an outage is reported (503, unavailable) rather than waited out.
_REDIS_TIMEOUTS = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}


def _socketio_server(settings: Settings, node_id: str) -> socketio.AsyncServer:
    origins: list[str] | str = settings.cors_origins or []
    manager: socketio.AsyncManager = FanoutManager()
    if settings.redis_url is not None:
        # Emits reach this process's sockets directly and, through Redis, only the
        # processes holding recipients; with Redis down, local delivery still happens.
        manager = RoutedRedisManager(
            settings.redis_url,
            channel=_socketio_channel(settings),
            node_id=node_id,
            presence_prefix=_presence_prefix(settings),
            redis_options=dict(_REDIS_TIMEOUTS),
        )
    return ChatcoreSocketServer(
        handshake_timeout=settings.socket_handshake_timeout_seconds,
        max_handshaking=settings.max_unauthenticated_sockets,
        # One event's packet: a body's worth (the HTTP limit) is plenty.
        max_packet_bytes=settings.max_body_bytes,
        async_mode="asgi",
        client_manager=manager,
        # orjson for this server's packets only (see adapters.socketio_json).
        serializer=socketio_json.Packet,
        json=socketio_json,
        cors_allowed_origins=origins,
        logger=False,
        engineio_logger=False,
    )


async def _mongo_store(settings: Settings) -> AsyncIterator[MongoStore | None]:
    """The open MongoDB store, or None when no URI is configured (storage overridden)."""
    if settings.mongodb_uri is None:
        yield None
        return
    timeout = settings.mongodb_timeout_ms
    store = MongoStore(
        settings.mongodb_uri,
        database=settings.mongodb_database,
        timeouts=MongoTimeouts(
            server_selection_ms=timeout, connect_ms=timeout, socket_ms=timeout, operation_ms=timeout
        ),
    )
    await store.open()
    # Older messages become searchable in the background; start-up does not wait.
    backfill = asyncio.create_task(_backfill_search(store))
    try:
        yield store
    finally:
        backfill.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await backfill
        await store.close()


async def _backfill_search(store: MongoStore) -> None:
    try:
        updated = await SearchBackfill(store.database).run()
    except ChatError as exc:
        _log.warning("search backfill stopped (%s); it resumes at the next start", exc)
        return
    if updated:
        _log.info("search backfill: %d older messages made searchable", updated)


async def _redis_client(settings: Settings) -> AsyncIterator[aioredis.Redis | None]:
    """The shared Redis client, or None in single-process mode."""
    if settings.redis_url is None:
        yield None
        return
    client = aioredis.Redis.from_url(
        settings.redis_url,
        socket_timeout=_REDIS_TIMEOUTS["socket_timeout"],
        socket_connect_timeout=_REDIS_TIMEOUTS["socket_connect_timeout"],
    )
    try:
        yield client
    finally:
        await client.aclose()


def _socketio_channel(settings: Settings) -> str:
    return settings.redis_prefix + "socketio"


def _presence_prefix(settings: Settings) -> str:
    return settings.redis_prefix + "presence:"


def _node_id() -> str:
    """This process's id in Redis: its presence entries and its routed-emit channel."""
    return uuid.uuid4().hex


def _metrics(sio: socketio.AsyncServer) -> Metrics:
    metrics = Metrics()
    if isinstance(sio.manager, RoutedRedisManager):
        metrics.watch_broker(sio.manager.counters)
    return metrics


def _redis_presence(
    settings: Settings, client: aioredis.Redis | None, node_id: str
) -> RedisPresenceTracker | None:
    """The shared presence tracker, or None in single-process mode."""
    if client is None:
        return None
    return RedisPresenceTracker(
        client,
        prefix=_presence_prefix(settings),
        node_id=node_id,
        heartbeat_ttl=settings.presence_ttl_seconds,
        routes_channel=routes_channel(_socketio_channel(settings)),
    )


def _rate_limiter(
    settings: Settings, client: aioredis.Redis | None, clock: Clock, metrics: Metrics
) -> RateLimiter:
    if client is None:
        return LocalRateLimiter(clock)
    return RedisRateLimiter(
        client,
        clock=clock,
        prefix=settings.redis_prefix + "rate:",
        on_fallback=metrics.rate_limiter_fell_back,
    )


def _rate_limits(settings: Settings) -> RateLimits:
    return settings.rate_limits()


def _trusted_proxies(settings: Settings) -> tuple[Network, ...]:
    return networks(settings.trusted_proxies)


def _storage_timeout(settings: Settings) -> float:
    return settings.mongodb_timeout_ms / 1000


def _presence(shared: RedisPresenceTracker | None) -> PresenceTracker:
    return shared if shared is not None else LocalPresenceTracker()


async def _presence_upkeep(
    settings: Settings, shared: RedisPresenceTracker | None, chat: Chat
) -> AsyncIterator[PresenceUpkeep | None]:
    """Heartbeat and sweep of shared presence while the app runs (nothing to do locally)."""
    if shared is None:
        yield None
        return
    upkeep = PresenceUpkeep(shared, chat.presence, ttl_seconds=settings.presence_ttl_seconds)
    await upkeep.start()
    try:
        yield upkeep
    finally:
        await upkeep.stop()


def _serving(
    runtime: Runtime,
    chat: Chat,
    probe: ReadinessProbe | None,
    upkeep: PresenceUpkeep | None,
) -> Iterator[Runtime]:
    """The app's handlers reach the Chat from here on; the upkeep (an argument so that it
    starts before, and stops after) already beats for this process."""
    runtime.chat_instance = chat
    runtime.readiness_probe = probe
    try:
        yield runtime
    finally:
        runtime.chat_instance = None
        runtime.readiness_probe = None


def _storage_of(store: MongoStore | None) -> Storage:
    if store is None:
        raise RuntimeError(
            "no storage configured: set CHATCORE_MONGODB_URI, or run `chatcore serve` "
            "(which starts the embedded database)"
        )
    return store.storage


def _readiness_of(store: MongoStore | None, client: aioredis.Redis | None) -> ReadinessProbe | None:
    if store is None and client is None:
        return None

    async def probe() -> None:
        if store is not None:
            await store.ping()
        if client is not None:
            try:
                await client.ping()
            except Exception as exc:
                raise Unavailable("the broker (Redis) is not reachable") from exc

    return probe


def _access_tokens(settings: Settings) -> JwtAccessTokens:
    # Reads or creates data_dir/jwt-secret when no secret is configured: only
    # resolved in the lifespan, never when the app is built.
    return JwtAccessTokens(
        settings.resolved_jwt_secret(),
        ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        algorithm=settings.jwt_algorithm,
    )


def _refresh_ttl(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.refresh_token_ttl_seconds)


class Container(containers.DeclarativeContainer):
    """Settings, storage, Socket.IO server, adapters, the assembled Chat and the app's
    :class:`Runtime` handle."""

    settings = providers.Dependency(instance_of=Settings)

    mongo_store = providers.Resource(_mongo_store, settings)
    storage = providers.Resource(_storage_of, mongo_store)
    redis_client = providers.Resource(_redis_client, settings)
    readiness_probe = providers.Resource(_readiness_of, mongo_store, redis_client)

    node_id = providers.Singleton(_node_id)
    sio = providers.Singleton(_socketio_server, settings, node_id)
    metrics = providers.Singleton(_metrics, sio)
    runtime = providers.Singleton(
        Runtime,
        metrics=metrics,
        trusted_proxies=providers.Callable(_trusted_proxies, settings),
        storage_timeout=providers.Callable(_storage_timeout, settings),
    )
    redis_presence = providers.Resource(_redis_presence, settings, redis_client, node_id)
    presence = providers.Resource(_presence, redis_presence)
    notifier = providers.Singleton(SocketIONotifier, sio, on_event=metrics.provided.event_emitted)
    passwords = providers.Singleton(Argon2PasswordHasher)
    # The domain's time and ids (tests override the clock to control ordering).
    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(TimeOrderedIdGenerator)
    access_tokens = providers.Singleton(_access_tokens, settings)
    # Shared through Redis when it is configured, else per process.
    rate_limiter = providers.Resource(_rate_limiter, settings, redis_client, clock, metrics)

    chat = providers.Resource(
        build_chat,
        storage=storage,
        notifier=notifier,
        presence=presence,
        passwords=passwords,
        access_tokens=access_tokens,
        clock=clock,
        ids=ids,
        refresh_ttl=providers.Callable(_refresh_ttl, settings),
        rate_limits=providers.Callable(_rate_limits, settings),
        rate_limiter=rate_limiter,
    )
    presence_upkeep = providers.Resource(_presence_upkeep, settings, redis_presence, chat)
    serving = providers.Resource(_serving, runtime, chat, readiness_probe, presence_upkeep)
