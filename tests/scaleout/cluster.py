"""Several ``chatcore serve`` processes sharing one storage and one Redis, and their clients.

Each process is the venv's ``chatcore`` script on a free port with a data
directory of its own, configured only through ``CHATCORE_*`` variables: one
MongoDB URI and database, one Redis URL and key prefix, one JWT secret, a short
presence TTL. Processes start in parallel; :func:`cluster` kills every one of
them (and deletes the test's Redis keys and database) whatever happens.

Clients are python-socketio ``AsyncClient`` over WebSocket that record every
server event with its arrival time. Every wait is for an event or a condition,
with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
import socketio
from pymongo import AsyncMongoClient
from redis_support import delete_prefixed, unique_prefix

from entrypoints.settings import rate_limits_off_env
from support.accounts import PASSWORD, Account
from support.secantus import free_port
from support.serve import start_serve

JWT_SECRET = "scaleout-test-secret-" + "s" * 43
STARTUP_DEADLINE = 60.0
STOP_DEADLINE = 15.0
# Long enough for a loaded machine, short enough that a lost event fails fast.
TIMEOUT = 10.0
# Presence TTL of the test processes: a crashed process's users go offline within
# about TTL + TTL / 3 (heartbeat expiry + one upkeep interval).
PRESENCE_TTL = 1.5
PRESENCE_BOUND = PRESENCE_TTL * 4 / 3


class ServeProcess:
    """One ``chatcore serve`` process and its log."""

    def __init__(self, name: str, work_dir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = work_dir / name
        self.log_path = work_dir / f"{name}.log"
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = start_serve(
            self.port, self.data_dir, self.log_path, env=self.env, cwd=self.data_dir
        )

    @property
    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def wait_ready(self) -> None:
        """Until /readyz answers 200 (storage and Redis reachable, upkeep started)."""
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_DEADLINE
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(
                        f"{self.name} exited with {self.process.returncode}:\n{self.log[-3000:]}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} not ready in {STARTUP_DEADLINE}s:\n{self.log[-3000:]}")

    async def wait_log(self, text: str, *, after: int = 0) -> int:
        """Until ``text`` appears in the log (past offset ``after``); returns where it ends."""
        deadline = time.monotonic() + TIMEOUT
        while (found := self.log.find(text, after)) < 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} never logged {text!r}:\n{self.log[-3000:]}")
            await asyncio.sleep(0.02)
        return found + len(text)

    def kill(self) -> None:
        """SIGKILL, like a crash: no clean leave, no disconnects."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_DEADLINE)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Cluster:
    processes: list[ServeProcess]
    redis_url: str
    redis_prefix: str
    database: str
    http: httpx.AsyncClient
    clients: list[Client] = field(default_factory=list)
    _counter: int = 0

    def __getitem__(self, index: int) -> ServeProcess:
        return self.processes[index]

    async def register(self, name: str, on: ServeProcess | None = None) -> Account:
        self._counter += 1
        username = f"{name}{self._counter}"
        base = (on or self.processes[0]).url
        response = await self.http.post(
            f"{base}/api/auth/register", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        return Account.from_session(response.json())

    async def group(self, owner: Account, *members: Account, on: ServeProcess) -> str:
        response = await self.http.post(
            f"{on.url}/api/conversations",
            json={"type": "group", "name": "team", "memberIds": [m.id for m in members]},
            headers=owner.headers,
        )
        assert response.status_code == 201, response.text
        conversation_id: str = response.json()["id"]
        return conversation_id

    async def connect(self, user: Account, on: ServeProcess) -> Client:
        """A connected socket of ``user`` on process ``on`` (closed when the test ends)."""
        client = Client(user, on)
        self.clients.append(client)
        await client.connect()
        return client

    async def presence(self, on: ServeProcess, asker: Account, *users: Account) -> dict[str, bool]:
        """GET /api/presence on ``on``: user id -> online."""
        response = await self.http.get(
            f"{on.url}/api/presence",
            params={"userIds": ",".join(u.id for u in users)},
            headers=asker.headers,
        )
        assert response.status_code == 200, response.text
        return {p["userId"]: p["online"] for p in response.json()["presence"]}

    async def sockets_in_redis(self, user: Account) -> int:
        """How many sockets of ``user`` shared presence holds, on every process."""
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            count: int = await client.scard(f"{self.redis_prefix}presence:user:{user.id}")
            return count
        finally:
            await client.aclose()


class Client:
    """A python-socketio client on one process that records every event it receives
    (with its arrival time, ``time.monotonic()``) in per-event queues."""

    def __init__(self, user: Account, process: ServeProcess) -> None:
        self.user = user
        self.process = process
        self.sio = socketio.AsyncClient(reconnection=False)
        self._queues: defaultdict[str, asyncio.Queue[tuple[float, Any]]] = defaultdict(
            asyncio.Queue
        )
        self.sio.on("*", self._record)

    async def _record(self, event: str, *args: Any) -> None:
        self._queues[event].put_nowait((time.monotonic(), args[0] if len(args) == 1 else args))

    async def connect(self) -> None:
        await self.sio.connect(
            self.process.url,
            auth={"token": self.user.access_token},
            transports=["websocket"],
            wait_timeout=TIMEOUT,
        )

    async def call(self, event: str, *args: Any) -> Any:
        return await self.sio.call(event, *args, timeout=TIMEOUT)

    async def next(self, event: str, within: float = TIMEOUT) -> Any:
        """The next ``event`` received (waiting for it up to ``within`` seconds)."""
        return (await self.next_timed(event, within))[1]

    async def next_timed(self, event: str, within: float = TIMEOUT) -> tuple[float, Any]:
        try:
            return await asyncio.wait_for(self._queues[event].get(), within)
        except TimeoutError:
            raise AssertionError(
                f"{self.user.username} on {self.process.name}: no {event} within {within}s"
            ) from None

    def pending(self, event: str) -> list[Any]:
        """Every ``event`` received and not yet taken, now."""
        queue = self._queues[event]
        items = []
        while not queue.empty():
            items.append(queue.get_nowait()[1])
        return items

    async def close(self) -> None:
        await self.sio.disconnect()


def _env(
    mongodb_uri: str, database: str, redis_url: str, redis_prefix: str, ttl: float
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCORE_")}
    env.update(
        CHATCORE_MONGODB_URI=mongodb_uri,
        CHATCORE_MONGODB_DATABASE=database,
        CHATCORE_REDIS_URL=redis_url,
        CHATCORE_REDIS_PREFIX=redis_prefix,
        CHATCORE_JWT_SECRET=JWT_SECRET,
        CHATCORE_PRESENCE_TTL_SECONDS=str(ttl),
        CHATCORE_LOG_LEVEL="INFO",
    )
    # Off unless a test sets them (test_scaleout_rate_limits.py shares one limit).
    env.update(rate_limits_off_env())
    return env


@contextlib.asynccontextmanager
async def cluster(
    work_dir: Path,
    *,
    mongodb_uri: str,
    redis_url: str,
    size: int = 3,
    ttl: float = PRESENCE_TTL,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[Cluster]:
    """``size`` processes (named A, B, C, ...) on one database and one Redis prefix, all
    ready; every process killed, the database dropped and the keys deleted afterwards."""
    database = f"scaleout_{uuid.uuid4().hex[:12]}"
    prefix = unique_prefix()
    env = _env(mongodb_uri, database, redis_url, prefix, ttl) | (extra_env or {})
    processes = [ServeProcess(chr(ord("A") + n), work_dir, env) for n in range(size)]
    try:
        for process in processes:
            process.start()
        await asyncio.gather(*(p.wait_ready() for p in processes))
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            chat = Cluster(processes, redis_url, prefix, database, http)
            try:
                yield chat
            finally:
                await asyncio.gather(
                    *(_quietly(c.close()) for c in chat.clients), return_exceptions=True
                )
    finally:
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in processes))
        await _cleanup(mongodb_uri, database, redis_url, prefix)


async def _quietly(coroutine: Any) -> None:
    with contextlib.suppress(Exception):
        await coroutine


async def _cleanup(mongodb_uri: str, database: str, redis_url: str, prefix: str) -> None:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongodb_uri, serverSelectionTimeoutMS=5000
    )
    try:
        with contextlib.suppress(Exception):
            await mongo.drop_database(database)
    finally:
        await mongo.close()
    client = aioredis.Redis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        with contextlib.suppress(Exception):
            await delete_prefixed(client, prefix)
    finally:
        await client.aclose()


async def wait_for(condition: Any, *, within: float = TIMEOUT, what: str = "condition") -> None:
    """Poll the async ``condition()`` until it is true; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {within}s")
        await asyncio.sleep(0.02)


def names(clients: Sequence[Client]) -> list[str]:
    return [f"{c.user.username}@{c.process.name}" for c in clients]
