"""What one socket send costs the server, counted so that other load barely moves it.

One sender and one receiver (real socket.io-client sockets, ``node/send_cost.mjs``)
send one message at a time to a chatcore server: each send waits for its ack and for
both ``newMessage`` deliveries (the receiver's and the sender's echo), so the server is
idle in between and the count covers everything a send costs it: reading the frame,
the payload checks, the service, the store, the JSON and both frames out, the ack.
After a warm-up, the server's cost of ``--sends`` sends is counted as:

* CPU time (default): the server's threads' on-CPU nanoseconds from
  ``/proc/<pid>/task/*/schedstat``, per send. A busy machine still inflates it
  somewhat (caches, frequency), far less than it moves throughput;
* instructions (``--callgrind``): the server runs under valgrind's callgrind with
  instrumentation off until the warm-up is over; instructions per send are the same
  from run to run to well under 1 %, whatever else the machine does. Slow (the
  server runs ~50x slower while counted): 500 sends by default.

Servers are ``chatcore-memory`` names as in ``python -m bench`` (``@<rev>`` runs that
revision's tree). Each body kind is measured per server and round, the servers
alternating within a round; the figures are medians over the rounds.

    python -m bench.send_cost --servers chatcore-memory@3d56393,chatcore-memory
    python -m bench.send_cost --servers chatcore-memory@3d56393,chatcore-memory \
        --callgrind --sends 500 --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

from bench.procs import Children, wait_quiet
from bench.runner import NODE_DIR, Server, ServerSpec, running

BODIES = {"plain": "hello there, see you at noon", "mention": "hi @{receiver}, see you at noon"}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.send_cost", description=__doc__.splitlines()[0]
    )
    p.add_argument("--servers", default="chatcore-memory@main,chatcore-memory")
    p.add_argument("--bodies", default="plain,mention", help=f"of {sorted(BODIES)}")
    p.add_argument("--sends", type=int, help="measured sends (default 5000; 500 with --callgrind)")
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--callgrind", action="store_true", help="count instructions (valgrind)")
    p.add_argument(
        "--keep", type=Path, help="with --callgrind: keep each dump here (for callgrind_annotate)"
    )
    return p.parse_args()


def thread_cpu_ns(pid: int) -> int:
    """On-CPU nanoseconds of every thread of ``pid`` so far."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):
            continue  # a thread that just ended
    return total


def callgrind_total(out: Path, keep: Path | None, name: str) -> int:
    """Instructions counted in callgrind's newest dump of ``out`` (``out.N`` files),
    copied to ``keep`` as ``<name>.callgrind`` if given."""
    dumps = sorted(out.parent.glob(out.name + "*"), key=lambda p: p.stat().st_mtime)
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(dumps[-1], keep / f"{name}.callgrind")
    for line in dumps[-1].read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dumps[-1]}")


async def callgrind_control(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "callgrind_control",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    if await proc.wait() != 0:
        raise RuntimeError(f"callgrind_control {' '.join(args)} failed")


async def receiver_username(server: Server, token: str, user_id: str) -> str:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get(
            f"/api/users/{user_id}", headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        name: str = response.json()["username"]
        return name


async def measure(
    spec: ServerSpec, kind: str, args: argparse.Namespace, children: Children, work: Path
) -> float:
    """Per send: CPU microseconds, or instructions with ``--callgrind``."""
    out = work / f"callgrind-{secrets.token_hex(4)}.out"
    wrap = (
        ("valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}")
        if args.callgrind
        else ()
    )
    async with running(spec, children, work, wrap=wrap) as server:
        pair = (await server.fixtures.pairs(1))[0]
        name = await receiver_username(server, pair.sender_token, pair.receiver_id)
        config = {
            "url": server.url,
            "senderToken": pair.sender_token,
            "receiverToken": pair.receiver_token,
            "conversationId": pair.conversation_id,
            "body": BODIES[kind].format(receiver=name),
            "warmup": args.warmup,
            "sends": args.sends,
            "maxSeconds": 1800,
        }
        path = work / f"send-cost-{secrets.token_hex(4)}.json"
        path.write_text(json.dumps(config))
        gen = await children.start(
            f"send-cost-{spec.name}",
            ["node", str(NODE_DIR / "send_cost.mjs"), str(path)],
            cwd=NODE_DIR,
            pipes=True,
        )
        pid = server.child.pid
        assert gen.proc.stdout is not None
        assert gen.proc.stdin is not None
        start = 0
        try:
            async for line in gen.proc.stdout:
                event = json.loads(line)["event"]
                if event == "ready":
                    if args.callgrind:
                        await callgrind_control("-z", str(pid))
                        await callgrind_control("-i", "on", str(pid))
                    else:
                        start = thread_cpu_ns(pid)
                elif event == "done":
                    if args.callgrind:
                        await callgrind_control("-i", "off", str(pid))
                        await callgrind_control("-d", str(pid))
                        return callgrind_total(out, args.keep, f"{spec.name}-{kind}") / args.sends
                    return (thread_cpu_ns(pid) - start) / args.sends / 1000
                elif event == "error":
                    raise RuntimeError(f"send_cost.mjs: {line!r}")
                gen.proc.stdin.write(b"go\n")
                await gen.proc.stdin.drain()
            raise RuntimeError(f"send_cost.mjs ended early:\n{gen.log_tail()}")
        finally:
            await children.stop(gen)


async def main_async(args: argparse.Namespace) -> None:
    specs = [ServerSpec.parse(name) for name in args.servers.split(",")]
    kinds = args.bodies.split(",")
    unit = "instructions" if args.callgrind else "CPU us"
    work = Path(tempfile.mkdtemp(prefix="chatcore-send-cost-"))
    children = Children(work)
    results: dict[tuple[str, str], list[float]] = {(s.name, k): [] for s in specs for k in kinds}
    others: list[float] = []
    try:
        for round_ in range(args.rounds):
            order = specs if round_ % 2 == 0 else list(reversed(specs))
            for spec in order:
                for kind in kinds:
                    others.append(await wait_quiet(within=2.0))
                    value = await measure(spec, kind, args, children, work)
                    results[(spec.name, kind)].append(value)
                    print(f"  .. round {round_ + 1} {spec.name} {kind}: {value:,.1f}", flush=True)
    finally:
        await children.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{unit} per send, median of {args.rounds} rounds of {args.sends} sequential sends")
    print(
        f"(others' CPU before each measurement: {min(others):.0f}-{max(others):.0f} % of a core;"
        f" load average at the end {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)"
    )
    first = specs[0].name
    for kind in kinds:
        print(f"  body {kind!r} ({BODIES[kind]!r}):")
        base = statistics.median(results[(first, kind)])
        for spec in specs:
            values = results[(spec.name, kind)]
            median = statistics.median(values)
            spread = f"min {min(values):,.1f}, max {max(values):,.1f}"
            print(f"    {spec.name:>28}: {median:12,.1f}  ({spread})  x{median / base:.3f}")


def main() -> None:
    args = parse_args()
    if args.sends is None:
        args.sends = 500 if args.callgrind else 5000
    if args.callgrind and shutil.which("callgrind_control") is None:
        sys.exit("--callgrind needs valgrind (callgrind_control not found)")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
