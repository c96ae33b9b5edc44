"""Server settings shared by every Python server of the benchmark, so they run on one stack.

The defaults are those of ``chatcore serve`` (uvicorn with uvloop, httptools, its
sans-I/O ``websockets`` protocol (chatcore: the lean subclass of it,
entrypoints/socketio/lean.py; the bare server: uvicorn's own) without per-message
deflate, no access log, uvicorn's loggers left to the application's logging set-up:
chatcore logs each WebSocket accept at INFO, as ``chatcore serve`` does; the bare server
configures no logging). ``--plain`` swaps uvloop + httptools for asyncio + h11,
``--ws-deflate`` turns per-message deflate on (uvicorn's default), ``--ws`` picks the
WebSocket protocol (``lean``, ``websockets-sansio``, ``wsproto``), and ``--granian``
serves the app with granian (a Rust HTTP and WebSocket server, ASGI interface, uvloop,
one Rust runtime thread) instead of uvicorn, to measure what each buys.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import uvicorn

from entrypoints.socketio.lean import WS_PROTOCOLS, uvicorn_ws


def add_server_args(parser: argparse.ArgumentParser, *, ws: str = "lean") -> None:
    """The shared options; ``ws`` is the server's default WebSocket implementation
    (chatcore: ``lean``, as ``chatcore serve``; the bare server: uvicorn's own)."""
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
    parser.add_argument(
        "--ws",
        choices=WS_PROTOCOLS,
        default=ws,
        help=f"uvicorn's WebSocket protocol (CHATCORE_WS_PROTOCOL; default {ws})",
    )
    parser.add_argument(
        "--granian", action="store_true", help="serve with granian instead of uvicorn"
    )


def run(app: Any, args: argparse.Namespace) -> None:
    """Serve ``app`` with the same configuration for every Python server."""
    if args.granian:
        _run_granian(app, args)
        return
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="asyncio" if args.plain else "uvloop",
        http="h11" if args.plain else "httptools",
        ws=uvicorn_ws(args.ws),
        ws_per_message_deflate=args.ws_deflate,
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=2,
    )


def _run_granian(app: Any, args: argparse.Namespace) -> None:
    # Imported here: granian is a benchmark candidate, not a dependency of chatcore.
    from granian.constants import Interfaces
    from granian.server.embed import Server

    if args.ws_deflate:
        raise SystemExit("--granian: granian has no per-message deflate")
    # The embedded server runs the app on this process's event loop (as uvicorn does);
    # the sockets are served by one Rust runtime thread. Stopped by SIGTERM, as uvicorn.
    server = Server(
        app,
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,  # with the lifespan protocol
        websockets=True,
        log_access=False,
        log_enabled=False,
    )
    if args.plain:
        asyncio.run(server.serve())
    else:
        import uvloop

        uvloop.run(server.serve())
