"""Launcher of chatcore for the benchmark: ``create_app`` on uvicorn, in-memory or MongoDB storage.

``--storage memory`` overrides the container's ``storage`` provider with
``chatcore.testing.in_memory_storage()``; ``--storage mongo`` keeps the MongoDB
adapter and reads ``CHATCORE_MONGODB_URI`` (the benchmark points it at a
``secantusd-py`` child). Logging is set up as ``chatcore serve`` does it.

Run: ``python -m bench.servers.chatcore_server --port 8000 --storage memory [--plain]``
"""

from __future__ import annotations

import argparse
import logging
import sys

from dependency_injector import providers

from bench.servers.serve import add_server_args, run
from chatcore.testing import in_memory_storage
from entrypoints.app import create_app
from entrypoints.container import Container
from entrypoints.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_args(parser)
    parser.add_argument("--storage", choices=["memory", "mongo"], default="memory")
    args = parser.parse_args()

    settings = Settings(host=args.host, port=args.port)
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
    run(create_app(settings, container=container), args)


if __name__ == "__main__":
    main()
