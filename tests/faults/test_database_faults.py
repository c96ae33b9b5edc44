"""The embedded database killed, stalled and restarted under a load of sends.

What the fault probes of issue 13 did, kept in the suite: SIGKILL of the
database child mid-load (every acknowledged message is there after the
automatic restart; /readyz is 503 meanwhile, /healthz stays 200), and
SIGSTOP/SIGCONT for longer than CHATCORE_MONGODB_TIMEOUT_MS (no send or read
waits longer than the timeout plus faultkit's margins for its answer; sends to the
conversation that had a send in flight work again within one timeout of
SIGCONT). No send may get a 500 in either. The database recycled for its
memory (CHATCORE_EMBEDDED_MAX_RSS) under the same load: nothing acknowledged lost.
And a full disk (a tmpfs of its own, filled): 503s, the child restarted, sends
working again by themselves once space is freed.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from faultkit import (
    MARGIN,
    SERVER_MARGIN,
    TIMEOUT,
    Scene,
    fault_server,
    scene,
    slowest_logged,
)
from small_disk import SmallDisk, unavailable_reason

from support.serve import alive
from support.waiting import wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses signals and /proc"),
]


async def _poll_probes(url: str, until: asyncio.Event) -> tuple[set[int], set[int]]:
    """The status codes /readyz and /healthz answered, polled until ``until`` is set."""
    ready: set[int] = set()
    healthy: set[int] = set()
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as probe:
        while not until.is_set():
            ready.add((await probe.get("/readyz")).status_code)
            healthy.add((await probe.get("/healthz")).status_code)
            await asyncio.sleep(0.02)
    return ready, healthy


async def test_sigkill_of_the_database_mid_load_loses_no_acknowledged_message(
    tmp_path: Path,
) -> None:
    async with scene(tmp_path) as chat:
        server, first_database = chat.server, chat.server.database_pid()
        load = chat.load()
        async with load.running():
            await load.wait_acked(30)
            restarted = asyncio.Event()
            probes = asyncio.create_task(_poll_probes(server.url, restarted))
            os.kill(first_database, signal.SIGKILL)
            # The supervisor restarts it.
            await wait_until(lambda: server.database_pid() != first_database, within=60)
            await load.wait_acked(30)  # and sends work again, by themselves
            restarted.set()
            ready, healthy = await probes
        stored = await chat.stored()

    assert load.acked.items() <= stored.items()  # every acknowledged send, same seq
    assert sorted(stored.values()) == list(range(1, len(stored) + 1))  # no gap
    assert set(load.outcomes) <= {201, 503}, load.outcomes  # never a 500
    assert 503 in ready, "readyz never said the database was down"
    assert healthy == {200}  # process alive, by design
    print(
        f"\nSIGKILL under load: {load.outcomes}, slowest answer {load.slowest:.2f} s, "
        f"database pids {server.database_pids()}"
    )


async def test_a_stall_longer_than_the_timeout_ends_when_the_database_resumes(
    tmp_path: Path,
) -> None:
    async with scene(tmp_path) as chat:
        database = chat.server.database_pid()
        load, reads = chat.load(), chat.reads()
        async with load.running(), reads.running():
            await load.wait_acked(30)
            os.kill(database, signal.SIGSTOP)  # sends are in flight on this conversation
            stalled_at = time.monotonic()
            try:
                await asyncio.sleep(3 * TIMEOUT)  # the stall itself
            finally:
                os.kill(database, signal.SIGCONT)
            resumed_at = time.monotonic()
            during_stall = {o for t, o in load.answers if stalled_at + TIMEOUT < t < resumed_at}
            await asyncio.sleep(TIMEOUT)
            checked_at = time.monotonic()
            await load.wait_acked(10)  # sends to the same conversation work
        stored = await chat.stored()
        # Not the set-up's registrations: their password hashing is outside the bound.
        server_slowest = slowest_logged(chat.logged_since_setup())

    after = [o for t, o in load.answers if t > checked_at]
    first_ok = min(t for t, o in load.answers if o == 201 and t > resumed_at)
    assert during_stall == {503}, during_stall
    assert after, "no send after the check point"
    assert set(after) == {201}, after  # one timeout after SIGCONT: all fine
    assert set(load.outcomes) <= {201, 503}, load.outcomes
    assert set(reads.outcomes) <= {200, 503}, reads.outcomes
    assert 503 in reads.outcomes  # they did meet the stall
    assert load.acked.items() <= stored.items()
    assert sorted(stored.values()) == list(range(1, len(stored) + 1))
    print(
        f"\nSIGSTOP {resumed_at - stalled_at:.1f} s: first 201 {first_ok - resumed_at:.2f} s "
        f"after SIGCONT; slowest answer {load.slowest:.3f} s (sends), "
        f"{reads.slowest:.3f} s (reads), {server_slowest:.3f} s (server's request log); "
        f"timeout {TIMEOUT:.1f} s + margin {SERVER_MARGIN} s (server), {MARGIN} s (client); "
        f"{load.outcomes}; reads {reads.outcomes}"
    )
    # No request waits longer than CHATCORE_MONGODB_TIMEOUT_MS, but for the margins.
    assert server_slowest <= TIMEOUT + SERVER_MARGIN
    assert load.slowest <= TIMEOUT + MARGIN
    assert reads.slowest <= TIMEOUT + MARGIN


async def test_the_database_over_its_memory_limit_is_restarted_and_loses_nothing(
    tmp_path: Path,
) -> None:
    # The scene is set up on a first server; a second one on the same data directory
    # has a limit (1 MiB) below any database's size, so its supervisor recycles the
    # child at its first check (2 s), under load; the child it starts instead is over
    # the limit at once, so it turns recycling off: one restart, then sends stay fine.
    async with scene(tmp_path) as first:
        alice, bob, conversation_id = first.alice, first.bob, first.conversation_id
        assert first.server.stop(signal.SIGTERM) == 0
    server = fault_server(tmp_path, "limited", CHATCORE_EMBEDDED_MAX_RSS="1M")
    try:
        server.wait_healthy()
        first_database = server.database_pid()
        async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
            chat = Scene(server, http, alice, bob, conversation_id, len(server.log))
            load = chat.load()
            async with load.running():
                restarted = asyncio.Event()
                probes = asyncio.create_task(_poll_probes(server.url, restarted))
                await wait_until(lambda: len(server.database_pids()) > 1, within=60)
                recycled_at = time.monotonic()
                await load.wait_acked(30)  # sends work again, by themselves
                restarted.set()
                ready, healthy = await probes
            stored = await chat.stored()
        log = server.log
    finally:
        server.kill()

    [old_rss] = re.findall(r"uses ([\d.]+) MiB, over its limit", log)
    [new_rss] = re.findall(r"uses ([\d.]+) MiB just after a restart", log)
    [took] = re.findall(r"restarted for its memory in ([\d.]+) s", log)
    assert server.database_pids()[0] == first_database
    assert not alive(first_database)
    assert load.acked.items() <= stored.items()  # every acknowledged send, same seq
    assert sorted(stored.values()) == list(range(1, len(stored) + 1))  # no gap
    assert set(load.outcomes) <= {201, 503}, load.outcomes  # never a 500
    assert 503 in ready, "readyz never said the database was down"
    assert healthy == {200}
    assert len(server.database_pids()) == 2, "recycled more than once"
    # The outage: the longest stretch without a 201 around the restart.
    oks = [t for t, o in load.answers if o == 201]
    outage = max((b - a for a, b in itertools.pairwise(oks)), default=0.0)
    print(
        f"\nrecycled at {old_rss} MiB (limit 1 MiB), {new_rss} MiB after, in {took} s; longest gap "
        f"between two 201s {outage:.2f} s; {load.outcomes}; "
        f"first 201 after the restart {min(t for t in oks if t > recycled_at) - recycled_at:.2f} s "
        f"after it was back"
    )


async def test_a_full_disk_is_503_and_ends_when_space_is_freed(tmp_path: Path) -> None:
    # The data directory on a 64 MiB disk of its own, filled under a load of large
    # sends: the database's storage engine panics (SecantusDB then answers every
    # storage command with InternalError, but ping), so the sends and reads that
    # meet it get 503, /readyz says 503, and the supervisor restarts the child,
    # again with its back-off while the disk stays full. Once the space is freed,
    # sends work again by themselves, and every acknowledged one is stored.
    reason = unavailable_reason(tmp_path / "probe")
    if reason is not None:
        pytest.skip(reason)
    disk = SmallDisk(tmp_path / "data", "64m")
    async with scene(tmp_path, wrap=disk.wrap) as chat:
        server_pid = chat.server.pid
        load, reads = chat.load(body_chars=4000), chat.reads()
        async with load.running(senders=4), reads.running():
            await load.wait_acked(20)
            done = asyncio.Event()
            probes = asyncio.create_task(_poll_probes(chat.server.url, done))
            ballast = disk.fill(server_pid)
            full_at = time.monotonic()
            # The storage fails once the database needs a block it cannot have.
            await wait_until(lambda: load.outcomes[503] >= 20, within=120)
            failed_at = time.monotonic()
            await wait_until(lambda: "its storage has failed" in chat.server.log, within=60)
            restarted_at = time.monotonic()  # killed, and started again
            # A start fails while the disk is full (the server stays up, and tries again).
            await wait_until(lambda: bool(_failed_start(chat.server.log)), within=60)
            acked_while_full = len(load.acked)
            disk.empty(server_pid)
            freed_at = time.monotonic()
            await load.wait_acked(20, within=90)  # sends work again, by themselves
            back_at = min(t for t, o in load.answers if o == 201 and t > freed_at)
            done.set()
            ready, healthy = await probes
        stored = await chat.stored()
        log = chat.logged_since_setup()

    assert load.acked.items() <= stored.items()  # every acknowledged send, same seq
    assert sorted(stored.values()) == list(range(1, len(stored) + 1))  # no gap
    assert set(load.outcomes) <= {201, 503}, load.outcomes  # never a 500
    assert set(reads.outcomes) <= {200, 503}, reads.outcomes
    assert 503 in ready, "readyz never said the storage had failed"
    assert healthy == {200}  # process alive, by design
    assert len(chat.server.database_pids()) == 2  # back once the space was free
    print(
        f"\nfull disk: ballast {ballast / 2**20:.1f} MiB; 20 x 503 "
        f"{failed_at - full_at:.1f} s "
        f"after the disk was full, killed {restarted_at - failed_at:.1f} s later; "
        f"{len(load.acked) - acked_while_full} acked after freeing, the first "
        f"{back_at - freed_at:.1f} s after; {load.outcomes}; reads {reads.outcomes}; "
        f"database pids {chat.server.database_pids()}, {len(_failed_start(log))} failed starts"
    )


def _failed_start(log: str) -> list[str]:
    """The supervisor's lines about a database child that exited by itself with an error."""
    return re.findall(r"embedded database \(pid \d+\) exited with status [1-9]", log)
