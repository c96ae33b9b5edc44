"""HTTP latency of chatcore: a history page and a send, on in-memory storage and SecantusDB.

Each server runs in its own process (uvicorn, as in production) on a free
loopback port; one client sends requests one after another over a keep-alive
connection, so the figures are per-request latency, not throughput.

- ``memory``: the real app with the in-memory storage of ``chatcore.testing``;
- ``secantus``: ``chatcore serve`` with its embedded SecantusDB child.

Run: ``python bench/http_latency.py`` (about 30 s; bounded by ``--budget``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx

from entrypoints.settings import rate_limits_off_env

PASSWORD = "correct horse battery"
HISTORY_PAGE = 50
SEEDED_MESSAGES = 200
STARTUP_DEADLINE = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_in_memory(port: int, data_dir: Path) -> None:
    """The server process of the ``memory`` backend (this script run with ``--serve``)."""
    import uvicorn
    from dependency_injector import providers

    from chatcore.testing import in_memory_storage
    from entrypoints.app import create_app
    from entrypoints.container import Container
    from entrypoints.settings import Settings

    settings = Settings(_env_file=None, data_dir=data_dir, log_level="WARNING")  # type: ignore[call-arg]
    container = Container(settings=settings)
    container.storage.override(providers.Object(in_memory_storage()))
    app = create_app(settings, container=container)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextlib.asynccontextmanager
async def server(backend: str, data_dir: Path) -> AsyncIterator[str]:
    """Start the server of ``backend`` as a child process; yield its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCORE_")}
    env["CHATCORE_LOG_LEVEL"] = "WARNING"
    env.update(rate_limits_off_env())  # the benchmark sends bursts
    if backend == "memory":
        command = [sys.executable, __file__, "--serve", str(port), "--data-dir", str(data_dir)]
    else:
        chatcore = str(Path(sys.executable).with_name("chatcore"))
        command = [chatcore, "serve", "--port", str(port), "--data-dir", str(data_dir)]
    log_path = data_dir.with_suffix(".log")
    with open(log_path, "wb") as log:  # noqa: ASYNC230 -- opened once, before the clock runs
        process = await asyncio.create_subprocess_exec(
            *command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(url, process, log_path)
        yield url
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    await process.wait()
            except TimeoutError:
                os.killpg(process.pid, signal.SIGKILL)
                await process.wait()


async def wait_healthy(url: str, process: asyncio.subprocess.Process, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    async with httpx.AsyncClient(base_url=url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"server exited with {process.returncode}; see {log_path}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"server not ready within {STARTUP_DEADLINE}s; see {log_path}")


async def measure(
    request: Callable[[], Awaitable[httpx.Response]], expect: int, seconds: float, cap: int
) -> list[float]:
    """Latencies (ms) of sequential requests for ``seconds`` (at most ``cap`` of them)."""
    for _ in range(20):  # warm-up: connections, caches, JIT-free but lazy imports
        await request()
    samples: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and len(samples) < cap:
        started = time.perf_counter()
        response = await request()
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != expect:
            raise RuntimeError(f"{response.status_code}: {response.text}")
    return samples


async def bench_backend(backend: str, seconds: float, root: Path) -> list[tuple[str, list[float]]]:
    async with (
        server(backend, root / backend) as url,
        httpx.AsyncClient(base_url=url, timeout=10.0) as client,
    ):
        tokens = []
        for name in ("alice", "bob"):
            r = await client.post(
                "/api/auth/register", json={"username": name, "password": PASSWORD}
            )
            r.raise_for_status()
            tokens.append(
                (r.json()["user"]["id"], {"Authorization": f"Bearer {r.json()['accessToken']}"})
            )
        (_, alice), (bob_id, _) = tokens
        dm = (await client.post(f"/api/conversations/direct/{bob_id}", headers=alice)).json()
        messages = f"/api/conversations/{dm['id']}/messages"
        body = {"body": "x" * 100}
        for _ in range(SEEDED_MESSAGES):
            (await client.post(messages, json=body, headers=alice)).raise_for_status()

        history = await measure(
            lambda: client.get(messages, params={"limit": HISTORY_PAGE}, headers=alice),
            200,
            seconds,
            cap=5000,
        )
        send = await measure(
            lambda: client.post(messages, json=body, headers=alice), 201, seconds, cap=5000
        )
        return [(f"history page of {HISTORY_PAGE}", history), ("send", send)]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def print_table(rows: list[tuple[str, str, list[float]]]) -> None:
    header = f"{'storage':<10} {'request':<20} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}"
    print(header)
    print("-" * len(header))
    for backend, name, samples in rows:
        print(
            f"{backend:<10} {name:<20} {len(samples):>6} {percentile(samples, 0.5):>8.2f} "
            f"{percentile(samples, 0.99):>8.2f} {statistics.fmean(samples):>8.2f}"
        )


def print_logs(directory: Path) -> None:
    for log in sorted(directory.glob("*.log")):
        print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)


async def main(backends: list[str], seconds: float, budget: float) -> None:
    rows: list[tuple[str, str, list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="chatcore-bench-") as tmp:
        try:
            async with asyncio.timeout(budget):
                for backend in backends:
                    for name, samples in await bench_backend(backend, seconds, Path(tmp)):
                        rows.append((backend, name, samples))
        except BaseException:
            print_logs(Path(tmp))  # before the directory goes
            raise
    print_table(rows)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="memory,secantus", help="comma list")
    parser.add_argument("--seconds", type=float, default=5.0, help="per request kind")
    parser.add_argument("--budget", type=float, default=55.0, help="hard limit, seconds")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # internal: server mode
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    if args.serve is not None:
        serve_in_memory(args.serve, args.data_dir)
    else:
        asyncio.run(main(args.backends.split(","), args.seconds, args.budget))
