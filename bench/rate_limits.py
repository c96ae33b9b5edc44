"""CPU per message send with the rate limits on and off, measured in this process.

The end-to-end delivery benchmark cannot resolve a difference of a few percent on
a shared two-core machine (its run-to-run noise is larger), so this scenario
measures where the limits act: ``MessageService.send`` on the in-memory kit, the
same sends with every limit off and with the contract's limits raised so that
none refuses (every check still runs), in alternating rounds, CPU time by
``time.process_time``. Also: CPU of one in-process limiter check, and of one
Redis limiter check (client side; one round trip) when Redis answers.

The domain path is a small part of a send's CPU (the server spends ~200 us per
message end to end, mostly Socket.IO and JSON), so the percentage here is an upper
bound of what the limits add to a send.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from typing import Any

import redis.asyncio as aioredis

from adapters.redis import RedisRateLimiter
from chatcore.rate_limits import Rate, RateLimits
from chatcore.system import LocalRateLimiter, SystemClock
from chatcore.testing import ChatKit, in_memory_chat

# Checked on every send, never reached by the benchmark.
NEVER = Rate(1_000_000_000, 10)
LIMITS_ON = RateLimits(send=NEVER, login=NEVER, register=NEVER, api=NEVER, typing=NEVER)
REDIS_URL = os.environ.get("CHATCORE_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"


async def _kit(limits: RateLimits) -> tuple[ChatKit, str, str]:
    kit = in_memory_chat(rate_limits=limits)
    alice = (await kit.chat.auth.register("alice", "correct horse")).user
    bob = (await kit.chat.auth.register("bob", "correct horse")).user
    dm = await kit.chat.conversations.open_direct(alice.id, bob.id)
    return kit, alice.id, dm.conversation.id


async def _cpu_per_send_us(kit: ChatKit, sender: str, conversation: str, sends: int) -> float:
    send = kit.chat.messages.send
    started = time.process_time()
    for _ in range(sends):
        await send(sender, conversation, "hello there")
    used = time.process_time() - started
    kit.notifier.clear()
    return used / sends * 1e6


async def _limiter_check_us(limiter: Any, checks: int) -> float:
    rate = NEVER
    started = time.process_time()
    for i in range(checks):
        await limiter.acquire(f"send:u{i % 50}", rate)
    return (time.process_time() - started) / checks * 1e6


async def _redis_check(checks: int) -> dict[str, float] | None:
    client = aioredis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    prefix = f"chatcore-bench:{uuid.uuid4().hex[:8]}:"
    try:
        await client.ping()
    except Exception:
        await client.aclose()
        return None
    limiter = RedisRateLimiter(client, clock=SystemClock(), prefix=prefix)
    try:
        await limiter.acquire("warm", NEVER)
        wall = time.perf_counter()
        cpu = await _limiter_check_us(limiter, checks)
        wall_us = (time.perf_counter() - wall) / checks * 1e6
        return {"cpuUs": round(cpu, 2), "wallUs": round(wall_us, 1)}
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def measure(rounds: int = 9, sends: int = 4000) -> dict[str, Any]:
    off = await _kit(RateLimits.off())
    on = await _kit(LIMITS_ON)
    await _cpu_per_send_us(*off, sends)  # warm-up, both
    await _cpu_per_send_us(*on, sends)
    samples: dict[str, list[float]] = {"off": [], "on": []}
    for n in range(rounds):
        # Alternate which goes first, so that drift in the machine's load hits both.
        order = [("off", off), ("on", on)] if n % 2 == 0 else [("on", on), ("off", off)]
        for name, kit in order:
            samples[name].append(await _cpu_per_send_us(*kit, sends))
    off_us, on_us = statistics.median(samples["off"]), statistics.median(samples["on"])
    local = await _limiter_check_us(LocalRateLimiter(SystemClock()), 50_000)
    return {
        "scenario": "limits",
        "rounds": rounds,
        "sendsPerRound": sends,
        "sendCpuUs": {"off": round(off_us, 2), "on": round(on_us, 2)},
        "sendCpuRoundsUs": {k: [round(v, 2) for v in vs] for k, vs in samples.items()},
        "overheadPct": round((on_us / off_us - 1) * 100, 1),
        "localCheckCpuUs": round(local, 2),
        "redisCheck": await _redis_check(2000),
        "loadavg": os.getloadavg()[0],
    }


def table(rec: dict[str, Any]) -> str:
    cpu = rec["sendCpuUs"]
    redis = rec["redisCheck"]
    lines = [
        f"MessageService.send CPU, median of {rec['rounds']} rounds x {rec['sendsPerRound']}:",
        f"  limits off {cpu['off']} us, on {cpu['on']} us: {rec['overheadPct']:+.1f} %",
        f"  rounds off {rec['sendCpuRoundsUs']['off']}",
        f"  rounds on  {rec['sendCpuRoundsUs']['on']}",
        f"one in-process limiter check: {rec['localCheckCpuUs']} us CPU",
        "one Redis limiter check: "
        + (f"{redis['cpuUs']} us CPU, {redis['wallUs']} us wall" if redis else "no Redis"),
        f"load average (1 min) at the end: {rec['loadavg']:.2f}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    result = asyncio.run(measure())
    print(table(result))
