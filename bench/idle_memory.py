"""Where an idle socket's memory goes: tracemalloc over the server side of N idle sockets.

The real app (in-memory storage) runs in uvicorn in this process, as chatcore serve
configures it (``--ws``: its lean sans-I/O websockets protocol, no deflate); N python-socketio
 clients connect over WebSocket, also in this process. tracemalloc compares the
heap before and after (after the connections settled), keeps the allocation sites of the
server side (uvicorn, websockets, engine.io / socket.io server code, asyncio, chatcore)
and prints the top sites in bytes per socket. Client-side sites (python-socketio
/engine.io clients, aiohttp) are left out; shared modules (asyncio, websockets)
count for both and are listed with their caller line.

This is a probe for finding what to cut, not a benchmark: tracemalloc counts
Python allocations (not RSS, which adds allocator overhead and fragmentation).

    python -m bench.idle_memory --sockets 2000 [--ws websockets-sansio]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import linecache
import os
import sys
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import argon2
import httpx
import socketio
import uvicorn
from dependency_injector import providers

from adapters.passwords import Argon2PasswordHasher
from chatcore.testing import in_memory_storage
from entrypoints.app import create_app
from entrypoints.container import Container
from entrypoints.settings import Settings
from entrypoints.socketio.lean import WS_PROTOCOLS, uvicorn_ws

CLIENT_SIDE = ("/aiohttp/", "/engineio/async_client", "/socketio/async_client", "bench/idle_memory")
CLIENT_SIDE += ("/engineio/base_client", "/socketio/base_client", "/yarl/", "/multidict/")


@contextlib.asynccontextmanager
async def serve(app: Any, ws: str) -> AsyncIterator[str]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="on", log_level="warning",
        ws=uvicorn_ws(ws), ws_per_message_deflate=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # startup failed: raise its error
            raise RuntimeError("uvicorn exited during startup")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def main(args: argparse.Namespace) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=Path(args.data_dir),
        jwt_secret="m" * 40,
        # One user holds every socket, opened in bursts: the socket caps are lifted.
        max_sockets_per_user=1_000_000,
        max_unauthenticated_sockets=1_000_000,
    )
    container = Container(settings=settings)
    container.storage.override(providers.Object(in_memory_storage()))
    container.passwords.override(providers.Object(Argon2PasswordHasher(argon2.profiles.CHEAPEST)))
    app = create_app(settings, container=container)
    clients: list[socketio.AsyncClient] = []
    async with serve(app, args.ws) as url, httpx.AsyncClient(base_url=url) as http:
        answer = await http.post(
            "/api/auth/register", json={"username": "idle", "password": "correct horse"}
        )
        token = answer.json()["accessToken"]

        async def connect() -> None:
            # tracemalloc slows everything down: a connect may time out; try again.
            for attempt in range(3):
                client = socketio.AsyncClient(reconnection=False)
                try:
                    await client.connect(
                        url, auth={"token": token}, transports=["websocket"], wait_timeout=30
                    )
                except socketio.exceptions.ConnectionError:
                    if attempt == 2:
                        raise
                    continue
                clients.append(client)
                return

        await connect()  # warm every code path once before the baseline
        gc.collect()
        before = tracemalloc.take_snapshot()
        gate = asyncio.Semaphore(20)

        async def bounded() -> None:
            async with gate:
                await connect()

        await asyncio.gather(*(bounded() for _ in range(args.sockets)))
        await asyncio.sleep(args.settle)
        gc.collect()
        after = tracemalloc.take_snapshot()
        report(before, after, len(clients) - 1, args.top)
        sys.stdout.flush()
        # Closing thousands of clients and the server cleanly takes longer than the
        # probe itself, and measures nothing: leave at once.
        os._exit(0)


def report(before: Any, after: Any, sockets: int, top: int) -> None:
    stats = after.compare_to(before, "traceback")
    server_side = []
    client_side = 0
    for stat in stats:
        frames = stat.traceback
        files = [f.filename for f in frames]
        if any(marker in name for name in files for marker in CLIENT_SIDE):
            client_side += stat.size_diff
            continue
        server_side.append(stat)
    total = sum(s.size_diff for s in server_side)
    per_socket, clients = total / sockets / 1024, client_side / sockets / 1024
    print(
        f"{sockets} idle sockets: server side {per_socket:.1f} KiB/socket "
        f"(Python allocations; client side left out: {clients:.1f} KiB)"
    )
    print(f"top {top} allocation sites (innermost frame, then its callers), bytes per socket:")
    for stat in sorted(server_side, key=lambda s: -s.size_diff)[:top]:
        # tracemalloc lists frames oldest first: show the allocating frame and two callers.
        frames = list(stat.traceback)[::-1]
        where = " <- ".join(f"{_short(f.filename)}:{f.lineno}" for f in frames[:3])
        first = frames[0]
        line = linecache.getline(first.filename, first.lineno).strip()[:70]
        print(f"  {stat.size_diff / sockets:8.0f}  {where}\n            {line}")


def _short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3", "/src/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--data-dir", default="/tmp/chatcore-idle-memory")
    parser.add_argument(
        "--ws", choices=WS_PROTOCOLS, default="lean", help="uvicorn's WebSocket protocol"
    )
    args = parser.parse_args()
    tracemalloc.start(6)
    asyncio.run(main(args))


if __name__ == "__main__":
    sys.exit(cli())
