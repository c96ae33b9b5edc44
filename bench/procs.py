"""Child processes of the benchmark: start in their own process group, always killed, measured.

Every child runs in a new session (its own process group), so stopping it also
stops whatever it started. :class:`Children` remembers them all and kills the
lot on exit, on error and on SIGINT/SIGTERM; should the orchestrator itself be
killed outright, the kernel sends each child SIGKILL (``PR_SET_PDEATHSIG``).
CPU time and RSS are read from ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child, between fork and exec
    os.setsid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Child:
    """One child process (group) with its log file."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.proc = proc
        self.log = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.returncode is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to the whole group, SIGKILL after ``grace`` seconds."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                continue
            # The leader is gone; make sure nothing it started lingers in the group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            return


class Children:
    """Starts children and guarantees they are all gone when the block ends."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: list[Child] = []

    async def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        pipes: bool = False,
    ) -> Child:
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if pipes else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if pipes else out,
                stderr=out,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                preexec_fn=_die_with_parent,  # the orchestrator runs no threads
                limit=16 * 1024 * 1024,
            )
        child = Child(name, proc, log)
        self.running.append(child)
        return child

    async def stop(self, child: Child) -> None:
        await child.stop()
        if child in self.running:
            self.running.remove(child)

    async def stop_all(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.running), return_exceptions=True)
        self.running.clear()

    def kill_all_now(self) -> None:
        """Last resort (atexit, signals): SIGKILL every group without waiting."""
        for child in self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)


async def wait_http(child: Child, url: str, within: float) -> None:
    """Poll ``url`` until it answers 200; fail early if the child died."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{child.name} not ready after {within}s:\n{child.log_tail()}")


async def wait_tcp(child: Child, port: int, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise TimeoutError(f"{child.name} not listening after {within}s:\n{child.log_tail()}")


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in process group ``pgid``."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def child_pid(name: str) -> int:
    """The pid of this process's child whose command is ``name`` (e.g. the database)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            command, rest = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if int(rest.split()[1]) == os.getpid() and name in command:
            return int(stat.parent.name)
    raise RuntimeError(f"no child process {name}")


def rss_mib(pid: int) -> float:
    """VmRSS of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def machine_seconds() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine, all cores (``/proc/stat``).

    Stolen time is the hypervisor running someone else on our virtual CPUs.
    """
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


class CpuMeter:
    """CPU% of one core per process group between :meth:`start` and :meth:`stop`.

    ``other`` is everything else on the machine (someone's test suite, say) and
    ``steal`` the time the hypervisor gave away: on a 2-core machine either skews
    every figure, so both are reported.
    """

    def __init__(self, groups: Mapping[str, int]) -> None:
        self.groups = dict(groups)
        self._start: tuple[float, dict[str, float]] | None = None

    def start(self) -> None:
        self._start = (time.monotonic(), self._sample())

    def stop(self) -> dict[str, float]:
        assert self._start is not None
        t0, before = self._start
        elapsed = time.monotonic() - t0
        after = self._sample()
        pct = {k: 100 * (after[k] - before[k]) / elapsed for k in after}
        busy = pct.pop("machine")
        pct["other"] = max(0.0, busy - sum(v for k, v in pct.items() if k != "steal"))
        return {k: round(v, 1) for k, v in pct.items()}

    def _sample(self) -> dict[str, float]:
        sample = {name: group_cpu_seconds(pgid) for name, pgid in self.groups.items()}
        sample["machine"], sample["steal"] = machine_seconds()
        return sample


async def wait_quiet(limit_pct: float = 30.0, within: float = 5.0) -> float:
    """Wait (up to ``within`` s) for a second in which the machine's CPU stays under
    ``limit_pct`` of one core; return the last second's busy %."""
    deadline = time.monotonic() + within
    while True:
        before = machine_seconds()[0]
        await asyncio.sleep(1.0)
        busy = 100 * (machine_seconds()[0] - before)
        if busy < limit_pct or time.monotonic() >= deadline:
            return round(busy, 1)
