"""``chatcore serve`` as a child process: the venv's script on a port of its own.

:class:`ServeProcess` is one such server as users run it (its own data
directory, no CHATCORE_MONGODB_URI, so it starts the embedded database as its
child); the CLI and fault tests drive it with real signals. Every wait polls
with a deadline.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

# The venv's own script; the wheel test passes the one of a fresh venv instead.
CHATCORE = Path(sys.executable).with_name("chatcore")
STARTUP_DEADLINE = 90.0
SHUTDOWN_DEADLINE = 45.0


def start_serve(
    port: int,
    data_dir: Path,
    log_path: Path,
    *,
    env: dict[str, str],
    cwd: Path,
    chatcore: Path = CHATCORE,
    wrap: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """Start ``chatcore serve`` on 127.0.0.1:``port`` with ``data_dir``, its output
    appended to ``log_path``; ``cwd`` should hold no stray .env of the repository.
    ``wrap``: a command that runs the server's command line given after it (with
    ``exec``, so that the process started is the server's)."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [
                *wrap,
                str(chatcore),
                *("serve", "--host", "127.0.0.1", "--port", str(port)),
                *("--data-dir", str(data_dir)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )


def clean_env(**settings: str) -> dict[str, str]:
    """The environment without any CHATCORE_* of the caller, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCORE_")}
    env["CHATCORE_LOG_LEVEL"] = "INFO"
    env.update(settings)
    return env


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pid: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)


class ServeProcess:
    """One `chatcore serve` process and its log."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        log_path: Path,
        env: dict[str, str] | None = None,
        *,
        chatcore: Path = CHATCORE,
        wrap: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.log_path = log_path
        self.env = env or clean_env()
        self.chatcore = chatcore
        self.wrap = wrap
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = start_serve(
            self.port,
            self.data_dir,
            self.log_path,
            env=self.env,
            cwd=self.data_dir.parent,
            chatcore=self.chatcore,
            wrap=self.wrap,
        )

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self) -> None:
        """Return once /readyz says 200 (the database answers)."""
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_DEADLINE
        with httpx.Client(base_url=self.url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    pytest.fail(f"serve exited with {self.process.returncode}:\n{self.log}")
                try:
                    if client.get("/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        pytest.fail(f"/readyz did not answer 200 within {STARTUP_DEADLINE}s:\n{self.log}")

    def database_pids(self) -> list[int]:
        """The embedded database's pids, in start order (restarts add one each)."""
        ready = re.findall(r"embedded database ready on port \d+ \(pid (\d+)\)", self.log)
        back = re.findall(r"embedded database is back \(pid (\d+)\)", self.log)
        return [int(pid) for pid in [*ready, *back]]

    def database_pid(self) -> int:
        pids = self.database_pids()
        assert pids, self.log
        return pids[-1]

    def wait_exit(self, within: float = SHUTDOWN_DEADLINE) -> int:
        assert self.process is not None
        try:
            return self.process.wait(within)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve did not exit within {within}s:\n{self.log}")

    def stop(self, sig: signal.Signals) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.wait_exit()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
