"""Scale-out delivery: one chatcore process vs two sharing Redis, 50 sender/receiver pairs.

Variants, each on fresh server processes (``bench.servers.chatcore_server``, the
real app on uvicorn) and a redis-server of this script's own:

* ``1proc``: one process, no Redis (the single-process deployment);
* ``1proc+redis``: one process with the Redis client manager (every emit is also
  published to Redis; what the manager costs by itself);
* ``2proc+redis``: senders connected to process A, receivers to process B: every
  message crosses Redis pub/sub (A publishes, B receives and delivers).

Each pair is two users with a direct conversation; every sender sends in a
closed loop (next message after the ack) for ``--seconds`` after a warm-up.
Figures: delivered ``newMessage``/s at the receivers while measuring, send ->
delivery latency p50/p99 (both clients live in this process: one clock), lost
(acked, never delivered within ``DRAIN_SECONDS`` after the load stops), errors
(failed or timed-out acks), the CPU of each process group (100% = one core) and
the chatcore processes' CPU per delivered message (steadier than the rate when
something else runs on the machine).

Storage: ``--storage memory`` (default) gives every process its own in-memory
storage, which isolates the fan-out cost: users register on A, and receivers
connect to B with A's tokens (same JWT secret; a socket needs no database
lookup to connect); A stores the message and B only delivers it. ``--storage
secantus`` puts every variant on one SecantusDB child (a fresh database each),
as a real deployment shares its database.

All processes run on 127.0.0.1 and share this machine's CPUs with the clients:
on a small machine the figures are a floor and the ratio is what to read.

    python -m bench.scaleout_delivery
    python -m bench.scaleout_delivery --storage secantus --pairs 20 --seconds 3

The whole run is bounded (``--budget``, default 85 s).
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

import socketio

from bench.procs import Child, Children, CpuMeter, free_port, wait_http, wait_tcp
from bench.realtime_delivery import Pair, Tally, make_pairs, percentile
from entrypoints.settings import rate_limits_off_env

REPO = Path(__file__).resolve().parent.parent
JWT_SECRET = "bench-scaleout-delivery-" + "s" * 40
VARIANTS = ("1proc", "1proc+redis", "2proc+redis")
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


async def start_servers(
    children: Children, variant: str, backing: Backing, work: Path
) -> list[tuple[Child, str]]:
    count = 2 if variant.startswith("2proc") else 1
    env = {
        "CHATCORE_JWT_SECRET": JWT_SECRET,
        "CHATCORE_LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")]),
        **rate_limits_off_env(),  # the benchmark sends bursts
    }
    if variant.endswith("+redis"):
        env["CHATCORE_REDIS_URL"] = backing.redis_url
        env["CHATCORE_REDIS_PREFIX"] = f"bench-{uuid.uuid4().hex[:8]}:"
    storage = "memory"
    if backing.mongodb_uri is not None:
        storage = "mongo"
        env["CHATCORE_MONGODB_URI"] = backing.mongodb_uri
        env["CHATCORE_MONGODB_DATABASE"] = f"bench_scaleout_{uuid.uuid4().hex[:8]}"
    servers = []
    for n in range(count):
        port = free_port()
        name = f"{variant}-{'AB'[n]}"
        data_dir = work / name
        data_dir.mkdir()
        child = await children.start(
            name,
            [
                *(sys.executable, "-m", "bench.servers.chatcore_server", "--port", str(port)),
                *("--storage", storage, "--cheap-passwords"),
            ],
            env={**env, "CHATCORE_DATA_DIR": str(data_dir)},
            cwd=REPO,
        )
        servers.append((child, f"http://127.0.0.1:{port}"))
    await asyncio.gather(*(wait_http(c, url + "/readyz", START_TIMEOUT) for c, url in servers))
    return servers


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

    @property
    def server_ms_per_message(self) -> float:
        """CPU of the chatcore processes (all of them) per delivered message, in ms:
        less sensitive than the rate to what else runs on the machine."""
        servers = sum(pct for name, pct in self.cpu.items() if name.startswith(self.variant))
        return servers / 100 / self.rate * 1000 if self.rate else float("nan")


async def run_variant(
    variant: str, args: argparse.Namespace, backing: Backing, children: Children, work: Path
) -> Result:
    servers = await start_servers(children, variant, backing, work)
    try:
        sender_url = servers[0][1]
        receiver_url = servers[-1][1]
        tally = Tally()
        pairs = await make_pairs(sender_url, args.pairs, tally, receiver_url=receiver_url)
        groups = {child.name: child.pid for child, _ in servers}
        if variant.endswith("+redis"):
            groups["redis"] = backing.groups["redis"]
        if "db" in backing.groups:
            groups["db"] = backing.groups["db"]
        groups["clients"] = os.getpgid(0)
        meter = CpuMeter(groups)
        try:
            stop_at = time.perf_counter() + WARMUP_SECONDS + args.seconds
            loops = asyncio.gather(*(_send_loop(p, tally, stop_at) for p in pairs))
            await asyncio.sleep(WARMUP_SECONDS)
            meter.start()
            tally.measuring = True
            measured_from = time.perf_counter()
            await asyncio.sleep(max(0.0, stop_at - measured_from))
            tally.measuring = False
            elapsed = time.perf_counter() - measured_from
            cpu = meter.stop()
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
    return Result(
        variant=variant,
        pairs=args.pairs,
        acked=tally.acked,
        delivered=tally.acked - len(tally.outstanding),
        lost=len(tally.outstanding),
        errors=tally.errors,
        rate=tally.delivered_while_measuring / elapsed,
        p50_ms=percentile(tally.latencies, 0.50) * 1000,
        p99_ms=percentile(tally.latencies, 0.99) * 1000,
        cpu=cpu,
    )


# -- report ---------------------------------------------------------------------------


def print_table(results: list[Result], storage: str) -> None:
    print(f"\nScale-out delivery ({storage} storage): closed-loop senders, WebSocket")
    header = (
        f"{'variant':<12} {'pairs':>5} {'acked':>7} {'deliv.':>7} {'lost':>4} {'err':>4} "
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
            f"{r.variant:<12} {r.pairs:>5} {r.acked:>7} {r.delivered:>7} {r.lost:>4} "
            f"{r.errors:>4} {r.rate:>9.0f} {r.p50_ms:>7.1f} {r.p99_ms:>7.1f} "
            f"{r.server_ms_per_message:>10.2f}  {cpu}"
        )
    by_name = {r.variant: r for r in results}
    two = by_name.get("2proc+redis")
    for base in ("1proc", "1proc+redis"):
        one = by_name.get(base)
        if one is not None and two is not None and one.rate > 0:
            cpu_ratio = two.server_ms_per_message / one.server_ms_per_message
            print(
                f"ratio 2proc+redis / {base}: delivered/s x{two.rate / one.rate:.2f}, "
                f"p50 x{two.p50_ms / one.p50_ms:.2f}, p99 x{two.p99_ms / one.p99_ms:.2f}, "
                f"server CPU per message x{cpu_ratio:.2f}"
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
                for variant in args.variants:
                    print(f"running {variant} ({args.pairs} pairs, {args.seconds:g} s) ...")
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
        help="comma-separated: " + ",".join(VARIANTS),
    )
    parser.add_argument("--budget", type=float, default=85.0, help="seconds for the whole run")
    return parser


def cli(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        _parser().error(f"unknown variants {sorted(unknown)}: choose from {', '.join(VARIANTS)}")
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main(args))
    return uvloop.run(main(args))


if __name__ == "__main__":
    sys.exit(cli())
