"""Profile a server's hot path under the delivery load with py-spy, and summarise the samples.

Needs py-spy, which is not a project dependency: ``.venv/bin/pip install py-spy``.
The server and the load generator run exactly as in `make bench`; py-spy samples
the server process during the measured phase (busy samples only: time the event
loop spends waiting in epoll is not counted). The summary attributes each sample
to the innermost frame of a known layer (validation, storage, JSON, emit, ...),
and also counts the samples that pass through each layer (inclusive time).

Run: ``python -m bench.profile [--server chatcore-memory] [--seconds 20] [--rate 600]``
(``--rate``: open loop at that offered rate instead of the closed loop), or
``--http history|send`` to profile an HTTP request instead.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.procs import Children
from bench.runner import Server, ServerSpec, run_loadgen, running

# (layer, pattern on py-spy's "function (path/file.py:line)"), checked from the innermost
# frame outwards. The event loop's own C code (uvloop: callbacks, socket reads and
# writes) shows up as its Python caller, the loop runner.
LAYERS = [
    ("ws deflate", r"permessage_deflate|\(zlib"),
    ("logging", r"\(logging/"),
    ("metrics", r"prometheus_client|\(entrypoints/metrics"),
    ("JSON", r"orjson|socketio_json|\(json/"),
    ("wire mapping (message_json, iso)", r"\(adapters/wire"),
    ("validation", r"socketio/payloads|\(chatcore/limits|pydantic|http/validation"),
    ("storage", r"\(chatcore/testing/memory|\(adapters/mongo|\(pymongo/|\(bson/"),
    ("chatcore domain", r"\(chatcore/"),
    ("chatcore socket edge", r"\(entrypoints/socket_|socketio_notifier"),
    ("socket.io (packets, rooms, emit)", r"\(socketio/"),
    ("engine.io", r"\(engineio/"),
    ("websockets protocol", r"\(websockets/|uvicorn/protocols/websockets"),
    ("uvicorn/starlette http", r"\(uvicorn/|\(starlette/|httptools|\(h11/"),
    ("event loop + socket I/O", r"\(asyncio/|uvloop"),
]
# Always at the root of the stack, so "inclusive" says nothing for them.
ROOT_LAYERS = {"uvicorn/starlette http", "event loop + socket I/O"}
# Idle worker threads (the password hasher's pool) waiting for work: not busy time.
IDLE_LEAF = re.compile(r"_worker \(concurrent/futures/thread\.py")
COMPILED = [(name, re.compile(pattern)) for name, pattern in LAYERS]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    p.add_argument("--server", default="chatcore-memory")
    p.add_argument("--seconds", type=float, default=20.0, help="sampled seconds")
    p.add_argument("--rate", type=int, help="open loop at this msg/s (default: closed loop)")
    p.add_argument(
        "--http",
        choices=["history", "send"],
        help="profile this HTTP request (4 keep-alive connections) instead of delivery",
    )
    p.add_argument("--pairs", type=int, default=50)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--out", type=Path, help="keep the raw collapsed stacks here")
    return p.parse_args()


async def profile(args: argparse.Namespace, children: Children, work: Path) -> Path:
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy")
    raw = args.out or work / "profile.txt"
    spec = ServerSpec.parse(args.server)
    async with running(spec, children, work) as server:
        sampling: list[Any] = []
        target = f"{args.http}:start" if args.http else None

        async def on_mark(name: str) -> None:
            wanted = name == target if target else not name.startswith("warmup")
            if name.endswith(":start") and wanted and not sampling:
                argv = [py_spy, "record", "--pid", str(server.child.pid), "--rate", "200"]
                argv += ["--duration", str(int(args.seconds)), "--format", "raw", "-o", str(raw)]
                sampling.append(await children.start("py-spy", argv))

        if args.http:
            config = await http_config(server, args.seconds)
        else:
            config = await delivery_config(server, args)
        out = await run_loadgen(
            children, server, config, within=90 + 3 * args.seconds, on_mark=on_mark
        )
        await asyncio.wait_for(sampling[0].proc.wait(), 30)
        for phase in out.result["phases"]:
            name = phase["name"]
            if args.http and name != args.http:
                continue
            rate = phase.get("deliveredPerSec", phase.get("requestsPerSec"))
            p99 = phase.get("deliveryMs", phase.get("latencyMs"))["p99"]
            cpu = out.cpu[name].get("server")
            print(f"{args.server} under {name}: {rate}/s, server CPU {cpu}%, p99 {p99} ms")
            break
    return raw


async def delivery_config(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "mode": "delivery",
        "url": server.url,
        "pairs": [p.loadgen() for p in await server.fixtures.pairs(args.pairs)],
        "includeReceiverId": not server.spec.chatcore,
        "bodyBytes": 100,
        "ackTimeoutMs": 10_000,
        "drainMs": 5_000,
        "warmupSeconds": 2,
        # A little longer than the sampling, so py-spy never sees the load stop.
        "closedSeconds": 0 if args.rate else args.seconds + 3,
        "openRates": [args.rate] if args.rate else [],
        "openSeconds": args.seconds + 3,
    }


async def http_config(server: Server, seconds: float) -> dict[str, Any]:
    pairs = await server.fixtures.pairs(4)
    await server.fixtures.seed_history(pairs[0], 120)
    return {
        "mode": "http",
        "baseUrl": server.url,
        "workers": [{"token": p.sender_token, "conversationId": p.conversation_id} for p in pairs],
        "concurrency": 4,
        "seconds": seconds + 3,
        "warmupSeconds": 2,
        "bodyBytes": 100,
        "history": {
            "path": f"/api/conversations/{pairs[0].conversation_id}/messages?limit=50",
            "token": pairs[0].sender_token,
        },
    }


def layer_of(frame: str) -> str | None:
    for name, pattern in COMPILED:
        if pattern.search(frame):
            return name
    return None


def summarise(raw: Path, top: int) -> str:
    self_layer: collections.Counter[str] = collections.Counter()
    incl_layer: collections.Counter[str] = collections.Counter()
    self_fn: collections.Counter[str] = collections.Counter()
    incl_fn: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")  # outermost first
        if IDLE_LEAF.search(frames[-1]):
            idle += count
            continue
        total += count
        layers = [layer_of(f) for f in frames]
        innermost = next((n for n in reversed(layers) if n), "other")
        self_layer[innermost] += count
        self_fn[frames[-1]] += count
        for name in set(layers) - {None} - ROOT_LAYERS:
            incl_layer[str(name)] += count
        for fn in set(frames):
            incl_fn[fn] += count

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    out = [f"{total} busy samples ({idle} of idle worker threads left out)"]
    out += ["", "self time by layer (innermost known frame)"]
    out += [f"  {pct(n)}  {name}" for name, n in self_layer.most_common()]
    out += ["", "inclusive time by layer (samples passing through it)"]
    out += [f"  {pct(n)}  {name}" for name, n in incl_layer.most_common()]
    out += ["", f"top {top} frames by self time"]
    out += [f"  {pct(n)}  {fn}" for fn, n in self_fn.most_common(top)]
    out += ["", f"top {top} frames by inclusive time"]
    out += [f"  {pct(n)}  {fn}" for fn, n in incl_fn.most_common(top)]
    return "\n".join(out)


def main() -> int:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="chatcore-profile-"))
    children = Children(work)

    async def run() -> Path:
        try:
            return await profile(args, children, work)
        finally:
            await children.stop_all()

    try:
        raw = asyncio.run(run())
    finally:
        children.kill_all_now()
    print(summarise(raw, args.top))
    if args.out is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
