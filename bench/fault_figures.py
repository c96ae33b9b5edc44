"""Fault figures of `chatcore serve` for bench/RESULTS.md (issue 13); prints one line each.

    .venv/bin/python -m bench.fault_figures

- start-up failures: the port taken (exit 3), the data directory in use (exit 4);
- SIGKILL of the embedded database: time until /readyz is 200 again (restarted
  by the supervisor), and whether /readyz said 503 meanwhile;
- SIGTERM with a long-polling Socket.IO client open: time until the process exits.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import socketio

from bench.procs import free_port

CHATCORE = str(Path(sys.executable).with_name("chatcore"))


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCORE_")}
    env["CHATCORE_LOG_LEVEL"] = "INFO"
    return env


def _failed_start(port: int, data_dir: Path) -> str:
    started = time.monotonic()
    result = subprocess.run(
        [CHATCORE, "serve", "--port", str(port), "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    return f"exit {result.returncode} after {time.monotonic() - started:.2f} s"


def _readyz(url: str) -> int | str:
    try:
        return httpx.get(f"{url}/readyz", timeout=10).status_code
    except httpx.TransportError:
        return "refused"


def _database_pid(log: Path) -> int:
    return int(re.findall(r"\(pid (\d+)\)", log.read_text())[-1])


async def _sigterm_with_polling_client(
    url: str, token: str, process: subprocess.Popen[bytes]
) -> float:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, auth={"token": token}, transports=["polling"])
    await asyncio.sleep(1)  # a long-poll is pending
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(process.wait)
    return time.monotonic() - started


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="chatcore-faults-"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        for _ in range(3):
            print("port taken:", _failed_start(taken.getsockname()[1], root / "other"))

    port, log = free_port(), root / "serve.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        process = subprocess.Popen(
            [CHATCORE, "serve", "--port", str(port), "--data-dir", str(root / "data")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
    try:
        while _readyz(url) != 200:
            time.sleep(0.05)
        for _ in range(3):
            print("data dir in use:", _failed_start(free_port(), root / "data"))
        for _ in range(3):
            killed = time.monotonic()
            os.kill(_database_pid(log), signal.SIGKILL)
            seen = set()
            while (status := _readyz(url)) != 200 or 503 not in seen:
                seen.add(status)
                if time.monotonic() - killed > 60:
                    break
                time.sleep(0.02)
            print(
                f"SIGKILL of the database: /readyz {status} after "
                f"{time.monotonic() - killed:.2f} s (meanwhile: {sorted(map(str, seen))})"
            )
            time.sleep(1)
        session = httpx.post(
            f"{url}/api/auth/register", json={"username": "poller", "password": "secret123"}
        ).json()
        seconds = asyncio.run(_sigterm_with_polling_client(url, session["accessToken"], process))
        print(
            f"SIGTERM with a long-polling client open: exit {process.returncode} "
            f"after {seconds:.2f} s"
        )
    finally:
        if process.poll() is None:
            process.kill()


if __name__ == "__main__":
    main()
