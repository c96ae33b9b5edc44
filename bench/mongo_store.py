"""How fast the MongoDB adapter is on the embedded SecantusDB, and what each operation costs.

Run: ``python bench/mongo_store.py`` (about 30 s). It starts SecantusDB as a child
process on a free port with a temporary storage directory, and prints:

- commands (round trips) per send, with and without a clientMsgId, and per replay,
  counted with a pymongo CommandListener;
- sends/s, one after another and from 10 concurrent tasks (into one conversation,
  and into 10 conversations);
- commands per stored message and sends/s at 50 concurrent senders (one
  conversation each, closed loop), with group commit, with one batch in flight
  at a time, and with batches of one (``max_batch=1``: every send alone, today's cost);
- history pages of 50 messages/s (range queries on (conversationId, seq));
- conversation list pages of 50/s, as the service builds them (list + read
  pointers + unread counts), with the commands one page costs.

Each timed phase runs for ``--seconds`` (default 3). ``--sync-on-commit`` starts
SecantusDB with durable commits.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from adapters.mongo import MongoStore, ServerInfo
from adapters.mongo.commands import CommandCounter
from adapters.mongo.messages import MongoMessageRepository
from chatcore.ports import MessageRepository
from chatcore.services.conversations import ConversationViews
from chatcore.testing import factories as make

PAGE = 50
CONCURRENCY = 10
SENDERS = 50
# Messages of a realistic size.
BODY = "x" * 100


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def secantus_server(storage: Path, *args: str) -> Iterator[str]:
    """A SecantusDB child process for the duration of the block; yields its URI."""
    executable = Path(sys.executable).with_name("secantusd-py")
    command = [str(executable) if executable.exists() else "secantusd-py"]
    port = _free_port()
    command += ["--port", str(port), "--storage-path", str(storage), "--log-level", "WARNING"]
    command += args
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    try:
        deadline = time.monotonic() + 30
        with MongoClient(uri, serverSelectionTimeoutMS=250) as probe:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"secantusd-py exited with {process.returncode}")
                try:
                    probe.admin.command("hello")
                    break
                except PyMongoError:
                    if time.monotonic() > deadline:
                        raise
        yield uri
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _rate(seconds: float, operation: Callable[[], Awaitable[object]]) -> float:
    """Operations per second of ``operation`` run back to back for ``seconds``."""
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        await operation()
        done += 1
    return done / elapsed


async def _concurrent_rate(
    seconds: float, tasks: int, operation: Callable[[int], Awaitable[object]]
) -> float:
    """Operations per second, all ``tasks`` running ``operation(task)`` in a loop."""
    done, start = 0, time.perf_counter()

    async def worker(task: int) -> None:
        nonlocal done
        while time.perf_counter() - start < seconds:
            await operation(task)
            done += 1

    await asyncio.gather(*(worker(t) for t in range(tasks)))
    return done / (time.perf_counter() - start)


async def _commands(
    counter: CommandCounter, n: int, operation: Callable[[], Awaitable[object]]
) -> float:
    before = counter.count
    for _ in range(n):
        await operation()
    return (counter.count - before) / n


def _row(label: str, value: float, unit: str, digits: int = 1) -> None:
    print(f"  {label:<52} {value:>9.{digits}f} {unit}")


async def run(uri: str, seconds: float) -> None:
    counter = CommandCounter()
    async with MongoStore(uri, database="bench", command_listeners=[counter]) as store:
        storage = store.storage

        def send(conversation_id: str, sender_id: str, key: str | None = None) -> Awaitable[object]:
            return storage.messages.append(make.message(conversation_id, sender_id, BODY, key))

        chat = await make.stored_group(storage, "alice", "bob")
        await send(chat.id, "alice")  # warm up

        print("round trips (commands sent)")
        keys = (f"k{i}" for i in range(1_000_000))
        _row(
            "per send, no clientMsgId",
            await _commands(counter, 50, lambda: send(chat.id, "alice")),
            "",
        )
        _row(
            "per send, with clientMsgId",
            await _commands(
                counter,
                50,
                lambda: send(chat.id, "alice", next(keys)),
            ),
            "",
        )
        _row(
            "per idempotent replay",
            await _commands(
                counter,
                20,
                lambda: send(chat.id, "alice", "k0"),
            ),
            "",
        )

        print("sends")
        _row(
            "sequential",
            await _rate(seconds, lambda: send(chat.id, "alice")),
            "sends/s",
        )
        _row(
            f"{CONCURRENCY} tasks, one conversation",
            await _concurrent_rate(
                seconds,
                CONCURRENCY,
                lambda t: send(chat.id, "bob"),
            ),
            "sends/s",
        )
        rooms = [await make.stored_group(storage, "alice", f"u{i}") for i in range(CONCURRENCY)]
        _row(
            f"{CONCURRENCY} tasks, {CONCURRENCY} conversations",
            await _concurrent_rate(
                seconds,
                CONCURRENCY,
                lambda t: send(rooms[t].id, "alice"),
            ),
            "sends/s",
        )

        print(f"{SENDERS} concurrent senders, one conversation each (closed loop)")
        senders = [await make.stored_group(storage, f"s{i}", f"r{i}") for i in range(SENDERS)]
        db = store.database
        variants: list[tuple[str, MessageRepository]] = [
            ("group commit", storage.messages),
            (
                "one batch in flight",
                MongoMessageRepository(db, ServerInfo(db.client), max_in_flight=1),
            ),
            ("batches of one", MongoMessageRepository(db, ServerInfo(db.client), max_batch=1)),
        ]
        for label, messages in variants:
            before, sent = counter.count, 0

            async def send_one(t: int, messages: MessageRepository = messages) -> None:
                nonlocal sent
                await messages.append(make.message(senders[t].id, f"s{t}", BODY))
                sent += 1

            rate = await _concurrent_rate(seconds, SENDERS, send_one)
            per_message = (counter.count - before) / sent
            _row(f"{label}: commands per stored message", per_message, "", digits=3)
            _row(f"{label}: sends/s", rate, "sends/s")

        print(f"history pages of {PAGE}")
        last = (await storage.conversations.get(chat.id) or chat).last_seq

        def page() -> Awaitable[object]:
            first = random.randint(1, max(1, last - PAGE + 1))
            return storage.messages.range(chat.id, first, first + PAGE - 1)

        _row("commands per page", await _commands(counter, 10, page), "")
        _row(
            f"pages/s ({last} messages in the conversation)", await _rate(seconds, page), "pages/s"
        )

        print(f"conversation list pages of {PAGE} (list + read pointers + unread counts)")
        for i in range(2 * PAGE - len(rooms)):
            room = await make.stored_group(storage, "alice", f"v{i}")
            await send(room.id, f"v{i}")
        views = ConversationViews(messages=storage.messages, receipts=storage.receipts)

        async def list_page() -> None:
            found = await storage.conversations.list_for_member("alice", limit=PAGE + 1, after=None)
            await views.for_viewer("alice", found[:PAGE])

        _row("commands per page", await _commands(counter, 10, list_page), "")
        _row("pages/s", await _rate(seconds, list_page), "pages/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each timed phase")
    parser.add_argument("--sync-on-commit", action="store_true", help="durable commits")
    args = parser.parse_args()
    storage = Path(tempfile.mkdtemp(prefix="bench-secantus-"))
    try:
        flags = ["--sync-on-commit"] if args.sync_on_commit else []
        with secantus_server(storage / "data", *flags) as uri:
            print(f"SecantusDB child process at {uri}")
            started = time.perf_counter()
            asyncio.run(run(uri, args.seconds))
            print(f"done in {time.perf_counter() - started:.1f} s")
    finally:
        shutil.rmtree(storage, ignore_errors=True)


if __name__ == "__main__":
    main()
