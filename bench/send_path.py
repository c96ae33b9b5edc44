"""CPU per send on the domain's hot path, this tree against a git revision, side by side.

``MessageService.send`` on the in-memory kit plus the wire JSON of the message (what
every socket and HTTP send does besides the transport), timed as process CPU time
(``time.process_time``), so that other load on a shared machine changes it far less
than wall-clock figures. Each round runs one child process per tree (alternating which
goes first); the figures are the medians over the rounds. The revision's ``src`` is
extracted as for the ``@<rev>`` servers of :mod:`bench.runner`.

    python -m bench.send_path --baseline main [--sends 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.runner import REPO, _tree_at

BODIES = ("hello there, see you at noon", "hi @bob, see you at noon")


async def _measure(sends: int, body: str) -> float:
    """Microseconds of process CPU per send + message_json, after a warm-up."""
    from adapters.wire import message_json
    from chatcore.testing import in_memory_chat

    kit = in_memory_chat()
    alice = (await kit.chat.auth.register("alice", "password1")).user
    bob = (await kit.chat.auth.register("bob", "password1")).user
    dm = await kit.chat.conversations.open_direct(alice.id, bob.id)
    send, cid = kit.chat.messages.send, dm.conversation.id
    for _ in range(2000):
        message_json((await send(alice.id, cid, body)).message)
    kit.notifier.clear()
    start = time.process_time()
    for _ in range(sends):
        message_json((await send(alice.id, cid, body)).message)
        if len(kit.notifier.events) > 1000:
            kit.notifier.clear()
    return (time.process_time() - start) / sends * 1e6


def _child(src: str | None, sends: int) -> dict[str, float]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join([src, str(REPO)])
    out = subprocess.run(
        [sys.executable, "-m", "bench.send_path", "--child", "--sends", str(sends)],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default="main", help="git revision to compare with (main)")
    p.add_argument("--sends", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps({body: asyncio.run(_measure(args.sends, body)) for body in BODIES}))
        return
    work = Path(tempfile.mkdtemp(prefix="chatcore-send-path-"))
    trees = {"baseline": str(_tree_at(args.baseline, work) / "src"), "this tree": None}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    try:
        for round_ in range(args.rounds):
            order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for name in order:
                runs[name].append(_child(trees[name], args.sends))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"CPU us per send + message_json, median of {args.rounds} rounds of {args.sends}")
    print(f"(load average at the end: {load:.2f} on {os.cpu_count()} CPUs)")
    for body in BODIES:
        medians = {name: statistics.median(r[body] for r in runs[name]) for name in trees}
        ratio = medians["this tree"] / medians["baseline"]
        spread = {
            name: (min(r[body] for r in runs[name]), max(r[body] for r in runs[name]))
            for name in trees
        }
        print(f"  body {body!r}:")
        for name in trees:
            low, high = spread[name]
            print(f"    {name:>9}: {medians[name]:7.2f} us  (min {low:.2f}, max {high:.2f})")
        print(f"    ratio this/baseline: {ratio:.3f}")


if __name__ == "__main__":
    main()
