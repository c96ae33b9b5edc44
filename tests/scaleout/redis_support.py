"""Redis for the scale-out tests: the shared server, unique key prefixes, own throwaway servers.

The Redis on 127.0.0.1:6379 (or ``CHATCORE_TEST_REDIS_URL``) is shared with
everyone on the machine: tests only ever touch keys under a prefix of their
own and delete them afterwards, never FLUSHDB. Outage tests start their own
``redis-server`` (:class:`RedisServer`) on a free port instead, and kill it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from support.secantus import free_port

REDIS_URL = os.environ.get("CHATCORE_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"


def shared_redis_problem() -> str | None:
    """Why the shared Redis can't be used (a skip reason), or None if it answers."""
    try:
        with redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2) as r:
            r.ping()
    except (RedisError, OSError) as exc:
        return f"no Redis answers at {REDIS_URL} ({exc}); set CHATCORE_TEST_REDIS_URL"
    return None


def redis_server_problem() -> str | None:
    """Why this machine can't start its own redis-server (a skip reason), or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (needed to simulate Redis outages)"
    return None


def unique_prefix() -> str:
    return f"chatcore-test:{uuid.uuid4().hex[:16]}:"


async def delete_prefixed(client: aioredis.Redis, prefix: str) -> None:
    """Delete every key under ``prefix`` (and only those)."""
    keys = [key async for key in client.scan_iter(match=prefix + "*", count=500)]
    if keys:
        await client.delete(*keys)


class RedisServer:
    """A throwaway ``redis-server`` on its own port: kill it (an outage) and start it
    again on the same port. Without ``persistent`` it keeps nothing (a restart comes
    back empty); with it, every write is in an append-only file (a restart keeps
    everything, like a network outage)."""

    def __init__(self, work_dir: Path, *, persistent: bool = False) -> None:
        self.port = free_port()
        self.work_dir = work_dir
        self.persistent = persistent
        self.log_path = work_dir / f"redis-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The running server's process id (to SIGSTOP it, a hung Redis)."""
        assert self._process is not None, "not started"
        return self._process.pid

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> None:
        """Start (or restart) the server and return once it answers PING."""
        if self._process is not None and self._process.poll() is None:
            return
        self.work_dir.mkdir(parents=True, exist_ok=True)
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.persistent
            else ["--appendonly", "no"]
        )
        command = [
            "redis-server",
            *("--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
            *persistence,
            *("--dir", str(self.work_dir), "--logfile", str(self.log_path)),
        ]
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        with redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5) as r:
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(f"redis-server exited:\n{self._log_tail()}")
                try:
                    r.ping()
                    return
                except (RedisError, OSError):
                    if time.monotonic() > deadline:
                        self.kill()
                        raise RuntimeError(
                            f"redis-server did not answer:\n{self._log_tail()}"
                        ) from None
                time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL, like a crash; returns once the port is free again."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL)
        process.wait(15)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""
