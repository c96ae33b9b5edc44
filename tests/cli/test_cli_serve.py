"""`chatcore serve` as users run it: a real process, the embedded database, signals.

Each test starts the venv's ``chatcore`` script on a free port with a temporary
data directory and no CHATCORE_MONGODB_URI, so the server starts SecantusDB as
its child. Every wait polls with a deadline.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from entrypoints.cli import EXIT_DATA_DIR_IN_USE, EXIT_PORT_IN_USE
from support.accounts import PASSWORD
from support.secantus import free_port
from support.serve import (
    SHUTDOWN_DEADLINE,
    STARTUP_DEADLINE,
    ServeProcess,
    alive,
    clean_env,
    wait_gone,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and signals"),
]


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
        if str(path) in cmdline and alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def _wait_no_process_using(path: Path) -> list[int]:
    deadline = time.monotonic() + SHUTDOWN_DEADLINE
    while (left := _processes_using(path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for server in started:
        server.kill()


def _serve(servers: list[ServeProcess], data_dir: Path, port: int | None = None) -> ServeProcess:
    server = ServeProcess(
        data_dir, port or free_port(), data_dir.parent / f"serve-{len(servers)}.log"
    )
    servers.append(server)
    server.start()
    return server


def _healthy(servers: list[ServeProcess], data_dir: Path) -> tuple[ServeProcess, int]:
    """A started, healthy `chatcore serve` on ``data_dir`` and its database's pid."""
    server = _serve(servers, data_dir)
    server.wait_healthy()
    return server, server.database_pid()


def test_serve_keeps_data_and_tokens_across_restarts(
    tmp_path: Path, servers: list[ServeProcess]
) -> None:
    data_dir = tmp_path / "data"

    first, database_pid = _healthy(servers, data_dir)
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
    assert wait_gone(database_pid, time.monotonic() + SHUTDOWN_DEADLINE), "orphan database"
    assert (data_dir / "jwt-secret").stat().st_mode & 0o777 == 0o600

    second = _serve(servers, data_dir)
    second.wait_healthy()
    with httpx.Client(base_url=second.url, timeout=10.0) as client:
        history = client.get(f"/api/conversations/{conversation_id}/messages", headers=headers)
        assert history.status_code == 200, history.text  # the old token still works
        assert [m["body"] for m in history.json()["messages"]] == ["still here?"]
    assert second.stop(signal.SIGINT) == 0, second.log
    assert _wait_no_process_using(data_dir) == [], "orphan database"


def test_a_taken_port_fails_before_the_database_starts(
    tmp_path: Path, servers: list[ServeProcess]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = _serve(servers, tmp_path / "data", port=port)
        code = server.wait_exit(STARTUP_DEADLINE)

    assert code == EXIT_PORT_IN_USE, server.log
    assert (
        server.log.strip() == f"chatcore: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert _processes_using(server.data_dir) == []


def test_a_data_dir_in_use_fails_with_one_line(tmp_path: Path, servers: list[ServeProcess]) -> None:
    data_dir = tmp_path / "data"
    first = _serve(servers, data_dir)
    first.wait_healthy()

    second = _serve(servers, data_dir)
    code = second.wait_exit(STARTUP_DEADLINE)

    assert code == EXIT_DATA_DIR_IN_USE, second.log
    assert second.log.strip() == (
        f"chatcore: the data directory {data_dir} is in use by another chatcore server"
    )
    assert first.database_pids() == [first.database_pid()]  # untouched
    with httpx.Client(base_url=first.url, timeout=10.0) as client:
        assert client.get("/readyz").status_code == 200


def test_a_stop_while_the_database_starts_is_clean(
    tmp_path: Path, servers: list[ServeProcess]
) -> None:
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
        env=clean_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--data-dir" in result.stdout


def test_sigkill_of_the_server_takes_the_database_with_it_and_a_restart_works(
    tmp_path: Path, servers: list[ServeProcess]
) -> None:
    # What the OOM killer does: no cleanup runs in the server, so only the kernel's
    # parent-death signal can stop the child. A surviving child would hold the
    # storage, and the next server's database could not start on it.
    data_dir = tmp_path / "data"
    first, database_pid = _healthy(servers, data_dir)
    with httpx.Client(base_url=first.url, timeout=10.0) as client:
        alice = client.post("/api/auth/register", json={"username": "alice", "password": PASSWORD})
        assert alice.status_code == 201, alice.text
        headers = {"Authorization": f"Bearer {alice.json()['accessToken']}"}

    first.kill()  # SIGKILL
    assert wait_gone(database_pid, time.monotonic() + SHUTDOWN_DEADLINE), "orphan database"

    second = _serve(servers, data_dir)
    second.wait_healthy()
    with httpx.Client(base_url=second.url, timeout=10.0) as client:
        me = client.get("/api/users/me", headers=headers)
        assert (me.status_code, me.json()["username"]) == (200, "alice"), me.text
    assert second.stop(signal.SIGTERM) == 0, second.log


# How long the kernel may take to end the database child after its server died.
ORPHAN_DEADLINE = 5.0


def test_sigkill_of_the_server_takes_a_restarted_and_stopped_database_with_it(
    tmp_path: Path, servers: list[ServeProcess]
) -> None:
    # The child the supervisor restarted (spawned from its thread, not the main one),
    # stopped (SIGSTOP: like a database that does not run its signal handlers) when
    # the server is SIGKILLed. A parent-death SIGTERM would wait, pending, for a
    # SIGCONT that never comes (and a running SecantusDB may get it on a thread
    # that does not act on it): an orphan holding the storage. SIGKILL cannot wait.
    data_dir = tmp_path / "data"
    server, first_database = _healthy(servers, data_dir)
    os.kill(first_database, signal.SIGKILL)
    deadline = time.monotonic() + STARTUP_DEADLINE
    while len(server.database_pids()) < 2:
        assert time.monotonic() < deadline, f"the database was not restarted:\n{server.log}"
        time.sleep(0.05)
    restarted = server.database_pid()
    os.kill(restarted, signal.SIGSTOP)
    try:
        server.kill()  # SIGKILL
        assert wait_gone(restarted, time.monotonic() + ORPHAN_DEADLINE), "orphan database"
    finally:
        if alive(restarted):  # don't leave it behind if the assertion failed
            os.kill(restarted, signal.SIGKILL)
    assert not _processes_using(data_dir), "orphan database"
