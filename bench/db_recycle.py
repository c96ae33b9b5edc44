"""The embedded database recycled at its RSS limit under sends, for bench/RESULTS.md (issue 13).

    .venv/bin/python -m bench.db_recycle [--limit 72M] [--senders 4] [--seconds 240]

Starts ``chatcore serve`` on a fresh data directory with
``CHATCORE_EMBEDDED_MAX_RSS=--limit`` (rate limits off), sends messages over HTTP
from ``--senders`` loops until the supervisor has restarted the database once
and 200 more sends were acknowledged (or ``--seconds`` passed), then prints:
the database's RSS when it was recycled and just after, how long requests got
503 (the longest gap between two 201s; /readyz's 503 stretch), the sends'
outcomes, and whether every acknowledged message is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from bench.procs import Children, free_port, rss_mib, wait_http

PASSWORD = "correct horse battery staple"


def _database_pids(log: str) -> list[int]:
    found = re.findall(r"embedded database (?:ready on port \d+|is back) \(pid (\d+)\)", log)
    return [int(pid) for pid in found]


def _rss_mib(pid: int) -> float | None:
    try:
        return rss_mib(pid)
    except (OSError, RuntimeError):  # gone (being recycled)
        return None


class _LogTail:
    """The database pids named in a growing log, read a little at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.pids: list[int] = []

    def database_pids(self) -> list[int]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            new = f.read()
        # Up to the last complete line only.
        complete = new[: new.rfind(b"\n") + 1]
        self.offset += len(complete)
        self.pids += _database_pids(complete.decode(errors="replace"))
        return self.pids

    def text(self) -> str:
        return self.path.read_text(errors="replace")


async def _register(http: httpx.AsyncClient, name: str) -> tuple[str, dict[str, str]]:
    answer = await http.post("/api/auth/register", json={"username": name, "password": PASSWORD})
    answer.raise_for_status()
    body = answer.json()
    return body["user"]["id"], {"Authorization": f"Bearer {body['accessToken']}"}


async def _probe(url: str, tail: _LogTail, args: argparse.Namespace) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
        _, alice = await _register(http, "alice")
        bob_id, _ = await _register(http, "bob")
        answer = await http.post(f"/api/conversations/direct/{bob_id}", headers=alice)
        conversation = answer.json()["id"]
        acked: dict[str, int] = {}
        outcomes: Counter[int | str] = Counter()
        oks: list[float] = []
        not_ready: list[float] = []
        rss_seen: dict[int, float] = {}  # pid -> largest RSS seen
        done = asyncio.Event()
        recycled_at: list[float] = []
        wanted = [0]  # acknowledged sends to reach after the restart

        async def send(name: str) -> None:
            for n in itertools.count(1):
                if done.is_set():
                    return
                msg_id = f"{name}-{n}"
                try:
                    answer = await http.post(
                        f"/api/conversations/{conversation}/messages",
                        json={"body": msg_id, "clientMsgId": msg_id},
                        headers=alice,
                    )
                except httpx.TransportError:
                    outcomes["transport"] += 1
                    await asyncio.sleep(0.05)
                    continue
                outcomes[answer.status_code] += 1
                if answer.status_code == 201:
                    acked[msg_id] = answer.json()["seq"]
                    oks.append(time.monotonic())

        async def watch() -> None:
            deadline = time.monotonic() + args.seconds
            async with httpx.AsyncClient(base_url=url, timeout=10.0) as probe:
                while time.monotonic() < deadline:
                    pids = tail.database_pids()
                    rss = _rss_mib(pids[-1])
                    if rss is not None:
                        rss_seen[pids[-1]] = max(rss_seen.get(pids[-1], 0.0), rss)
                    if (await probe.get("/readyz")).status_code != 200:
                        not_ready.append(time.monotonic())
                    if len(pids) > 1 and not recycled_at:
                        recycled_at.append(time.monotonic())
                        wanted[0] = len(acked) + 200
                    if recycled_at and len(acked) >= wanted[0]:
                        break
                    await asyncio.sleep(0.1)
            done.set()

        started = time.monotonic()
        await asyncio.gather(watch(), *(send(f"s{i}") for i in range(args.senders)))
        elapsed = time.monotonic() - started
        stored: dict[str, int] = {}
        after = 0
        while True:
            page = await http.get(
                f"/api/conversations/{conversation}/messages",
                params={"after": after, "limit": 100},
                headers=alice,
            )
            page.raise_for_status()
            for m in page.json()["messages"]:
                stored[m["clientMsgId"]] = m["seq"]
                after = m["seq"]
            if not page.json()["hasMore"]:
                break

    log = tail.text()
    over = re.findall(r"uses ([\d.]+) MiB, over its limit of ([\d.]+) MiB", log)
    back = re.findall(r"restarted for its memory in ([\d.]+) s", log)
    gap = max((b - a for a, b in itertools.pairwise(oks)), default=0.0)
    ready_gap = (not_ready[-1] - not_ready[0]) if not_ready else 0.0
    print(
        f"limit {args.limit}, {args.senders} senders, {elapsed:.0f} s: database pids "
        f"{_database_pids(log)}; recycled at {over[0][0] if over else '-'} MiB (log), "
        f"largest RSS seen per pid (MiB) { ({p: round(r) for p, r in rss_seen.items()}) }; "
        f"restarted in {back[0] if back else '-'} s (log); "
        f"longest gap between two 201s {gap:.2f} s; /readyz not 200 for {ready_gap:.2f} s "
        f"({len(not_ready)} polls); sends {dict(outcomes)}; acknowledged {len(acked)}, "
        f"all stored with their seq: {acked.items() <= stored.items()}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )


async def _run(args: argparse.Namespace) -> None:
    root, port = Path(tempfile.mkdtemp(prefix="chatcore-recycle-")), free_port()
    env = {
        "CHATCORE_EMBEDDED_MAX_RSS": args.limit,
        "CHATCORE_RATE_SEND": "off",
        "CHATCORE_RATE_API": "off",
        "CHATCORE_LOG_LEVEL": "INFO",  # the database's pids are in INFO lines
    }
    chatcore = str(Path(sys.executable).with_name("chatcore"))
    url = f"http://127.0.0.1:{port}"
    children = Children(root)
    try:
        server = await children.start(
            "serve",
            [chatcore, "serve", "--port", str(port), "--data-dir", str(root / "data")],
            env=env,
        )
        await wait_http(server, f"{url}/readyz", within=90)
        await _probe(url, _LogTail(server.log), args)
    finally:
        await children.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", default="72M")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=240.0)
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()
