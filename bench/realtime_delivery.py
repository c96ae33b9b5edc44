"""Real-time delivery: sender/receiver pairs over real sockets against a separate server process.

Each pair is two users with a direct conversation, each connected with a
python-socketio client over WebSocket. Every sender sends in a closed loop
(``--window`` messages in flight, each waiting for its ack) for ``--seconds``
after a short warm-up. The figures:

* delivered/s: ``newMessage`` events the receivers got per second, measured
  only while everyone is sending;
* latency: from just before the sender's emit to the receiver's ``newMessage``
  (both clients live in this process, so one clock), p50 and p99;
* lost: messages acknowledged as stored but never delivered to the receiver
  (waited for up to ``DRAIN_SECONDS`` after the load stops); errors: failed or
  timed-out acks;
* CPU: of the server process, the database process and this process (all the
  clients) while measuring; 100% is one core. The clients share the machine:
  when they use a whole core, they, not the server, are the limit, and the
  figures are a floor for the server.

The server is the real app (``create_app``) on uvicorn in its own process,
started by this script in its hidden ``serve`` mode: with the in-memory storage
kit (``memory``) or on the embedded SecantusDB (``secantus``), started as
``chatcore serve`` starts it. Passwords are hashed with argon2's cheapest
parameters there, so that registering the users does not dominate the run.

    python -m bench.realtime_delivery                      # both variants, 50 pairs
    python -m bench.realtime_delivery --storage memory --pairs 10 --seconds 3

The whole run is bounded (``--budget``, default 85 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import socketio

from bench.procs import cpu_seconds
from entrypoints.settings import rate_limits_off_env

REPO = Path(__file__).resolve().parent.parent
JWT_SECRET = "bench-realtime-delivery-" + "s" * 40
PASSWORD = "bench-password"
STORAGES = ("memory", "secantus")
WARMUP_SECONDS = 1.0
DRAIN_SECONDS = 5.0
ACK_TIMEOUT = 10.0
START_TIMEOUT = 60.0


# -- the server process (hidden `serve` mode) -------------------------------------------


def serve(port: int, storage: str) -> None:
    """Run the real app on uvicorn (as ``chatcore serve`` does, minus the embedded DB)."""
    import argon2
    import uvicorn
    from dependency_injector import providers

    from adapters.passwords import Argon2PasswordHasher
    from chatcore.testing import in_memory_storage
    from entrypoints.app import create_app
    from entrypoints.container import Container
    from entrypoints.settings import Settings

    settings = Settings(host="127.0.0.1", port=port)
    if storage == "memory":
        settings = settings.model_copy(update={"mongodb_uri": None})
    elif settings.mongodb_uri is None:
        raise SystemExit("serve --storage mongo needs CHATCORE_MONGODB_URI")
    container = Container(settings=settings)
    if storage == "memory":
        container.storage.override(providers.Object(in_memory_storage()))
    container.passwords.override(providers.Object(Argon2PasswordHasher(argon2.profiles.CHEAPEST)))
    uvicorn.run(
        create_app(settings, container=container),
        host="127.0.0.1",
        port=port,
        loop="auto",
        http="auto",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


# -- processes ------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (0 if unknown or gone)."""
    if pid is None:
        return 0.0
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


@contextlib.asynccontextmanager
async def embedded_database(data_dir: Path) -> AsyncIterator[tuple[str, int | None]]:
    """SecantusDB as ``chatcore serve`` starts it: (URI, pid)."""
    from entrypoints.embedded_db import EmbeddedDatabase

    database = EmbeddedDatabase(data_dir)
    try:
        uri = await asyncio.to_thread(database.start, timeout=START_TIMEOUT)
        yield uri, database.pid
    finally:
        await asyncio.to_thread(database.stop)


