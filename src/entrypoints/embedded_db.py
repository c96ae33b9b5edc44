"""The embedded database of ``chatcore serve``: SecantusDB as a child process.

SecantusDB (the optional ``chatcore[embedded]`` extra, GPL) is a MongoDB
wire-protocol server; run as a child process, its Python CPU work stays off
the server's event loop and the same pymongo adapter talks to it as to mongod.
Only this entrypoint module knows about it.

The child never outlives the server: it is stopped when :meth:`stop` runs
(normal shutdown, failed start, SIGINT/SIGTERM), and on Linux the kernel
SIGKILLs it should the server die without cleaning up (``PR_SET_PDEATHSIG``;
see :func:`_die_with_parent` for why not SIGTERM).

Supervised: once :meth:`supervise` is called, a watcher thread reaps the child
when it dies (no zombie) and starts it again on the same port and storage,
with a back-off, until :meth:`stop`. Meanwhile requests get 503 and ``/readyz``
says 503; the pymongo client reconnects by itself once the child answers. A
child that is up but whose storage has failed (WiredTiger panicked, e.g. on a
full disk: every storage command answers ``InternalError``, for good) is found
by a check every few seconds, killed and restarted the same way; its starts
fail while the disk stays full, and succeed once space is free.

Recycled above ``max_rss``: SecantusDB 0.7.0b3 grows with every transaction and
nothing of it bounds that (bench/RESULTS.md, "The embedded database's memory"),
so the watcher reads the child's resident size every few seconds and, past the
limit, stops it cleanly (as :meth:`stop` does) and starts it again at once: an
outage of a few seconds (503s; nothing acknowledged lost) that returns the
memory. A child already over the limit just after such a restart could not get
under it: recycling is then turned off, with a warning, instead of looping.

Durable and bounded by default: the child fsyncs its log on every commit
(``--sync-on-commit``: an acknowledged write survives SIGKILL of the database,
of the server, or both), its WiredTiger cache is capped (``cache_size``), and
its oplog, which chatcore never reads (no change streams), is kept short. (That
bounds its memory under plain writes; SecantusDB still grows with transactions:
bench/RESULTS.md.)

One server per data directory: :meth:`spawn` takes an exclusive lock on
``data_dir/chatcore.lock`` first, so a second server fails at once with one
clear line instead of a storage error from the child.
"""

from __future__ import annotations

import ctypes
import fcntl
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pymongo import MongoClient

log = logging.getLogger("chatcore")

EXECUTABLE: Final = "secantusd-py"
CONFIG_FILE: Final = "secantusd.toml"
LOG_FILE: Final = "secantusd.log"
LOCK_FILE: Final = "chatcore.lock"
DEFAULT_CACHE_SIZE: Final = "128M"
_PORT_ATTEMPTS: Final = 3
_PR_SET_PDEATHSIG: Final = 1
# chatcore opens no change stream: a short oplog is all the embedded server needs.
_OPLOG_FLAGS: Final = ("--oplog-max-entries", "10000", "--oplog-retention-seconds", "600")
# Restart back-off of the supervisor: doubles from the first to the last, and is
# reset once the child has run for _STABLE_SECONDS.
_RESTART_DELAYS: Final = (0.2, 0.5, 1.0, 2.0, 5.0)
_STABLE_SECONDS: Final = 30.0
_RESTART_READY_TIMEOUT: Final = 60.0
# A clean stop takes ~3 s; one that hangs (e.g. after a stall) is killed, which loses
# nothing acknowledged: every commit is on disk (--sync-on-commit).
_STOP_SECONDS: Final = 5.0
# How often the supervisor checks the child: its resident size (a /proc read) and
# whether its storage answers (one listDatabases).
_CHECK_SECONDS: Final = 2.0
# Checks in a row that must find the storage failed before the child is restarted.
_FAILED_CHECKS: Final = 2
_STORAGE_FAILED: Final = (
    "the embedded database (pid %s) answers, but its storage has failed (%s; a full "
    "disk? see %s): restarting it; requests get 503 until it is back"
)
_OVER_LIMIT: Final = (
    "the embedded database (pid %s) uses %s, over its limit of %s "
    "(CHATCORE_EMBEDDED_MAX_RSS): restarting it; requests get 503 until it is back"
)
_SIZE_UNITS: Final = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

