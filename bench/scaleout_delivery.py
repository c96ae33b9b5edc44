"""Scale-out delivery: one chatcore process vs several sharing Redis, 50 sender/receiver pairs.

Variants, each on fresh server processes (``bench.servers.chatcore_server``, the
real app on uvicorn) and a redis-server of this script's own. A name is
``<n>proc`` plus flags:

* ``1proc``: one process, no Redis (the single-process deployment);
* ``1proc+redis``: one process with the Redis client manager: every recipient
  is local, so this is what the manager costs by itself;
* ``2proc+redis``, ``3proc+redis``: senders and receivers spread evenly, i.e.
  every (sender process, receiver process) combination holds the same number of
  pairs: 1/n of the messages stay on their process, the rest cross Redis;
* ``+stock``: python-socketio's own managers instead of chatcore's (every emit
  published on one channel that every process receives and decodes, one Task
  per recipient socket): the before of issues 15 and 16, in the same run;
* ``+idle``: one more process that holds no socket at all (it should spend
  nothing on the traffic).

Each pair is two users with a direct conversation; every sender sends in a
closed loop (next message after the ack) for ``--seconds`` after a warm-up.
Figures: delivered ``newMessage``/s at the receivers while measuring, send ->
delivery latency p50/p99 (both clients live in this process: one clock), lost
(acked, never delivered within ``DRAIN_SECONDS`` after the load stops), errors
(failed or timed-out acks), the CPU of each process (100% = one core), the
chatcore processes' CPU per delivered message (steadier than the rate when
something else runs on the machine) and, per process, the messages it received
from Redis per second (read from each process's ``/metrics``).

Storage: ``--storage memory`` (default) gives every process its own in-memory
storage, which isolates the fan-out cost: a pair's users register on its
sender's process, and the receiver connects to its own process with that
process's token (same JWT secret; a socket needs no database lookup to
connect); the sender's process stores the message, the receiver's only
delivers it. ``--storage secantus`` puts every variant on one SecantusDB child
(a fresh database each), as a real deployment shares its database.

All processes run on 127.0.0.1 and share this machine's CPUs with the clients:
on a small machine the figures are a floor and the ratio is what to read.

    python -m bench.scaleout_delivery
    python -m bench.scaleout_delivery --variants 1proc,2proc+redis --pairs 20 --seconds 3

The whole run is bounded (``--budget``, default 200 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import socketio

from bench.procs import Child, Children, CpuMeter, free_port, wait_http, wait_tcp
from bench.realtime_delivery import Pair, Tally, make_pairs, percentile
from entrypoints.settings import rate_limits_off_env

REPO = Path(__file__).resolve().parent.parent
JWT_SECRET = "bench-scaleout-delivery-" + "s" * 40
VARIANTS = (
    "1proc",
    "1proc+redis",
    "1proc+redis+stock",
    "2proc+redis",
    "2proc+redis+stock",
    "3proc+redis",
    "2proc+redis+idle",
)
FLAGS = ("redis", "stock", "idle")
# Redis messages a process received: routed ones (each carrying one or more emits) and
# python-socketio's broadcast ones (one emit each).
BROKER_METRICS = {
    "routed": "chatcore_broker_routed_messages_received",
    "broadcast": "chatcore_broker_broadcast_received",
}
WARMUP_SECONDS = 1.0
DRAIN_SECONDS = 5.0
ACK_TIMEOUT = 10.0
START_TIMEOUT = 60.0


# -- processes ------------------------------------------------------------------------


@dataclass
class Backing:
    """What the servers of every variant share: a redis-server and maybe a SecantusDB."""

    redis_url: str
    mongodb_uri: str | None
    groups: dict[str, int] = field(default_factory=dict)  # name -> process group, for CPU


async def start_backing(children: Children, storage: str, work: Path) -> Backing:
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise SystemExit("redis-server is not installed")
    redis_port = free_port()
    redis = await children.start(
        "redis",
        [
            *(redis_server, "--port", str(redis_port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(work)),
        ],
    )
    await wait_tcp(redis, redis_port, START_TIMEOUT)
    backing = Backing(f"redis://127.0.0.1:{redis_port}/0", None, {"redis": redis.pid})
    if storage == "secantus":
        executable = Path(sys.executable).with_name("secantusd-py")
        if not executable.exists():
            raise SystemExit("secantusd-py not found: install the 'embedded' extra")
        db_port = free_port()
        database = await children.start(
            "secantus",
            [
                *(str(executable), "--host", "127.0.0.1", "--port", str(db_port)),
                *("--storage-path", str(work / "db"), "--log-level", "WARNING"),
            ],
        )
        await wait_tcp(database, db_port, START_TIMEOUT)
        backing.mongodb_uri = f"mongodb://127.0.0.1:{db_port}/?directConnection=true"
        backing.groups["db"] = database.pid
    return backing


@dataclass(frozen=True)
class Variant:
    name: str
    processes: int  # processes holding sockets
    redis: bool
    stock: bool  # python-socketio's own managers
    idle: bool  # one more process, holding no socket

    @classmethod
    def parse(cls, name: str) -> Variant:
        head, *flags = name.split("+")
        if not head.endswith("proc") or not head[:-4].isdigit() or set(flags) - set(FLAGS):
            raise ValueError(f"bad variant {name!r}: <n>proc[+redis][+stock][+idle]")
        n = int(head[:-4])
        redis = "redis" in flags
        if n < 1 or ((n > 1 or "idle" in flags or "stock" in flags) and not redis):
            raise ValueError(f"{name}: several processes (or +stock, +idle) need +redis")
        return cls(name, n, redis, "stock" in flags, "idle" in flags)


async def start_servers(
    children: Children, variant: Variant, backing: Backing, work: Path
) -> list[tuple[Child, str]]:
    count = variant.processes + variant.idle
    env = {
        "CHATCORE_JWT_SECRET": JWT_SECRET,
        "CHATCORE_LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")]),
        **rate_limits_off_env(),  # the benchmark sends bursts
    }
    if variant.redis:
        env["CHATCORE_REDIS_URL"] = backing.redis_url
        env["CHATCORE_REDIS_PREFIX"] = f"bench-{uuid.uuid4().hex[:8]}:"
    storage = "memory"
    if backing.mongodb_uri is not None:
        storage = "mongo"
        env["CHATCORE_MONGODB_URI"] = backing.mongodb_uri
        env["CHATCORE_MONGODB_DATABASE"] = f"bench_scaleout_{uuid.uuid4().hex[:8]}"
    stock = ["--stock-fanout", "--stock-redis"] if variant.stock else []
    servers = []
    for n in range(count):
        port = free_port()
        name = f"{variant.name}-{'ABCDEFGH'[n]}"
        data_dir = work / name
        data_dir.mkdir()
        child = await children.start(
            name,
            [
                *(sys.executable, "-m", "bench.servers.chatcore_server", "--port", str(port)),
                *("--storage", storage, "--cheap-passwords", *stock),
            ],
            env={**env, "CHATCORE_DATA_DIR": str(data_dir)},
            cwd=REPO,
        )
        servers.append((child, f"http://127.0.0.1:{port}"))
    await asyncio.gather(*(wait_http(c, url + "/readyz", START_TIMEOUT) for c, url in servers))
    return servers


async def spread_pairs(urls: Sequence[str], count: int, tally: Tally) -> list[Pair]:
    """``count`` pairs, as many for every (sender process, receiver process) combination
    as can be; each pair's users live on its sender's process."""
    combos = [(s, r) for s in urls for r in urls]
    pairs: list[Pair] = []
    for k, (sender_url, receiver_url) in enumerate(combos):
        share = count // len(combos) + (k < count % len(combos))
        if share:
            pairs += await make_pairs(
                sender_url, share, tally, receiver_url=receiver_url, first_index=len(pairs)
            )
    return pairs


async def broker_counts(urls: Sequence[str]) -> list[dict[str, float]]:
    """Per process: messages received from Redis so far, by kind (0 without Redis)."""
    counts = []
    async with httpx.AsyncClient(timeout=10.0) as http:
        for url in urls:
            text = (await http.get(url + "/metrics")).text
            values = dict.fromkeys(BROKER_METRICS, 0.0)
            for line in text.splitlines():
                for kind, metric in BROKER_METRICS.items():
                    if line.startswith(metric + " "):
                        values[kind] = float(line.split()[1])
            counts.append(values)
    return counts


# -- the load -------------------------------------------------------------------------


async def _send_loop(pair: Pair, tally: Tally, stop_at: float) -> None:
    n = 0
    while time.perf_counter() < stop_at:
        key = f"{pair.index}-{n}"
        n += 1
        tally.sent_at[key] = time.perf_counter()
        payload = {"conversationId": pair.conversation_id, "body": f"m {key}", "clientMsgId": key}
        try:
            ack = await pair.sender.call("sendMessage", payload, timeout=ACK_TIMEOUT)
        except socketio.exceptions.TimeoutError:
            tally.errors += 1
            continue
        if not (isinstance(ack, dict) and ack.get("ok")):
            tally.errors += 1
            continue
        tally.on_ack(key)


@dataclass
class Result:
    variant: str
    pairs: int
    acked: int
    delivered: int
    lost: int
    errors: int
    rate: float
    p50_ms: float
    p99_ms: float
    cpu: dict[str, float]
    # Per server process (A, B, ...): messages received from Redis per second.
    received_per_sec: dict[str, float] = field(default_factory=dict)

    def servers(self) -> dict[str, float]:
        """CPU % of each chatcore process, by its letter."""
        prefix = self.variant + "-"
        return {n.removeprefix(prefix): p for n, p in self.cpu.items() if n.startswith(prefix)}

    @property
    def server_ms_per_message(self) -> float:
        """CPU of the chatcore processes (all of them) per delivered message, in ms:
        less sensitive than the rate to what else runs on the machine."""
        servers = sum(self.servers().values())
        return servers / 100 / self.rate * 1000 if self.rate else float("nan")


async def run_variant(
    variant: Variant, args: argparse.Namespace, backing: Backing, children: Children, work: Path
) -> Result:
    servers = await start_servers(children, variant, backing, work)
    try:
        urls = [url for _, url in servers]
        tally = Tally()
        pairs = await spread_pairs(urls[: variant.processes], args.pairs, tally)
        groups = {child.name: child.pid for child, _ in servers}
        if variant.redis:
            groups["redis"] = backing.groups["redis"]
        if "db" in backing.groups:
            groups["db"] = backing.groups["db"]
        groups["clients"] = os.getpgid(0)
        meter = CpuMeter(groups)
        try:
            stop_at = time.perf_counter() + WARMUP_SECONDS + args.seconds
            loops = asyncio.gather(*(_send_loop(p, tally, stop_at) for p in pairs))
            await asyncio.sleep(WARMUP_SECONDS)
            received_before = await broker_counts(urls)
            meter.start()
            tally.measuring = True
            measured_from = time.perf_counter()
            await asyncio.sleep(max(0.0, stop_at - measured_from))
            tally.measuring = False
            elapsed = time.perf_counter() - measured_from
            cpu = meter.stop()
            received_after = await broker_counts(urls)
            await loops
            tally.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tally.drained.wait(), DRAIN_SECONDS)
        finally:
            await asyncio.gather(
                *(c.disconnect() for p in pairs for c in (p.sender, p.receiver)),
                return_exceptions=True,
            )
    finally:
        for child, _ in servers:
            await children.stop(child)
    received = {
        "ABCDEFGH"[n]: sum(after.values()) - sum(before.values())
        for n, (before, after) in enumerate(zip(received_before, received_after, strict=True))
    }
    return Result(
        variant=variant.name,
        pairs=args.pairs,
        acked=tally.acked,
        delivered=tally.acked - len(tally.outstanding),
        lost=len(tally.outstanding),
        errors=tally.errors,
        rate=tally.delivered_while_measuring / elapsed,
        p50_ms=percentile(tally.latencies, 0.50) * 1000,
        p99_ms=percentile(tally.latencies, 0.99) * 1000,
        cpu=cpu,
        received_per_sec={k: v / elapsed for k, v in received.items()},
    )


# -- report ---------------------------------------------------------------------------


def print_table(results: list[Result], storage: str) -> None:
    print(f"\nScale-out delivery ({storage} storage): closed-loop senders, WebSocket")
    header = (
        f"{'variant':<18} {'pairs':>5} {'acked':>7} {'deliv.':>7} {'lost':>4} {'err':>4} "
        f"{'deliv./s':>9} {'p50 ms':>7} {'p99 ms':>7} {'srv ms/msg':>10}  CPU % of one core"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        cpu = ", ".join(
            f"{name.removeprefix(r.variant + '-')} {pct:.0f}"
            for name, pct in r.cpu.items()
            if name != "steal" or pct >= 1
        )
        print(
            f"{r.variant:<18} {r.pairs:>5} {r.acked:>7} {r.delivered:>7} {r.lost:>4} "
            f"{r.errors:>4} {r.rate:>9.0f} {r.p50_ms:>7.1f} {r.p99_ms:>7.1f} "
            f"{r.server_ms_per_message:>10.3f}  {cpu}"
        )
    print("\nper process: CPU % of one core, messages received from Redis per second")
    for r in results:
        cpu = r.servers()
        rows = ", ".join(
            f"{name}: CPU {cpu.get(name, 0):.0f}%, Redis in {rate:.0f}/s"
            for name, rate in r.received_per_sec.items()
        )
        print(f"  {r.variant:<18} {rows}")
    by_name = {r.variant: r for r in results}
    for base in ("1proc", "1proc+redis"):
        one = by_name.get(base)
        if one is None or one.rate <= 0:
            continue
        for r in results:
            if r is one or r.variant == "1proc":
                continue
            cpu_ratio = r.server_ms_per_message / one.server_ms_per_message
            print(
                f"ratio {r.variant} / {base}: delivered/s x{r.rate / one.rate:.2f}, "
                f"p99 x{r.p99_ms / one.p99_ms:.2f}, server CPU per message x{cpu_ratio:.2f}"
            )
    print(f"({os.cpu_count()} CPUs shared by the clients, the servers, Redis and any database)")


async def main(args: argparse.Namespace) -> int:
    for key in [k for k in os.environ if k.startswith("CHATCORE_")]:
        del os.environ[key]  # the variants set what they use, nothing leaks in
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp:
        work = Path(tmp)
        children = Children(work)
        try:
            async with asyncio.timeout(args.budget):
                backing = await start_backing(children, args.storage, work)
                for name in args.variants:
                    print(f"running {name} ({args.pairs} pairs, {args.seconds:g} s) ...")
                    variant = Variant.parse(name)
                    results.append(await run_variant(variant, args, backing, children, work))
        except TimeoutError:
            print(f"stopped: over the {args.budget:g} s budget", file=sys.stderr)
            print_table(results, args.storage)
            return 1
        finally:
            await children.stop_all()
    print_table(results, args.storage)
    return 1 if any(r.lost or r.errors for r in results) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=6.0, help="measured time per variant")
    parser.add_argument("--storage", choices=["memory", "secantus"], default="memory")
    parser.add_argument(
        "--variants",
        type=lambda s: [v for v in s.split(",") if v],
        default=list(VARIANTS),
        help="comma-separated <n>proc[+redis][+stock][+idle]; default " + ",".join(VARIANTS),
    )
    parser.add_argument("--budget", type=float, default=200.0, help="seconds for the whole run")
    return parser


def cli(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for name in args.variants:
        try:
            Variant.parse(name)
        except ValueError as exc:
            _parser().error(str(exc))
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main(args))
    return uvloop.run(main(args))


if __name__ == "__main__":
    sys.exit(cli())