@contextlib.asynccontextmanager
async def server_process(
    storage: str, data_dir: Path, mongodb_uri: str | None
) -> AsyncIterator[tuple[str, int]]:
    """The server in its own process (group): (base URL, pid); always stopped."""
    port = _free_port()
    env = {
        **os.environ,
        "CHATCORE_JWT_SECRET": JWT_SECRET,
        "CHATCORE_DATA_DIR": str(data_dir),
        "CHATCORE_LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(
            [str(REPO), str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        **rate_limits_off_env(),  # the benchmark sends bursts
    }
    env.pop("CHATCORE_MONGODB_URI", None)
    if mongodb_uri is not None:
        env["CHATCORE_MONGODB_URI"] = mongodb_uri
        env["CHATCORE_MONGODB_DATABASE"] = "bench_realtime"
    log_path = data_dir / "server.log"
    mode = "memory" if mongodb_uri is None else "mongo"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bench.realtime_delivery", "serve"),
            *("--port", str(port), "--storage", mode),
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(url, process, log_path)
        yield url, process.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


def _tail(log: Path, chars: int = 2000) -> str:
    return log.read_text(errors="replace")[-chars:]


async def _wait_ready(url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient(base_url=url, timeout=1.0) as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"the server exited:\n{_tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the server did not start in {START_TIMEOUT:.0f} s:\n{_tail(log)}")


# -- the load -------------------------------------------------------------------------


@dataclass
class Pair:
    index: int
    conversation_id: str
    sender: socketio.AsyncClient
    receiver: socketio.AsyncClient


@dataclass
class Tally:
    """What happened, shared by every pair (one event loop: no locks needed)."""

    measuring: bool = False
    sent_at: dict[str, float] = field(default_factory=dict)
    acked: int = 0
    delivered: set[str] = field(default_factory=set)
    # Acked and not yet delivered; once the load stops, ``drained`` is set when empty.
    outstanding: set[str] = field(default_factory=set)
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: bool = False
    latencies: list[float] = field(default_factory=list)
    ack_latencies: list[float] = field(default_factory=list)
    delivered_while_measuring: int = 0
    errors: int = 0

    def on_delivery(self, message: dict[str, Any]) -> None:
        now = time.perf_counter()
        key = message.get("clientMsgId")
        sent = self.sent_at.get(key) if isinstance(key, str) else None
        if sent is None or key in self.delivered:
            return
        self.delivered.add(key)
        self.outstanding.discard(key)
        if self.measuring:
            self.delivered_while_measuring += 1
            self.latencies.append(now - sent)
        if self.stopped and not self.outstanding:
            self.drained.set()

    def on_ack(self, key: str) -> None:
        self.acked += 1
        if key not in self.delivered:
            self.outstanding.add(key)

    def stop(self) -> None:
        self.stopped = True
        if not self.outstanding:
            self.drained.set()


async def register_user(http: httpx.AsyncClient, name: str) -> tuple[str, str]:
    response = await http.post("/api/auth/register", json={"username": name, "password": PASSWORD})
    response.raise_for_status()
    body = response.json()
    return body["user"]["id"], body["accessToken"]


async def bounded(limit: int, coroutines: Sequence[Any]) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def run(coroutine: Any) -> Any:
        async with gate:
            return await coroutine

    return await asyncio.gather(*(run(c) for c in coroutines))


async def connect_client(url: str, token: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return client


async def make_pairs(
    url: str, count: int, tally: Tally, receiver_url: str | None = None, first_index: int = 0
) -> list[Pair]:
    """Register 2 x ``count`` users, open their direct conversations, connect them
    (the receivers to ``receiver_url`` when given: another process of a cluster).
    Pairs are numbered from ``first_index`` (several calls may share one tally)."""
    receiver_url = receiver_url or url
    run = os.urandom(3).hex()
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
        users = await bounded(
            8, [register_user(http, f"b{run}{side}{n}") for n in range(count) for side in "sr"]
        )
        senders, receivers = users[0::2], users[1::2]

        async def open_direct(n: int) -> str:
            response = await http.post(
                f"/api/conversations/direct/{receivers[n][0]}",
                headers={"Authorization": f"Bearer {senders[n][1]}"},
            )
            response.raise_for_status()
            conversation_id: str = response.json()["id"]
            return conversation_id

        conversations = await bounded(8, [open_direct(n) for n in range(count)])
    sockets = await bounded(
        10,
        [
            connect_client(where, token)
            for n in range(count)
            for where, token in ((url, senders[n][1]), (receiver_url, receivers[n][1]))
        ],
    )
    pairs = []
    for n in range(count):
        pair = Pair(first_index + n, conversations[n], sockets[2 * n], sockets[2 * n + 1])
        pair.receiver.on("newMessage", tally.on_delivery)
        pairs.append(pair)
    return pairs


async def _send_loop(pair: Pair, lane: int, tally: Tally, stop_at: float) -> None:
    n = 0
    while time.perf_counter() < stop_at:
        key = f"{pair.index}-{lane}-{n}"
        n += 1
        tally.sent_at[key] = started = time.perf_counter()
        try:
            ack = await pair.sender.call(
                "sendMessage",
                {
                    "conversationId": pair.conversation_id,
                    "body": f"message {key}",
                    "clientMsgId": key,
                },
                timeout=ACK_TIMEOUT,
            )
        except socketio.exceptions.TimeoutError:
            tally.errors += 1
            continue
        if not (isinstance(ack, dict) and ack.get("ok")):
            tally.errors += 1
            continue
        tally.on_ack(key)
        if tally.measuring:
            tally.ack_latencies.append(time.perf_counter() - started)


@dataclass
class Result:
    storage: str
    pairs: int
    seconds: float
    acked: int
    delivered: int
    lost: int
    errors: int
    rate: float
    p50_ms: float
    p99_ms: float
    ack_p50_ms: float
    server_cpu: float
    db_cpu: float | None
    client_cpu: float


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]


async def run_variant(storage: str, pairs: int, seconds: float, window: int) -> Result:
    with tempfile.TemporaryDirectory(prefix=f"bench-{storage}-") as tmp:
        data_dir = Path(tmp)
        async with contextlib.AsyncExitStack() as stack:
            mongodb_uri: str | None = None
            db_pid: int | None = None
            if storage == "secantus":
                mongodb_uri, db_pid = await stack.enter_async_context(
                    embedded_database(data_dir / "embedded")
                )
            url, server_pid = await stack.enter_async_context(
                server_process(storage, data_dir, mongodb_uri)
            )
            tally = Tally()
            everyone = await make_pairs(url, pairs, tally)
            try:
                start = time.perf_counter()
                stop_at = start + WARMUP_SECONDS + seconds
                loops = asyncio.gather(
                    *(
                        _send_loop(p, lane, tally, stop_at)
                        for p in everyone
                        for lane in range(window)
                    )
                )
                await asyncio.sleep(WARMUP_SECONDS)
                cpu = (_cpu_seconds(server_pid), _cpu_seconds(db_pid), _cpu_seconds(os.getpid()))
                tally.measuring = True
                measured_from = time.perf_counter()
                await asyncio.sleep(max(0.0, stop_at - measured_from))
                tally.measuring = False
                elapsed = time.perf_counter() - measured_from
                server_cpu = (_cpu_seconds(server_pid) - cpu[0]) / elapsed
                db_cpu = (_cpu_seconds(db_pid) - cpu[1]) / elapsed
                client_cpu = (_cpu_seconds(os.getpid()) - cpu[2]) / elapsed
                await loops
                tally.stop()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tally.drained.wait(), DRAIN_SECONDS)
            finally:
                await asyncio.gather(
                    *(c.disconnect() for p in everyone for c in (p.sender, p.receiver)),
                    return_exceptions=True,
                )
    return Result(
        storage=storage,
        pairs=pairs,
        seconds=elapsed,
        acked=tally.acked,
        delivered=tally.acked - len(tally.outstanding),
        lost=len(tally.outstanding),
        errors=tally.errors,
        rate=tally.delivered_while_measuring / elapsed,
        p50_ms=percentile(tally.latencies, 0.50) * 1000,
        p99_ms=percentile(tally.latencies, 0.99) * 1000,
        ack_p50_ms=percentile(tally.ack_latencies, 0.50) * 1000,
        server_cpu=server_cpu,
        db_cpu=db_cpu if db_pid is not None else None,
        client_cpu=client_cpu,
    )


