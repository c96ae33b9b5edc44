"""SecantusDB as a child process, for tests: start, wait until it answers, stop.

A child process rather than the in-process server: its (Python) CPU work then
runs off the test's event loop, and a test can kill it like a real outage.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _executable() -> str:
    beside_python = Path(sys.executable).with_name("secantusd-py")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("secantusd-py")
    if found is None:
        raise RuntimeError("secantusd-py not found: install the 'embedded' extra")
    return found


class SecantusProcess:
    """One ``secantusd-py`` server on ``port`` storing under ``storage_path``.

    Restartable: :meth:`stop` or :meth:`kill`, then :meth:`start` again on the
    same port and storage, like a database server coming back after an outage.
    """

    def __init__(
        self, storage_path: Path, *, port: int | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.storage_path = storage_path
        self.port = port or free_port()
        self.args = args
        self.log_path = storage_path.with_name(storage_path.name + ".log")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and return once it answers ``hello`` (or raise)."""
        if self.running:
            return
        command = [
            _executable(),
            *("--host", "127.0.0.1", "--port", str(self.port)),
            *("--storage-path", str(self.storage_path), "--log-level", "WARNING"),
            *self.args,
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self._wait_until_ready(timeout)

    def _wait_until_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        with MongoClient(self.uri, serverSelectionTimeoutMS=250, connectTimeoutMS=250) as client:
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(
                        f"secantusd-py exited with {self._process.returncode}; "
                        f"log: {self.log_path}\n{self._log_tail()}"
                    )
                try:
                    client.admin.command("hello")
                    return
                except PyMongoError:
                    if time.monotonic() > deadline:
                        self.kill()
                        raise RuntimeError(
                            f"secantusd-py did not answer within {timeout}s\n{self._log_tail()}"
                        ) from None

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """Shut down cleanly (SIGTERM), killing the process if it takes too long."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), like a crash."""
        self._end(signal.SIGKILL, 15.0)

    def _end(self, sig: signal.Signals, timeout: float) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
