"""A live chatcore server in the test's event loop, and clients that talk to it.

The real app (``create_app``) runs in uvicorn on a free 127.0.0.1 port; users
register over HTTP (httpx) and connect with python-socketio's ``AsyncClient``.
Every wait is for an event, with a deadline; nothing sleeps a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import socketio
from attrs import define, field

from chatcore.chat import Storage
from chatcore.ports import Clock
from chatcore.testing import in_memory_storage
from entrypoints.app import create_app
from support.app import JWT_SECRET, make_container, make_settings, on_fresh_database, served
from support.waiting import wait_until

# Long enough for a loaded CI machine, short enough that a lost event fails fast.
TIMEOUT = 5.0


@define
class User:
    """A registered user and their access token."""

    id: str
    username: str
    token: str


@contextlib.asynccontextmanager
async def live_server(
    data_dir: Path,
    *,
    storage: Storage | None = None,
    mongo_uri: str | None = None,
    clock: Clock | None = None,
    **overrides: Any,
) -> AsyncIterator[LiveChat]:
    """The real app (``create_app``) served by uvicorn: on ``storage`` (default: fresh
    in-memory storage) or, given ``mongo_uri``, on a fresh database there; with the
    domain's ``clock`` if given, and settings ``overrides``."""
    async with contextlib.AsyncExitStack() as stack:
        if mongo_uri is None:
            settings = make_settings(data_dir, **overrides)
            container = make_container(settings, storage or in_memory_storage(), clock)
        else:
            settings = await stack.enter_async_context(
                on_fresh_database(data_dir, mongo_uri, **overrides)
            )
            container = make_container(settings, clock=clock)
        app = create_app(settings, container=container)
        # CHATCORE_WS_PROTOCOL runs the live tests on another WebSocket implementation.
        url = await stack.enter_async_context(served(app, settings.ws_protocol))
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=url))
        chat = LiveChat(url=url, http=http, sio=app.sio, jwt_secret=JWT_SECRET)
        stack.push_async_callback(chat.close_clients)
        yield chat


LiveFactory = Callable[..., contextlib.AbstractAsyncContextManager["LiveChat"]]


class SocketClient:
    """A python-socketio client that records every server event in per-event queues."""

    def __init__(self, transports: Sequence[str] = ("websocket",)) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.transports = list(transports)
        self._queues: defaultdict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)
        self.connect_error: Any = None
        # Registered before connecting so that nothing sent early is missed. The
        # client runs event handlers inline, in arrival order: by the time an ack
        # resolves, every event the server sent before it is in a queue.
        self.sio.on("*", self._record)
        self.sio.on("connect_error", self._on_connect_error)

    async def _record(self, event: str, *args: Any) -> None:
        self._queues[event].put_nowait(args[0] if len(args) == 1 else args)

    async def _on_connect_error(self, data: Any = None) -> None:
        self.connect_error = data

    @property
    def sid(self) -> str | None:
        return self.sio.get_sid()

    async def connect(
        self, url: str, token: str | None = None, headers: dict[str, str] | None = None
    ) -> SocketClient:
        await self.sio.connect(
            url,
            auth={"token": token} if token is not None else None,
            headers=headers or {},
            transports=self.transports,
            wait_timeout=TIMEOUT,
        )
        return self

    async def call(self, event: str, *args: Any) -> Any:
        """Emit with an ack callback and return the ack's value."""
        return await self.sio.call(event, *args, timeout=TIMEOUT)

    async def next(self, event: str, within: float = TIMEOUT) -> Any:
        """The next ``event`` this client received (waiting for it if needed)."""
        return await asyncio.wait_for(self._queues[event].get(), within)

    def pending(self, event: str) -> list[Any]:
        """Every ``event`` received and not yet taken with :meth:`next`, now."""
        queue = self._queues[event]
        items = []
        while not queue.empty():
            items.append(queue.get_nowait())
        return items

    async def settle(self) -> None:
        """A round trip to the server: afterwards every event the server had emitted to
        this socket before handling it has arrived (one connection is ordered)."""
        ack = await self.call("sync", {"since": {}})
        assert ack["ok"], ack

    async def close(self) -> None:
        await self.sio.disconnect()


@define
class LiveChat:
    """A running server: its URL, an HTTP client and helpers to set up a scene."""

    url: str
    http: httpx.AsyncClient
    sio: socketio.AsyncServer
    jwt_secret: str
    clients: list[SocketClient] = field(factory=list)
    _counter: int = 0

    async def register(self, name: str = "user") -> User:
        self._counter += 1
        username = f"{name}{self._counter}"
        response = await self.http.post(
            "/api/auth/register", json={"username": username, "password": "correct horse"}
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return User(id=body["user"]["id"], username=username, token=body["accessToken"])

    async def users(self, *names: str) -> list[User]:
        return [await self.register(name) for name in names]

    def auth(self, user: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {user.token}"}

    async def group(self, owner: User, *members: User, name: str = "team") -> dict[str, Any]:
        response = await self.http.post(
            "/api/conversations",
            json={"type": "group", "name": name, "memberIds": [m.id for m in members]},
            headers=self.auth(owner),
        )
        assert response.status_code == 201, response.text
        conversation: dict[str, Any] = response.json()
        return conversation

    async def direct(self, user: User, other: User) -> dict[str, Any]:
        response = await self.http.post(
            f"/api/conversations/direct/{other.id}", headers=self.auth(user)
        )
        assert response.status_code == 200, response.text
        conversation: dict[str, Any] = response.json()
        return conversation

    async def connect(self, user: User, transports: Sequence[str] = ("websocket",)) -> SocketClient:
        """A connected socket of ``user`` (closed when the test ends)."""
        client = SocketClient(transports)
        self.clients.append(client)
        return await client.connect(self.url, user.token)

    def socket_count(self, user: User) -> int:
        """How many sockets of ``user`` the server has in the user's room right now."""
        return sum(1 for _ in self.sio.manager.get_participants("/", f"user:{user.id}"))

    async def wait_socket_count(self, user: User, count: int) -> None:
        """Wait until the server has handled connects/disconnects down to ``count``
        (python-socketio leaves the room only after the disconnect handler ran)."""
        await wait_until(lambda: self.socket_count(user) == count, within=TIMEOUT)

    async def close_clients(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.close()
