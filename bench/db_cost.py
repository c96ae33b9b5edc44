"""What one stored message, one history page and one lone send cost SecantusDB's CPU.

Run: ``python -m bench.db_cost [--seconds 8] [--rounds 2]`` with the tree to measure on
``PYTHONPATH`` (``PYTHONPATH=<tree>/src``: run it once per tree, alternated, to compare
trees on one machine). It starts SecantusDB with durable commits (``--sync-on-commit``)
as a child process and measures, from ``/proc/<pid>/stat``, the database process's CPU
time divided by the work done in each phase:

- 50 concurrent senders, each into its own direct conversation, closed loop (the
  harness's delivery scenario without the sockets): database CPU per stored message;
- one sender at a time (lone sends: what an HTTP send costs at low concurrency);
- history pages of 50 through the repository (membership check + range).

``--floor`` measures instead what each part of a send batch costs (the ``_id``-only
floor of a stored message, each index's share, the conversation write, the commit):
:mod:`bench.db_floor`.

``--idle-conversations N`` adds N other conversations first (what a collection scan
of ``conversations`` would have to read).

Figures are per unit of work, so they hold on a loaded machine better than rates do;
the rates are printed too, with the load average, and are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from adapters.mongo import MongoStore
from bench import db_floor
from bench.mongo_store import _concurrent_rate, secantus_server
from bench.procs import child_pid, cpu_seconds
from chatcore.testing import factories as make

SENDERS = 50
PAGE = 50
BODY = "hello world"  # the harness's bodies are two words


async def _measure(
    pid: int, seconds: float, tasks: int, operation: Callable[[int], Awaitable[object]]
) -> tuple[float, float]:
    """(operations/s, database CPU microseconds per operation), ``tasks`` in a loop."""
    cpu, start = cpu_seconds(pid), time.perf_counter()
    rate = await _concurrent_rate(seconds, tasks, operation)
    done = rate * (time.perf_counter() - start)
    return rate, (cpu_seconds(pid) - cpu) / done * 1e6


async def run(uri: str, pid: int, seconds: float, rounds: int, idle: int) -> None:
    async with MongoStore(uri, database="bench") as store:
        storage = store.storage
        for i in range(idle):  # other users' conversations: what a scan would read
            await storage.conversations.create(make.direct(f"idle{i}", f"other{i}"))
        pairs = []
        for i in range(SENDERS):
            conversation = make.direct(f"s{i}", f"r{i}")
            await storage.conversations.create(conversation)
            pairs.append(conversation)
        keys = iter(range(10**9))

        async def send(t: int) -> None:
            new = make.message(pairs[t].id, f"s{t}", BODY, f"k{next(keys)}")
            await storage.messages.append(new)

        async def page(_: int) -> None:
            # What the service's history request does: membership, then the range.
            conversation = await storage.conversations.get_for_member(pairs[0].id, "s0")
            last = conversation.last_seq if conversation else 1
            first = random.randint(1, max(1, last - PAGE + 1))
            await storage.messages.range(pairs[0].id, first, first + PAGE - 1)

        await _measure(pid, 1.0, SENDERS, send)  # warm up
        for n in range(1, rounds + 1):
            load = os.getloadavg()[0]
            rate, cpu = await _measure(pid, seconds, SENDERS, send)
            print(f"round {n} (load average {load:.1f})")
            print(f"  {SENDERS} senders, closed loop  {rate:8.0f} msg/s   db {cpu:7.0f} us/msg")
            rate, cpu = await _measure(pid, seconds / 2, 1, send)
            print(f"  lone sends                 {rate:8.0f} msg/s   db {cpu:7.0f} us/msg")
            rate, cpu = await _measure(pid, seconds / 2, 1, page)
            print(f"  history pages of {PAGE}        {rate:8.0f} pages/s db {cpu:7.0f} us/page")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each timed phase")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--idle-conversations", type=int, default=0, help="more conversations in the database"
    )
    parser.add_argument(
        "--floor", action="store_true", help="the floor per message instead (bench.db_floor)"
    )
    if "--floor" in sys.argv[1:]:  # its own options: python -m bench.db_floor --help
        db_floor.main([a for a in sys.argv[1:] if a != "--floor"])
        return
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as root,
        secantus_server(Path(root) / "db", "--sync-on-commit") as uri,
    ):
        pid = child_pid("secantusd")
        asyncio.run(run(uri, pid, args.seconds, args.rounds, args.idle_conversations))


if __name__ == "__main__":
    main()
