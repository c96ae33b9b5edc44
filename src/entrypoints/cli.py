"""The ``chatcore`` command (also ``python -m entrypoints``).

``chatcore serve`` runs the bundled server on uvicorn. Without
``CHATCORE_MONGODB_URI`` it first starts the embedded SecantusDB as a child
process storing under ``<data-dir>/db``, and stops it after the server has
shut down, on SIGINT/SIGTERM as on a failed start.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from pydantic import ValidationError

from entrypoints.embedded_db import EmbeddedDatabase, EmbeddedDatabaseError, missing_reason
from entrypoints.settings import Settings
from entrypoints.version import chatcore_version

log = logging.getLogger("chatcore")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
GRACEFUL_SHUTDOWN_SECONDS = 10


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

    embedded: EmbeddedDatabase | None = None
    try:
        if settings.mongodb_uri is None:
            reason = missing_reason()
            if reason is not None:
                print(f"chatcore: {reason}", file=sys.stderr)
                return EXIT_FAILURE
            embedded = EmbeddedDatabase(settings.data_dir)
            log.info("starting the embedded database under %s", embedded.storage_path)
            embedded.spawn()
        # Imported here, not at the top: the app's imports take about a second, spent
        # while the embedded database boots instead of before it.
        from entrypoints.app import create_app

        if embedded is not None:
            uri = embedded.wait_ready(cancelled=lambda: stop.requested)
            log.info("embedded database ready on port %s (pid %s)", embedded.port, embedded.pid)
            settings = settings.model_copy(update={"mongodb_uri": uri})
        if stop.requested:
            return EXIT_OK
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings),
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
                # Don't wait forever for long-lived (Socket.IO) connections on shutdown.
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            )
        )
        stop.server = server
        server.run()
        if stop.requested or server.started:
            return EXIT_OK
        return EXIT_FAILURE
    except EmbeddedDatabaseError as exc:
        if stop.requested:
            return EXIT_OK  # stopped while the database was starting
        print(f"chatcore: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        if embedded is not None:
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
