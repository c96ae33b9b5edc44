"""Launcher of chatcore for the benchmark: ``create_app`` on uvicorn, in-memory or MongoDB storage.

``--storage memory`` overrides the container's ``storage`` provider with
``chatcore.testing.in_memory_storage()``; ``--storage mongo`` keeps the MongoDB
adapter and reads ``CHATCORE_MONGODB_URI`` (the benchmark points it at a
``secantusd-py`` child). Logging is set up as ``chatcore serve`` does it.

``--cheap-passwords`` swaps argon2's default parameters (~0.2 s of CPU per hash
here) for ``argon2.profiles.CHEAPEST``: registering the benchmark's users then
takes a moment instead of half a minute. No measured path hashes a password.

``--limits`` checks every rate limit on every action (at a rate the load never
reaches, so nothing is refused); without it the limits are off. The socket caps
(sockets per user, sessions waiting to authenticate) are lifted: the idle scenario
holds thousands of sockets for ten users.

Run: ``python -m bench.servers.chatcore_server --port 8000 --storage memory [--plain]``
"""

from __future__ import annotations

import argparse
import logging
import sys

import argon2
import socketio
from dependency_injector import providers
from socketio.async_pubsub_manager import AsyncPubSubManager

from adapters.passwords import Argon2PasswordHasher
from adapters.redis import RoutedRedisManager
from adapters.socketio_fanout import FanoutManager
from bench.servers.serve import add_server_args, run
from chatcore.testing import in_memory_storage
from entrypoints.app import create_app
from entrypoints.container import Container
from entrypoints.settings import RATE_LIMIT_SETTINGS, Settings

# High enough that no benchmark load is refused; every action is still counted.
LIMITS_ON = "1000000/10s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_args(parser)
    parser.add_argument("--storage", choices=["memory", "mongo"], default="memory")
    parser.add_argument("--cheap-passwords", action="store_true", help="argon2 CHEAPEST")
    parser.add_argument(
        "--limits", action="store_true", help=f"rate limits checked ({LIMITS_ON}), else off"
    )
    parser.add_argument(
        "--stock-fanout",
        action="store_true",
        help="python-socketio's own emit (a Task per recipient) instead of FanoutManager's",
    )
    parser.add_argument(
        "--stock-redis",
        action="store_true",
        help="python-socketio's Redis emit (every emit to every process) instead of routing",
    )
    args = parser.parse_args()
    if args.stock_fanout:
        FanoutManager.emit = socketio.AsyncManager.emit  # type: ignore[method-assign]
    if args.stock_redis:
        RoutedRedisManager.emit = AsyncPubSubManager.emit  # type: ignore[method-assign]

    settings = Settings(host=args.host, port=args.port)
    # The load sends bursts: limits are off, or (--limits) checked on every action at a
    # rate it never reaches, to measure what checking costs.
    rate = LIMITS_ON if args.limits else "off"
    settings = settings.model_copy(update=dict.fromkeys(RATE_LIMIT_SETTINGS, rate))
    # The idle scenario holds thousands of sockets for a few users, opened in bursts.
    settings = settings.model_copy(
        update={"max_sockets_per_user": 1_000_000, "max_unauthenticated_sockets": 1_000_000}
    )
    if args.storage == "mongo" and settings.mongodb_uri is None:
        parser.error("--storage mongo needs CHATCORE_MONGODB_URI")
    if args.storage == "memory":
        settings = settings.model_copy(update={"mongodb_uri": None})
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    container = Container(settings=settings)
    if args.storage == "memory":
        container.storage.override(providers.Object(in_memory_storage()))
    if args.cheap_passwords:
        cheap = Argon2PasswordHasher(argon2.profiles.CHEAPEST)
        container.passwords.override(providers.Object(cheap))
    run(create_app(settings, container=container), args)


if __name__ == "__main__":
    main()
