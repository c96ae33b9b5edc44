"""The embedded database of ``chatcore serve``: SecantusDB as a child process.

SecantusDB (the optional ``chatcore[embedded]`` extra, GPL) is a MongoDB
wire-protocol server; run as a child process, its Python CPU work stays off
the server's event loop and the same pymongo adapter talks to it as to mongod.
Only this entrypoint module knows about it.

The child never outlives the server: it is stopped when :meth:`stop` runs
(normal shutdown, failed start, SIGINT/SIGTERM), and on Linux the kernel sends
it SIGTERM should the server die without cleaning up (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import importlib.util
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Final

from pymongo import MongoClient
from pymongo.errors import PyMongoError

EXECUTABLE: Final = "secantusd-py"
CONFIG_FILE: Final = "secantusd.toml"
LOG_FILE: Final = "secantusd.log"
_PORT_ATTEMPTS: Final = 3
_PR_SET_PDEATHSIG: Final = 1

_CONFIG_TEMPLATE: Final = """\
# Settings of the embedded SecantusDB that `chatcore serve` starts (see `secantusd-py --help`).
# Empty means built-in defaults. Host, port and storage path are set on the command line.
"""


class EmbeddedDatabaseError(RuntimeError):
    """The embedded database is missing, or could not be started."""


def missing_reason() -> str | None:
    """Why the embedded database can't run here, or None if it can."""
    if importlib.util.find_spec("secantus") is None or _executable() is None:
        return (
            "the embedded database (SecantusDB) is not installed: install it with "
            "`pip install 'chatcore[embedded]'`, or set CHATCORE_MONGODB_URI to use a "
            "MongoDB server"
        )
    return None


def _executable() -> str | None:
    # Prefer the one installed next to this Python (the same virtualenv).
    beside = Path(sys.executable).with_name(EXECUTABLE)
    if beside.exists():
        return str(beside)
    return shutil.which(EXECUTABLE)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the caller retries if it is taken later)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedDatabase:
    """A ``secantusd-py`` child on a free loopback port, storing under ``data_dir/db``."""

    def __init__(self, data_dir: Path, *, host: str = "127.0.0.1") -> None:
        self.data_dir = data_dir
        self.host = host
        self.storage_path = data_dir / "db"
        self.log_path = data_dir / LOG_FILE
        self.config_path = data_dir / CONFIG_FILE
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        if self.port is None:
            raise RuntimeError("the embedded database is not started")
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, *, timeout: float = 60.0, cancelled: Callable[[], bool] = lambda: False) -> str:
        """Start the child and return its URI once it answers; raise if it can't."""
        self.spawn()
        return self.wait_ready(timeout=timeout, cancelled=cancelled)

    def spawn(self) -> None:
        """Launch the child without waiting for it (see :meth:`wait_ready`)."""
        reason = missing_reason()
        if reason is not None:
            raise EmbeddedDatabaseError(reason)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():
            # An explicit --config also stops secantusd-py from picking up a stray
            # ./secantusd.toml or ~/.secantus/secantusd.toml.
            self.config_path.write_text(_CONFIG_TEMPLATE)
        self._spawn()

    def wait_ready(
        self, *, timeout: float = 60.0, cancelled: Callable[[], bool] = lambda: False
    ) -> str:
        """Wait until the spawned child answers and return its URI.

        ``cancelled`` is polled while waiting (a stop signal during startup). A
        child that exits early, most likely because another process took its port
        in between, is started again on another port, a few times at most.
        """
        deadline = time.monotonic() + timeout
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            if self._wait_until_ready(deadline, cancelled):
                return self.uri
            if attempt == _PORT_ATTEMPTS:
                break
            self._spawn()
        raise EmbeddedDatabaseError(
            f"the embedded database did not start (log: {self.log_path}):\n{self._log_tail()}"
        )

    def _spawn(self) -> None:
        self.port = free_port(self.host)
        command = [
            str(_executable()),
            *("--config", str(self.config_path)),
            *("--host", self.host, "--port", str(self.port)),
            *("--storage-path", str(self.storage_path)),
            *("--log-level", "WARNING"),
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: a terminal's Ctrl-C reaches the server only, which
                # then stops HTTP first and the database last.
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )

    def _wait_until_ready(self, deadline: float, cancelled: Callable[[], bool]) -> bool:
        """True once it answers; False if it exited. Raises on timeout or cancel."""
        process = self._process
        assert process is not None
        client: MongoClient[dict[str, object]] = MongoClient(
            self.uri, serverSelectionTimeoutMS=250, connectTimeoutMS=250
        )
        with client:
            while True:
                if process.poll() is not None:
                    return False
                if cancelled():
                    self.stop()
                    raise EmbeddedDatabaseError("startup cancelled")
                try:
                    client.admin.command("ping")
                    return True
                except PyMongoError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise EmbeddedDatabaseError(
                            f"the embedded database did not answer in time "
                            f"(log: {self.log_path}):\n{self._log_tail()}"
                        ) from None

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the child cleanly (SIGTERM), killing it if it takes longer than ``timeout``."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> EmbeddedDatabase:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
