"""`chatcore serve` as users run it: a real process, the embedded database, signals.

Each test starts the venv's ``chatcore`` script on a free port with a temporary
data directory and no CHATCORE_MONGODB_URI, so the server starts SecantusDB as
its child. Every wait polls with a deadline.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.accounts import PASSWORD
from support.secantus import free_port
from support.serve import start_serve

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and signals"),
]

STARTUP_DEADLINE = 90.0
SHUTDOWN_DEADLINE = 45.0


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCORE_")}
    env["CHATCORE_LOG_LEVEL"] = "INFO"
    return env


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _processes_using(path: Path) -> list[int]:
    """Pids of live processes whose command line mentions ``path`` (e.g. a database child)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline and _alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def _wait_no_process_using(path: Path) -> list[int]:
    deadline = time.monotonic() + SHUTDOWN_DEADLINE
    while (left := _processes_using(path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _wait_gone(pid: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


class Server:
    """One `chatcore serve` process and its log."""

    def __init__(self, data_dir: Path, port: int, log_path: Path) -> None:
        self.data_dir = data_dir
        self.port = port
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = start_serve(
            self.port, self.data_dir, self.log_path, env=_clean_env(), cwd=self.data_dir.parent
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_DEADLINE
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    pytest.fail(f"serve exited with {self.process.returncode}:\n{self.log}")
                try:
                    if client.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        pytest.fail(f"/healthz did not answer within {STARTUP_DEADLINE}s:\n{self.log}")

    def database_pid(self) -> int:
        found = re.search(r"embedded database ready on port \d+ \(pid (\d+)\)", self.log)
        assert found, self.log
        return int(found.group(1))

    def stop(self, sig: signal.Signals) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(SHUTDOWN_DEADLINE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve did not stop within {SHUTDOWN_DEADLINE}s:\n{self.log}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()


def _serve(servers: list[Server], data_dir: Path, port: int | None = None) -> Server:
    server = Server(data_dir, port or free_port(), data_dir.parent / f"serve-{len(servers)}.log")
    servers.append(server)
    server.start()
    return server


def test_serve_keeps_data_and_tokens_across_restarts(tmp_path: Path, servers: list[Server]) -> None:
    data_dir = tmp_path / "data"

    first = _serve(servers, data_dir)
    first.wait_healthy()
    database_pid = first.database_pid()
    with httpx.Client(base_url=first.url, timeout=10.0) as client:
        assert client.get("/readyz").status_code == 200
        alice = client.post("/api/auth/register", json={"username": "alice", "password": PASSWORD})
        bob = client.post("/api/auth/register", json={"username": "bob", "password": PASSWORD})
        assert alice.status_code == bob.status_code == 201, alice.text
        token = alice.json()["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}
        bob_id = bob.json()["user"]["id"]
        sent = client.post(f"/api/messages/{bob_id}", json={"body": "still here?"}, headers=headers)
        assert sent.status_code == 201, sent.text
        conversation_id = sent.json()["conversationId"]

    assert first.stop(signal.SIGTERM) == 0, first.log
    assert _wait_gone(database_pid, time.monotonic() + SHUTDOWN_DEADLINE), "orphan database"
    assert (data_dir / "jwt-secret").stat().st_mode & 0o777 == 0o600

    second = _serve(servers, data_dir)
    second.wait_healthy()
    with httpx.Client(base_url=second.url, timeout=10.0) as client:
        history = client.get(f"/api/conversations/{conversation_id}/messages", headers=headers)
        assert history.status_code == 200, history.text  # the old token still works
        assert [m["body"] for m in history.json()["messages"]] == ["still here?"]
    assert second.stop(signal.SIGINT) == 0, second.log
    assert _wait_no_process_using(data_dir) == [], "orphan database"


def test_a_failed_start_leaves_no_database_behind(tmp_path: Path, servers: list[Server]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = _serve(servers, tmp_path / "data", port=port)
        assert server.process is not None
        try:
            code = server.process.wait(STARTUP_DEADLINE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve kept running on a taken port:\n{server.log}")

    assert code != 0
    assert _wait_gone(server.database_pid(), time.monotonic() + SHUTDOWN_DEADLINE), server.log
    assert _wait_no_process_using(server.data_dir) == []


def test_a_stop_while_the_database_starts_is_clean(tmp_path: Path, servers: list[Server]) -> None:
    server = _serve(servers, tmp_path / "data")
    deadline = time.monotonic() + STARTUP_DEADLINE
    while "starting the embedded database" not in server.log:
        assert time.monotonic() < deadline, server.log
        time.sleep(0.01)

    assert server.stop(signal.SIGTERM) == 0, server.log
    assert _wait_no_process_using(server.data_dir) == [], server.log


def test_python_dash_m_entrypoints_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "entrypoints", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--data-dir" in result.stdout