_CONFIG_TEMPLATE: Final = """\
# Settings of the embedded SecantusDB that `chatcore serve` starts (see `secantusd-py --help`).
# Empty means built-in defaults. Host, port and storage path are set on the command line.
"""


class EmbeddedDatabaseError(RuntimeError):
    """The embedded database is missing, or could not be started."""


class DataDirInUse(EmbeddedDatabaseError):
    """Another server already runs on this data directory."""


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


def size_bytes(text: str) -> int:
    """Bytes of a size such as ``512M``, ``1G``, ``65536`` (binary units: K, M, G)."""
    unit = text[-1:].upper() if text[-1:].isalpha() else ""
    if unit not in _SIZE_UNITS or not text[: len(text) - len(unit)].isdigit():
        raise ValueError(f"not a size: {text!r} (e.g. 512M, 1G)")
    return int(text[: len(text) - len(unit)]) * _SIZE_UNITS[unit]


def resident_bytes(pid: int) -> int | None:
    """The resident set size of process ``pid`` (None: gone, or no /proc here)."""
    try:
        resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Have the kernel SIGKILL this child when the thread that spawned it ends (the
    server's main thread, or the supervisor's for a restarted child: both live as
    long as the server does).

    SIGKILL, not SIGTERM: a process-wide SIGTERM may land on any of SecantusDB's
    threads while Python acts on signals in the main thread only, which may sleep
    on a lock (see :func:`_terminate`), and a stopped child keeps a SIGTERM pending
    for a SIGCONT that never comes; either way an orphan held the storage (once
    seen alive 29 minutes after its server was SIGKILLed). SIGKILL loses nothing
    acknowledged: every commit is on disk (``--sync-on-commit``), and the next
    start recovers from the log as after any crash.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class EmbeddedDatabase:
    """A ``secantusd-py`` child on a free loopback port, storing under ``data_dir/db``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        sync_on_commit: bool = True,
        cache_size: str = DEFAULT_CACHE_SIZE,
        max_rss: int | None = None,
        check_seconds: float = _CHECK_SECONDS,
    ) -> None:
        self.data_dir = data_dir
        self.host = host
        self.sync_on_commit = sync_on_commit
        self.cache_size = cache_size
        # Recycle the supervised child above this resident size (bytes; None: never).
        self.max_rss = max_rss or None
        self.check_seconds = check_seconds
        self.recycles = 0
        self._recycle_started = 0.0  # monotonic time the last recycle began
        self.storage_path = data_dir / "db"
        self.log_path = data_dir / LOG_FILE
        self.config_path = data_dir / CONFIG_FILE
        self.lock_path = data_dir / LOCK_FILE
        self.port: int | None = None
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
        self._stopping = threading.Event()
        self._guard = threading.Lock()  # _process, between the watcher and stop()
        self._watcher: threading.Thread | None = None

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
        self._lock_data_dir()
        log.info("starting the embedded database under %s", self.storage_path)
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
            try:
                ready = self._wait_until_ready(deadline, cancelled)
            except EmbeddedDatabaseError:
                self.stop()
                raise
            if ready:
                return self.uri
            if attempt == _PORT_ATTEMPTS:
                break
            self._spawn()
        raise EmbeddedDatabaseError(
            f"the embedded database did not start (log: {self.log_path}):\n{self._log_tail()}"
        )

    def _lock_data_dir(self) -> None:
        if self._lock_fd is not None:
            return
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Released by the kernel when this process ends, however it ends.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirInUse(
                f"the data directory {self.data_dir} is in use by another chatcore server"
            ) from None
        self._lock_fd = fd

    def _unlock_data_dir(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing releases the lock

    def _spawn(self, port: int | None = None) -> None:
        self.port = port or free_port(self.host)
        command = [
            str(_executable()),
            *("--config", str(self.config_path)),
            *("--host", self.host, "--port", str(self.port)),
            *("--storage-path", str(self.storage_path)),
            *("--log-level", "WARNING"),
            *("--cache-size", self.cache_size),
            *_OPLOG_FLAGS,
            *(("--sync-on-commit",) if self.sync_on_commit else ()),
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
        """True once it answers; False if it exited. Raises on timeout or cancel (the
        caller decides what to stop)."""
        with self._guard:
            process = self._process
        if process is None:
            raise EmbeddedDatabaseError("the embedded database was stopped")
        # Imported here, not at the top: `chatcore serve` imports this module before
        # it locks the data directory, and pymongo takes ~0.25 s to import; a second
        # server on the same directory now fails without waiting for it.
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        client: MongoClient[dict[str, object]] = MongoClient(
            self.uri, serverSelectionTimeoutMS=250, connectTimeoutMS=250
        )
        with client:
            while True:
                if process.poll() is not None:
                    return False
                if cancelled():
                    raise EmbeddedDatabaseError("startup cancelled")
                try:
                    client.admin.command("ping")
                    return True
                except PyMongoError:
                    if time.monotonic() > deadline:
                        raise EmbeddedDatabaseError(
                            f"the embedded database did not answer in time "
                            f"(log: {self.log_path}):\n{self._log_tail()}"
                        ) from None

    def supervise(self) -> None:
        """Restart the child whenever it dies, until :meth:`stop` (a daemon thread)."""
        if self._watcher is None:
            self._watcher = threading.Thread(
                target=self._watch, name="embedded-db-supervisor", daemon=True
            )
            self._watcher.start()

    def _watch(self) -> None:
        # Imported here for the same reason as in _wait_until_ready.
        from pymongo import MongoClient

        failures = 0
        # The storage check's own client: short timeouts, and it reconnects by itself
        # to a restarted child (the same port).
        probe: MongoClient[dict[str, object]] = MongoClient(
            self.uri,
            serverSelectionTimeoutMS=500,
            connectTimeoutMS=500,
            socketTimeoutMS=1000,
        )
        with probe:
            while not self._stopping.is_set():
                with self._guard:
                    process = self._process
                if process is None:
                    return
                started = time.monotonic()
                code = self._wait_or_recycle(process, probe)  # reaps it: no zombie
                if self._stopping.is_set():
                    return
                if code is None:  # recycled: stopped cleanly on purpose, back at once
                    self._restart(recycled=True)
                    continue
                if time.monotonic() - started > _STABLE_SECONDS:
                    failures = 0
                delay = _RESTART_DELAYS[min(failures, len(_RESTART_DELAYS) - 1)]
                failures += 1
                log.error(
                    "the embedded database (pid %s) exited with status %s; restarting it in %.1f s",
                    process.pid,
                    code,
                    delay,
                )
                if self._stopping.wait(delay):
                    return
                self._restart()

    def _wait_or_recycle(
        self, process: subprocess.Popen[bytes], probe: MongoClient[dict[str, object]]
    ) -> int | None:
        """Wait until ``process`` exits and return its status, checking it every
        ``check_seconds`` meanwhile: once its storage has failed (see
        :func:`_storage_failed`) for ``_FAILED_CHECKS`` checks in a row, kill it and
        return its status (a crash: the watcher restarts it with the back-off); once
        its resident size passes ``max_rss``, stop it cleanly and return None."""
        failed_checks = 0
        while True:
            try:
                return process.wait(self.check_seconds)
            except subprocess.TimeoutExpired:
                pass
            failed = _storage_failed(probe)
            failed_checks = failed_checks + 1 if failed is not None else 0
            rss = resident_bytes(process.pid)
            if failed is not None and failed_checks >= _FAILED_CHECKS:
                # Killed: a storage engine that panicked may not stop cleanly, and
                # nothing acknowledged is lost (--sync-on-commit).
                failure = (failed, self.log_path)
                if self._end(process, process.kill, logging.ERROR, _STORAGE_FAILED, *failure):
                    return process.wait()
            elif self.max_rss is not None and rss is not None and rss > self.max_rss:
                self._recycle_started = time.monotonic()
                sizes = (_mib(rss), _mib(self.max_rss))
                if self._end(
                    process, partial(_terminate, process), logging.WARNING, _OVER_LIMIT, *sizes
                ):
                    self._wait_stopped(process)
                    return None

    def _end(
        self,
        process: subprocess.Popen[bytes],
        how: Callable[[], None],
        level: int,
        why: str,
        *args: object,
    ) -> bool:
        """Log ``why`` (of the child's pid and ``args``) and end ``process`` with
        ``how``; False if :meth:`stop` has it already (its next wait returns)."""
        with self._guard:
            if self._stopping.is_set():
                return False
            log.log(level, why, process.pid, *args)
            how()
            return True

    def _wait_stopped(self, process: subprocess.Popen[bytes]) -> None:
        """Wait for a child stopped for its memory (killed if it takes too long)."""
        try:
            process.wait(_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()  # loses nothing acknowledged: --sync-on-commit
            process.wait()
        log.info(
            "the embedded database (pid %s) stopped in %.1f s",
            process.pid,
            time.monotonic() - self._recycle_started,
        )

    def _restart(self, *, recycled: bool = False) -> None:
        with self._guard:
            if self._stopping.is_set():
                return
            # The same port: the server's client keeps its URI and reconnects by itself.
            self._spawn(self.port)
            process = self._process
        assert process is not None
        deadline = time.monotonic() + _RESTART_READY_TIMEOUT
        try:
            if self._wait_until_ready(deadline, self._stopping.is_set):
                self.restarts += 1
                log.warning("the embedded database is back (pid %s)", process.pid)
                if recycled:
                    self.recycles += 1
                    log.info(
                        "the embedded database was restarted for its memory in %.1f s",
                        time.monotonic() - self._recycle_started,
                    )
                    self._keep_recycling_if_useful(process.pid)
        except EmbeddedDatabaseError as exc:
            if not self._stopping.is_set():
                # Killed, the watcher sees it exit and tries again after the next delay.
                log.error("the embedded database did not come back: %s", exc)
                process.kill()

    def _keep_recycling_if_useful(self, pid: int) -> None:
        """Turn recycling off if the fresh child is over the limit already: restarting
        it again could not help, only cut storage off every few seconds."""
        rss = resident_bytes(pid)
        if self.max_rss is not None and rss is not None and rss > self.max_rss:
            log.warning(
                "the embedded database uses %s just after a restart, over its limit of "
                "%s (CHATCORE_EMBEDDED_MAX_RSS): no more restarts for memory",
                _mib(rss),
                _mib(self.max_rss),
            )
            self.max_rss = None

    def stop(self, timeout: float = _STOP_SECONDS) -> None:
        """Stop the child cleanly (SIGTERM), killing it if it takes longer than ``timeout``;
        stops the supervisor first and releases the data directory."""
        self._stopping.set()
        with self._guard:
            process, self._process = self._process, None
        if process is not None and process.poll() is None:
            _terminate(process)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout)
        self._unlock_data_dir()

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


def _storage_failed(probe: MongoClient[dict[str, object]]) -> str | None:
    """Why the child's storage has failed, or None if it answers (or cannot be asked).

    A child whose storage engine panicked (WiredTiger's WT_PANIC: a full disk, an
    I/O error) stays up and answers ``ping``, but every command that touches
    storage fails with ``InternalError``, for good: only a restart ends it. A child
    that does not answer at all (stalled, starting, stopping) is not judged here:
    a stall may end by itself, and a dead child is seen exiting.
    """
    from pymongo.errors import OperationFailure, PyMongoError

    from adapters.mongo.errors import INTERNAL_ERROR

    try:
        probe.admin.command("listDatabases", nameOnly=True)
    except OperationFailure as exc:
        if exc.code == INTERNAL_ERROR:
            return f"InternalError: {(exc.details or {}).get('errmsg', exc)}"
        return None
    except PyMongoError:
        return None
    return None


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGCONT (it may be stopped), then SIGTERM to its main thread.

    Why to the main thread (Linux ``tgkill``) rather than to the process: after a
    SIGSTOP/SIGCONT the kernel often hands a process-wide SIGTERM to another of
    SecantusDB's threads; Python runs signal handlers on the main thread only, and
    SecantusDB's main thread sleeps on a lock that only a signal delivered to it
    interrupts, so the server never stopped and was killed after _STOP_SECONDS
    (3 times in 5 in a probe; 0 in 5 with tgkill).
    """
    process.send_signal(signal.SIGCONT)
    libc = ctypes.CDLL(None, use_errno=True)
    tgkill = getattr(libc, "tgkill", None)  # Linux, glibc 2.30+
    if tgkill is None or tgkill(process.pid, process.pid, signal.SIGTERM) != 0:
        process.terminate()
