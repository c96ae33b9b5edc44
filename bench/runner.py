"""The servers under test and the Node load generator, each started as a separate process.

A server name is a base name plus optional ``+flags``: ``chatcore-memory``, ``chatcore-
secantus``, ``bare-python``, ``bare-node``; ``+plain`` (asyncio + h11 instead of uvloop
+ httptools) and ``+deflate`` (WebSocket per-message deflate) apply to the Python ones,
e.g. ``chatcore-memory+plain``; ``+limits`` (chatcore only) checks every rate limit on
every action (otherwise they are off); ``+nofreeze`` (chatcore only) skips
``gc.freeze()`` after start-up and ``+gcdefault`` puts CPython's collector thresholds
back (chatcore serve's are wider); ``+stockfanout`` (chatcore only) puts python-
socketio's own fan-out back (one Task per recipient socket) for a before/after
comparison in one run; ``+wsproto`` serves WebSockets with uvicorn's wsproto protocol,
``+sansio`` with uvicorn's sans-I/O ``websockets`` one (the bare server's default),
``+lean`` with chatcore's subclass of it (chatcore's default), ``+granian`` serves with
granian (Rust, ASGI) instead of uvicorn (both: the Python servers); ``+standalone``
starts SecantusDB as a standalone server (no replica set, so chatcore's MongoDB adapter
runs without transactions); ``+durable`` starts it with ``--sync-on-commit`` (an
acknowledged write survives a crash of the database).

A chatcore server name may end in ``@<git revision>`` (``chatcore-secantus@main``):
that revision's ``src`` and ``bench`` are extracted (``git archive``) and the server
runs from them, with the same virtualenv, so "before" and "after" run side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from bench.fixtures import Fixtures
from bench.procs import Child, Children, CpuMeter, free_port, wait_http, wait_quiet, wait_tcp

REPO = Path(__file__).resolve().parent.parent
NODE_DIR = REPO / "bench" / "node"
BASES = ("chatcore-memory", "chatcore-secantus", "bare-python", "bare-node")
FLAGS = {
    "plain": "--plain",
    "deflate": "--ws-deflate",
    "limits": "--limits",
    "stockfanout": "--stock-fanout",
    "nofreeze": "--no-gc-freeze",
    "gcdefault": "--gc-threshold=700,10,10",
    "wsproto": "--ws=wsproto",
    "sansio": "--ws=websockets-sansio",
    "lean": "--ws=lean",
    "granian": "--granian",
}
CHATCORE_ONLY = ("limits", "stockfanout", "nofreeze", "gcdefault")
DB_FLAGS = {"standalone": "--standalone", "durable": "--sync-on-commit"}
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class ServerSpec:
    name: str
    base: str
    flags: tuple[str, ...] = ()
    db_flags: tuple[str, ...] = ()
    rev: str | None = None

    @classmethod
    def parse(cls, name: str) -> ServerSpec:
        plain, _, rev = name.partition("@")
        base, *mods = plain.split("+")
        if base not in BASES or any(m not in FLAGS and m not in DB_FLAGS for m in mods):
            known = sorted([*FLAGS, *DB_FLAGS])
            raise ValueError(f"unknown server {name!r}: bases {BASES}, flags {known}")
        if mods and base == "bare-node":
            raise ValueError(f"{name}: +flags apply to the Python servers only")
        if not base.startswith("chatcore") and any(m in CHATCORE_ONLY for m in mods):
            raise ValueError(f"{name}: +limits/+stockfanout apply to the chatcore servers only")
        if base != "chatcore-secantus" and any(m in DB_FLAGS for m in mods):
            raise ValueError(f"{name}: +standalone/+durable apply to chatcore-secantus only")
        if rev and not base.startswith("chatcore"):
            raise ValueError(f"{name}: @revision applies to chatcore servers only")
        flags = tuple(FLAGS[m] for m in mods if m in FLAGS)
        db_flags = tuple(DB_FLAGS[m] for m in mods if m in DB_FLAGS)
        return cls(name, base, flags, db_flags, rev or None)

    @property
    def chatcore(self) -> bool:
        return self.base.startswith("chatcore")


@dataclass
class Server:
    spec: ServerSpec
    url: str
    child: Child
    db: Child | None
    db_uri: str | None = None
    fixtures: Fixtures = field(init=False)
    _probe: AsyncMongoClient[dict[str, Any]] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.fixtures = Fixtures(self.url, chatcore=self.spec.chatcore)

    def cpu_groups(self) -> dict[str, int]:
        groups = {"server": self.child.pid}
        if self.db is not None:
            groups["db"] = self.db.pid
        return groups

    async def db_requests(self) -> int | None:
        """Requests the database has received so far (``serverStatus``), if there is one.

        Through one client kept open (see :meth:`close`): its own requests are this
        call's and a monitoring ``hello`` about every 10 s."""
        if self.db_uri is None:
            return None
        if self._probe is None:
            self._probe = AsyncMongoClient(self.db_uri)
        status = await self._probe.admin.command("serverStatus")
        return int(status["network"]["numRequests"])

    async def close(self) -> None:
        if self._probe is not None:
            await self._probe.close()

    def check_alive(self) -> None:
        for child in (self.child, self.db):
            if child is not None and not child.alive():
                raise RuntimeError(f"{child.name} died:\n{child.log_tail()}")