def print_table(results: list[Result], window: int) -> None:
    print(f"\nReal-time delivery: closed-loop senders, {window} in flight each, WebSocket")
    header = (
        f"{'storage':<9} {'pairs':>5} {'acked':>7} {'deliv.':>7} {'lost':>4} {'err':>4} "
        f"{'deliv./s':>9} {'p50 ms':>7} {'p99 ms':>7} {'ack p50':>7} {'srv CPU':>7} {'db CPU':>6} "
        f"{'clients CPU':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        db = f"{r.db_cpu:.0%}" if r.db_cpu is not None else "-"
        print(
            f"{r.storage:<9} {r.pairs:>5} {r.acked:>7} {r.delivered:>7} {r.lost:>4} "
            f"{r.errors:>4} {r.rate:>9.0f} {r.p50_ms:>7.1f} {r.p99_ms:>7.1f} "
            f"{r.ack_p50_ms:>7.1f} {r.server_cpu:>7.0%} {db:>6} {r.client_cpu:>11.0%}"
        )
    print(f"({os.cpu_count()} CPUs; clients, server and database share them)")


async def main(args: argparse.Namespace) -> int:
    results = []
    try:
        async with asyncio.timeout(args.budget):
            for storage in args.storage:
                print(f"running {storage} ({args.pairs} pairs, {args.seconds:g} s) ...", flush=True)
                results.append(await run_variant(storage, args.pairs, args.seconds, args.window))
    except TimeoutError:
        print(f"stopped: over the {args.budget:g} s budget", file=sys.stderr)
        print_table(results, args.window)
        return 1
    print_table(results, args.window)
    return 1 if any(r.lost or r.errors for r in results) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per variant")
    parser.add_argument("--window", type=int, default=1, help="messages in flight per sender")
    parser.add_argument(
        "--storage",
        type=lambda s: [v for v in s.split(",") if v],
        default=list(STORAGES),
        help="comma-separated: memory,secantus",
    )
    parser.add_argument("--budget", type=float, default=85.0, help="seconds for the whole run")
    commands = parser.add_subparsers(dest="command")
    serve_cmd = commands.add_parser("serve", help=argparse.SUPPRESS)
    serve_cmd.add_argument("--port", type=int, required=True)
    serve_cmd.add_argument("--storage", choices=["memory", "mongo"], required=True)
    return parser


def cli(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        serve(args.port, args.storage)
        return 0
    unknown = set(args.storage) - set(STORAGES)
    if unknown:
        _parser().error(f"unknown storage {sorted(unknown)}: choose from {', '.join(STORAGES)}")
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main(args))
    return uvloop.run(main(args))


if __name__ == "__main__":
    sys.exit(cli())
