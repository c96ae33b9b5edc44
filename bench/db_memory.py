"""Memory (RSS) of a SecantusDB child under 20,000 writes, for bench/RESULTS.md (issue 13).

    .venv/bin/python -m bench.db_memory

Each variant is a fresh ``secantusd-py`` writing 200-byte documents one at a time,
plain or one transaction each (what a chatcore send is); RSS is read from /proc
every 5,000 writes.

The last line is the cause of the growth per transaction, shown without
SecantusDB: its WiredTiger's Python binding keeps a reference to every session
and cursor object it returns, closed or not, and SecantusDB opens a WiredTiger
session and a cursor per table touched for every transaction. A child Python
(the bench itself stays clear of the embedded database's libraries) opens and
closes 20,000 times a session with 5 cursors, storing nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from bench.procs import free_port

WRITES = 20_000
EVERY = 5_000


def _rss_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    return -1


def _run(label: str, args: tuple[str, ...], *, transactions: bool) -> None:
    root, port = Path(tempfile.mkdtemp(prefix="chatcore-dbmem-")), free_port()
    executable = str(Path(sys.executable).with_name("secantusd-py"))
    server = subprocess.Popen(
        [executable, "--port", str(port), "--storage-path", str(root / "db"), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pid = server.pid
    try:
        client: MongoClient[dict[str, object]] = MongoClient(
            f"mongodb://127.0.0.1:{port}/?directConnection=true"
        )
        while True:
            try:
                client.admin.command("ping")
                break
            except PyMongoError:
                time.sleep(0.1)
        collection = client.chat.messages
        samples = [_rss_mib(pid)]
        for i in range(WRITES):
            document = {"seq": i, "body": "x" * 200}
            if transactions:
                with client.start_session() as session, session.start_transaction():
                    collection.insert_one(document, session=session)
            else:
                collection.insert_one(document)
            if (i + 1) % EVERY == 0:
                samples.append(_rss_mib(pid))
        client.close()
        print(f"{label}: RSS MiB every {EVERY:,} writes: {samples}", flush=True)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(root, ignore_errors=True)


# Run in a child Python: what SecantusDB's storage does per transaction, nothing stored.
_BINDING_PROBE = """
import gc, sys, tempfile, wiredtiger
from pathlib import Path
def rss():
    lines = Path("/proc/self/status").read_text().splitlines()
    return next(int(l.split()[1]) // 1024 for l in lines if l.startswith("VmRSS"))
conn = wiredtiger.wiredtiger_open(tempfile.mkdtemp(), "create,cache_size=32M")
setup = conn.open_session()
for t in range(5):
    setup.create(f"table:t{t}", "key_format=q,value_format=u")
samples = [rss()]
for i in range(20_000):
    session = conn.open_session()
    session.begin_transaction()
    cursors = [session.open_cursor(f"table:t{t}", None, None) for t in range(5)]
    for cursor in cursors:
        cursor.set_key(i)
        cursor.set_value(b"x" * 200)
    session.commit_transaction()
    for cursor in cursors:
        cursor.close()
    session.close()
    if (i + 1) % 5_000 == 0:
        samples.append(rss())
gc.collect()
alive = sum(1 for o in gc.get_objects() if type(o).__name__ in ("Session", "Cursor"))
print(f"{wiredtiger.wiredtiger_version()[0].split(':')[0]} binding, a session + 5 cursors "
      f"opened and closed 20,000 times: RSS MiB every 5,000: {samples}; "
      f"closed session/cursor objects still alive: {alive:,}; "
      f"references to a closed one beyond the caller's: {sys.getrefcount(session) - 2}")
"""


def _binding_leak() -> None:
    subprocess.run([sys.executable, "-c", _BINDING_PROBE], check=True)


def main() -> None:
    _run("cache 32M, plain", ("--cache-size", "32M"), transactions=False)
    _run(
        "cache 32M, oplog 1000, plain",
        ("--cache-size", "32M", "--oplog-max-entries", "1000"),
        transactions=False,
    )
    _run(
        "cache 32M, standalone, plain", ("--cache-size", "32M", "--standalone"), transactions=False
    )
    _run("cache 32M, transactions", ("--cache-size", "32M"), transactions=True)
    _run("default 1G cache, transactions", (), transactions=True)
    _binding_leak()


if __name__ == "__main__":
    main()