@contextlib.asynccontextmanager
async def running(
    spec: ServerSpec, children: Children, work: Path, *, wrap: Sequence[str] = ()
) -> AsyncIterator[Server]:
    """Start ``spec`` (and its database) on free loopback ports; stop both afterwards.

    ``wrap`` goes before the server's command line (e.g. valgrind and its options)."""
    port = free_port()
    home = work / f"{spec.name}-{secrets.token_hex(3)}"
    home.mkdir(parents=True)
    env = {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    if spec.rev:
        tree = _tree_at(spec.rev, work)
        # Before the editable install's path entry: that revision's code wins.
        env["PYTHONPATH"] = f"{tree / 'src'}:{tree}"
    db: Child | None = None
    uri: str | None = None
    server: Child | None = None
    try:
        if spec.base == "bare-node":
            argv = ["node", str(NODE_DIR / "bare_server.mjs"), str(port)]
        elif spec.base == "bare-python":
            argv = [sys.executable, "-m", "bench.bare_socketio_server", "--port", str(port)]
        else:
            argv = [sys.executable, "-m", "bench.servers.chatcore_server", "--port", str(port)]
            argv.append("--cheap-passwords")  # registration is setup, not measured
            env |= {
                "CHATCORE_DATA_DIR": str(home),
                "CHATCORE_JWT_SECRET": secrets.token_urlsafe(32),
                "CHATCORE_ACCESS_TOKEN_TTL_SECONDS": "7200",
            }
            if spec.base == "chatcore-secantus":
                db, uri = await _start_secantus(spec, children, home)
                env["CHATCORE_MONGODB_URI"] = uri
                argv += ["--storage", "mongo"]
            else:
                argv += ["--storage", "memory"]
        # cwd is the server's own directory: no stray .env from the work tree is read.
        server = await children.start(spec.name, [*wrap, *argv, *spec.flags], env=env, cwd=home)
        url = f"http://127.0.0.1:{port}"
        await wait_http(server, f"{url}/healthz", START_TIMEOUT)
        running_server = Server(spec, url, server, db, uri)
        try:
            yield running_server
        finally:
            await running_server.close()
    finally:
        for child in (server, db):
            if child is not None:
                await children.stop(child)


# Revision -> commit, resolved once per run: a branch that moves during the run
# (main, while others merge) is measured at the same commit in every scenario.
_COMMITS: dict[str, str] = {}


def _tree_at(rev: str, work: Path) -> Path:
    """``src`` and ``bench`` of git revision ``rev`` of this repository, extracted once."""
    if rev not in _COMMITS:
        _COMMITS[rev] = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--verify", f"{rev}^{{commit}}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    commit = _COMMITS[rev]
    tree = work / f"tree-{commit[:12]}"
    if not tree.exists():
        tree.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", commit, "src", "bench"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        print(f"  .. {rev} is {commit[:12]}, extracted to {tree}", flush=True)
    return tree


async def _start_secantus(spec: ServerSpec, children: Children, home: Path) -> tuple[Child, str]:
    port = free_port()
    argv = [
        str(Path(sys.executable).with_name("secantusd-py")),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--storage-path", str(home / "db"), "--log-level", "WARNING"),
        *spec.db_flags,
    ]
    db = await children.start(f"{spec.name}-db", argv, cwd=home)
    await wait_tcp(db, port, START_TIMEOUT)
    return db, f"mongodb://127.0.0.1:{port}/?directConnection=true"


@dataclass
class LoadResult:
    result: dict[str, Any]
    cpu: dict[str, dict[str, float]]  # phase name -> {"server"|"db"|"gen": CPU%}
    seconds: float
    db_requests: dict[str, int] = field(default_factory=dict)  # phase name -> requests


async def run_loadgen(
    children: Children,
    server: Server,
    config: dict[str, Any],
    *,
    within: float,
    on_wait: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    on_mark: Callable[[str], Awaitable[None]] | None = None,
    quiet: float = 3.0,
) -> LoadResult:
    """Run ``loadgen.mjs`` against ``server`` and sample CPU% of every process per phase.

    It first waits (up to ``quiet`` seconds) for the machine to be quiet.
    """
    busy = await wait_quiet(within=quiet)
    if busy >= 30:
        print(f"  .. note: others keep the machine busy ({busy:.0f}% of a core)", flush=True)
    path = server.child.log.parent / f"loadgen-{secrets.token_hex(4)}.json"
    path.write_text(json.dumps({**config, "maxSeconds": within, "orchestrated": True}))
    gen = await children.start(
        f"loadgen-{server.spec.name}",
        ["node", str(NODE_DIR / "loadgen.mjs"), str(path)],
        cwd=NODE_DIR,
        pipes=True,
    )
    meters: dict[str, CpuMeter] = {}
    cpu: dict[str, dict[str, float]] = {}
    requests: dict[str, int] = {}
    started = time.monotonic()

    async def follow() -> dict[str, Any]:
        assert gen.proc.stdout is not None
        assert gen.proc.stdin is not None
        async for line in gen.proc.stdout:
            event = json.loads(line)
            kind = event["event"]
            if kind == "mark":
                phase, _, edge = event["name"].rpartition(":")
                if edge == "start":
                    if (count := await server.db_requests()) is not None:
                        requests[phase] = count
                    meters[phase] = CpuMeter({**server.cpu_groups(), "gen": gen.pid})
                    meters[phase].start()
                else:
                    cpu[phase] = meters[phase].stop()
                    end = await server.db_requests()
                    if end is not None and phase in requests:
                        # Less the end probe's own request (the start probe's is in both).
                        requests[phase] = end - requests[phase] - 1
                if on_mark is not None:
                    await on_mark(event["name"])
            elif kind == "wait" and on_wait is not None:
                await on_wait(event)
            if kind in ("mark", "wait"):
                gen.proc.stdin.write(b"go\n")
                await gen.proc.stdin.drain()
            elif kind == "result":
                return dict(event)
            elif kind == "error":
                raise RuntimeError(f"load generator failed: {event['message']}")
        raise RuntimeError(f"load generator exited without a result:\n{gen.log_tail()}")

    try:
        result = await asyncio.wait_for(follow(), within + 10)
        server.check_alive()
        return LoadResult(result, cpu, time.monotonic() - started, requests)
    finally:
        await children.stop(gen)
