"""Uvicorn settings shared by every Python server of the benchmark, so they run on one stack.

The defaults are those of ``chatcore serve`` (uvloop, httptools, websockets without
per-message deflate, no access log, uvicorn's loggers left to the
application's logging set-up: chatcore logs each WebSocket accept at INFO, as
``chatcore serve`` does; the bare server configures no logging). ``--plain`` swaps uvloop +
httptools for asyncio + h11, ``--ws-deflate`` turns per-message deflate on (uvicorn's default),
to measure what each buys.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn


def add_server_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--plain", action="store_true", help="asyncio + h11 instead of uvloop + httptools"
    )
    parser.add_argument(
        "--ws-deflate",
        action="store_true",
        help="WebSocket per-message deflate (uvicorn's default)",
    )


def run(app: Any, args: argparse.Namespace) -> None:
    """Serve ``app`` with the same uvicorn configuration for every Python server."""
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="asyncio" if args.plain else "uvloop",
        http="h11" if args.plain else "httptools",
        ws="auto",  # websockets (sans-I/O), as chatcore serve
        ws_per_message_deflate=args.ws_deflate,
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=2,
    )
