"""The ``chatcore`` command (also ``python -m entrypoints``).

``chatcore serve`` runs the bundled server on uvicorn. Without
``CHATCORE_MONGODB_URI`` it first starts the embedded SecantusDB as a child
process storing under ``<data-dir>/db``, supervises it (restarted if it dies),
and stops it after the server has shut down, on SIGINT/SIGTERM as on a failed
start.

Fail fast: the listening socket is bound, and the data directory locked,
before the database starts; either failure is one line on stderr and its own
exit status (see the ``EXIT_*`` constants, documented in docs/configuration.md).

Graceful: the first SIGINT/SIGTERM drains (entrypoints/drain.py: in-flight
socket events answered, sockets closed with presence recorded) before uvicorn
stops accepting, waits for HTTP requests and closes storage; all of it within
``CHATCORE_SHUTDOWN_GRACE_SECONDS``. A second signal stops at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from pydantic import ValidationError

from entrypoints.embedded_db import (
    DataDirInUse,
    EmbeddedDatabase,
    EmbeddedDatabaseError,
    missing_reason,
    size_bytes,
)
from entrypoints.settings import Settings
from entrypoints.version import chatcore_version

log = logging.getLogger("chatcore")

EXIT_OK = 0
EXIT_FAILURE = 1  # could not start: database or storage unreachable, not installed
EXIT_USAGE = 2  # invalid options or settings
EXIT_PORT_IN_USE = 3  # the listening address is taken (or not allowed)
EXIT_DATA_DIR_IN_USE = 4  # another chatcore server runs on the data directory
# Of the shutdown grace period, the share the drain may use; uvicorn gets the rest.
_DRAIN_SHARE = 0.5


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(host=args.host, port=args.port, data_dir=args.data_dir)
    _parser().print_help()
    return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatcore", description="chatcore chat server")
    parser.add_argument("--version", action="version", version=f"chatcore {chatcore_version()}")
    commands = parser.add_subparsers(dest="command")
    serve_cmd = commands.add_parser(
        "serve",
        help="run the HTTP + Socket.IO server",
        description="Run the server. Options override the CHATCORE_* environment variables. "
        "Without CHATCORE_MONGODB_URI the embedded database is started under DATA_DIR/db.",
    )
    serve_cmd.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="TCP port (default 8000)")
    serve_cmd.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    return parser


class _StopSignals:
    """Turns SIGINT/SIGTERM into "stop" outside uvicorn's own signal handling.

    uvicorn installs its handlers while it runs and, once shut down, re-raises
    the signal it caught; these handlers then make that a clean exit (so the
    embedded database is stopped) instead of the default abrupt termination.
    """

    def __init__(self) -> None:
        self.requested = False
        self.server: uvicorn.Server | None = None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, sig: int, frame: FrameType | None) -> None:
        self.requested = True
        if self.server is not None:
            self.server.should_exit = True


class _DrainingServer(uvicorn.Server):
    """uvicorn, but the first stop signal runs ``drain`` before uvicorn's shutdown."""

    def __init__(self, config: uvicorn.Config, drain: Callable[[], Awaitable[None]]) -> None:
        super().__init__(config)
        self._drain = drain
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_requested = False
        self._draining: asyncio.Future[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._loop is None or not self.started or self._drain_requested:
            super().handle_exit(sig, frame)  # not serving yet, or a second signal
            return
        self._drain_requested = True
        self._captured_signals.append(sig)  # re-raised once stopped, as uvicorn does
        # From the signal handler to the loop, in an empty context: the handler may
        # have interrupted a request, whose context (e.g. a database deadline held
        # in a context variable) the drain must not inherit.
        self._loop.call_soon_threadsafe(self._start_drain, context=contextvars.Context())

    def _start_drain(self) -> None:
        self._draining = asyncio.ensure_future(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await self._drain()
        except Exception:
            log.exception("drain failed; stopping anyway")
        finally:
            self.should_exit = True


def _listen(host: str, port: int) -> socket.socket:
    """The server's listening socket, bound now (before anything else starts)."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.create_server((host, port), family=family, backlog=2048)
    return sock


def _reason(exc: OSError) -> str:
    # socket.create_server appends the address to strerror; the line already names it.
    return os.strerror(exc.errno) if exc.errno else str(exc)


def serve(*, host: str | None = None, port: int | None = None, data_dir: Path | None = None) -> int:
    """Run the server until SIGINT/SIGTERM; returns the exit status."""
    overrides: dict[str, Any] = {
        k: v for k, v in {"host": host, "port": port, "data_dir": data_dir}.items() if v is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"chatcore: invalid settings:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    _configure_logging(settings.log_level)
    stop = _StopSignals()
    stop.install()

    try:
        listener = _listen(settings.host, settings.port)
    except OSError as exc:
        print(
            f"chatcore: cannot listen on {settings.host}:{settings.port}: {_reason(exc)}",
            file=sys.stderr,
        )
        return EXIT_PORT_IN_USE
    embedded: EmbeddedDatabase | None = None
    try:
        if settings.mongodb_uri is None:
            reason = missing_reason()
            if reason is not None:
                print(f"chatcore: {reason}", file=sys.stderr)
                return EXIT_FAILURE
            embedded = EmbeddedDatabase(
                settings.data_dir,
                sync_on_commit=settings.embedded_sync_on_commit,
                cache_size=settings.embedded_cache_size,
                max_rss=size_bytes(settings.embedded_max_rss),
            )
            embedded.spawn()
        # Imported here, not at the top: the app's imports take about a second, spent
        # while the embedded database boots instead of before it.
        from entrypoints import gc_tuning
        from entrypoints.app import create_app
        from entrypoints.socketio.lean import uvicorn_ws

        if embedded is not None:
            uri = embedded.wait_ready(cancelled=lambda: stop.requested)
            log.info("embedded database ready on port %s (pid %s)", embedded.port, embedded.pid)
            embedded.supervise()
            settings = settings.model_copy(update={"mongodb_uri": uri})
        if stop.requested:
            return EXIT_OK
        from entrypoints.drain import drain

        app = create_app(settings, after_startup=gc_tuning.settle_heap)
        grace = settings.shutdown_grace_seconds
        server = _DrainingServer(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                loop="auto",  # uvloop when installed
                http="auto",  # httptools when installed
                lifespan="on",
                access_log=False,  # the app logs one line per request itself
                log_config=None,  # keep the logging set up below
                server_header=False,
                # Off by default: chat frames are a few hundred bytes, and a zlib context
                # per socket costs ~36 KiB of RAM and ~10 % of CPU (bench/RESULTS.md).
                ws_per_message_deflate=settings.ws_per_message_deflate,
                ws=uvicorn_ws(settings.ws_protocol),
                # What is left of the grace period after the drain.
                timeout_graceful_shutdown=max(1, round(grace * (1 - _DRAIN_SHARE))),
            ),
            drain=lambda: drain(app.sio, app.runtime, wait_seconds=grace * _DRAIN_SHARE),
        )
        stop.server = server
        server.run(sockets=[listener])
        if stop.requested or server.started:
            return EXIT_OK
        return EXIT_FAILURE
    except DataDirInUse as exc:
        print(f"chatcore: {exc}", file=sys.stderr)
        return EXIT_DATA_DIR_IN_USE
    except EmbeddedDatabaseError as exc:
        if stop.requested:
            return EXIT_OK  # stopped while the database was starting
        print(f"chatcore: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        listener.close()
        if embedded is not None:
            if embedded.pid is not None:
                log.info("stopping the embedded database")
            embedded.stop()


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # uvicorn logs INFO lines for every WebSocket connection ("[accepted]", "connection
    # open/closed"): noise, and a formatted write on every connect and disconnect.
    logging.getLogger("uvicorn.error").addFilter(_drop_per_connection_lines)


def _drop_per_connection_lines(record: logging.LogRecord) -> bool:
    if record.levelno > logging.INFO:
        return True
    message = str(record.msg)
    return not (message.startswith("connection ") or "[accepted]" in message)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
